"""Reading documents to annotate and writing annotations as JSON."""

from pathlib import Path
from typing import Any, Dict, Iterator

import srsly
from spacy.tokens import Doc, Span

from .errors import DataError
from .extensions import install_extensions


def read_texts(path: Path) -> Iterator[str]:
    """Texts of a plain text file (one per line) or a JSONL file with a "text" field."""
    if not path.exists():
        raise DataError(path, None, "file not found")
    is_jsonl = path.suffix in (".jsonl", ".json")
    with path.open(encoding="utf8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not is_jsonl:
                yield line
                continue
            if not line.strip():
                continue
            try:
                obj = srsly.json_loads(line)
            except ValueError as err:
                raise DataError(path, n, f"invalid JSON ({err})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise DataError(path, n, "expected an object with a string field 'text'")
            yield obj["text"]


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
