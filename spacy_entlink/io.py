"""Annotations of a Doc as JSON (see `annotate` for reading inputs)."""

from pathlib import Path
from typing import Any, Dict, Optional, Union

from spacy.tokens import Doc, Span
from spacy.util import filter_spans
from spacy.vocab import Vocab

from .errors import DataError

from .extensions import install_extensions


def _span_json(span: Span) -> Dict[str, Any]:
    out = {"start": span.start_char, "end": span.end_char, "text": span.text, "label": span.label_}
    if span.kb_id_:
        out["kb_id"] = span.kb_id_
    for attr in ("entlink_score", "entlink_source", "entlink_candidates", "entlink_links"):
        value = getattr(span._, attr)
        if value is not None:
            out[attr.replace("entlink_", "")] = [list(v) if isinstance(v, tuple) else v for v in value] \
                if attr in ("entlink_candidates", "entlink_links") else value
    return out


def doc_to_json(doc: Doc) -> Dict[str, Any]:
    """Entities (with ids, scores, sources, candidates) and relations of a doc."""
    install_extensions()
    rels = []
    for rel in doc._.entlink_relations:
        enc = lambda a: a if isinstance(a, str) else {"start": a.start_char, "end": a.end_char, "text": a.text}  # noqa: E731
        rels.append({"head": enc(rel.head), "label": rel.label, "tail": enc(rel.tail), "score": rel.score})
    return {"text": doc.text, "ents": [_span_json(e) for e in doc.ents], "relations": rels}


def doc_from_json(record: Dict[str, Any], *, vocab: Optional[Vocab] = None, path: Union[str, Path, None] = None,
                  line: Optional[int] = None) -> Doc:
    """The Doc of a `doc_to_json` record (an `annotate` output line): its text tokenized by a
    blank English tokenizer, the entities with labels, KB ids, scores and links, the relations.
    `path` and `line` name the record in errors."""
    from spacy.lang.en import English

    install_extensions()

    def bad(message: str) -> DataError:
        return DataError(path, line, message)

    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str):
        raise bad("no string 'text'")
    doc = (English(vocab=vocab) if vocab is not None else English()).make_doc(text)
    spans = []
    for e in record.get("ents", []):
        try:
            span = doc.char_span(int(e["start"]), int(e["end"]), label=str(e.get("label", "")),
                                 kb_id=str(e.get("kb_id", "")), alignment_mode="expand")
        except (KeyError, TypeError, ValueError) as err:
            raise bad(f"bad entity {e!r} ({err})") from err
        if span is None:
            raise bad(f"entity {e!r} is outside the text")
        spans.append((span, e))
    doc.ents = filter_spans([s for s, _ in spans])
    kept = {(s.start_char, s.end_char) for s in doc.ents}
    for span, e in spans:
        if (span.start_char, span.end_char) not in kept:
            continue
        if e.get("score") is not None:
            span._.entlink_score = float(e["score"])
        if e.get("source") is not None:
            span._.entlink_source = str(e["source"])
        if e.get("candidates") is not None:
            span._.entlink_candidates = [str(c) for c in e["candidates"]]
        if e.get("links") is not None:
            span._.entlink_links = [(str(i), float(p)) for i, p in e["links"]]
    by_offsets = {(x.start, x.end): x for x in doc.ents}
    rels = []
    for r in record.get("relations", []):
        args = []
        for arg in (r.get("head"), r.get("tail")):
            if isinstance(arg, str):
                args.append(arg)
            elif isinstance(arg, dict) and "start" in arg and "end" in arg:
                span = doc.char_span(int(arg["start"]), int(arg["end"]), alignment_mode="expand")
                if span is None:
                    raise bad(f"relation argument {arg!r} is outside the text")
                args.append(by_offsets.get((span.start, span.end), span))
            else:
                raise bad(f"bad relation argument {arg!r}")
        rels.append((args[0], str(r.get("label", "")), args[1], float(r.get("score", 1.0))))
    doc._.entlink_relations = rels
    return doc
