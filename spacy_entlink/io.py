"""Annotations of a Doc as JSON (see `annotate` for reading inputs)."""

from typing import Any, Dict

from spacy.tokens import Doc, Span

from .extensions import install_extensions


def _span_json(span: Span) -> Dict[str, Any]:
    out = {"start": span.start_char, "end": span.end_char, "text": span.text, "label": span.label_}
    if span.kb_id_:
        out["kb_id"] = span.kb_id_
    for attr in ("entlink_score", "entlink_source", "entlink_candidates"):
        value = getattr(span._, attr)
        if value is not None:
            out[attr.replace("entlink_", "")] = list(value) if attr == "entlink_candidates" else value
    return out


def doc_to_json(doc: Doc) -> Dict[str, Any]:
    """Entities (with ids, scores, sources, candidates) and relations of a doc."""
    install_extensions()
    rels = []
    for rel in doc._.entlink_relations:
        enc = lambda a: a if isinstance(a, str) else {"start": a.start_char, "end": a.end_char, "text": a.text}  # noqa: E731
        rels.append({"head": enc(rel.head), "label": rel.label, "tail": enc(rel.tail), "score": rel.score})
    return {"text": doc.text, "ents": [_span_json(e) for e in doc.ents], "relations": rels}
