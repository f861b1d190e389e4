"""The `Doc` and `Span` extensions of spacy-entlink; all values live in `doc.user_data`.

Relations: `doc._.entlink_relations` is a list of `Relation(head, label, tail, score)`.
For a mention-level relation `head` and `tail` are `Span`s of the doc; for a concept-level
(document-level) relation, such as BC5CDR's chemical-induced-disease pairs that hold between
MeSH ids rather than mentions, they are KB id strings. The list is stored in
`doc.user_data["entlink_relations"]` as plain records (character offsets, label, score), so
it survives `Doc.to_bytes`, `DocBin(store_user_data=True)` and `nlp.pipe(n_process=...)`.
Assign a new list to change it (`doc._.entlink_relations = [...]`) or use `add_relation`;
mutating the returned list in place does not store anything.

Span attributes (written by `entlink_dictionary` and the corpus readers), keyed by the
span's character offsets as spaCy does for every span extension:
- `span._.entlink_score`: match score in 0..1 (1 for exact matches).
- `span._.entlink_source`: how the span was found: "exact", "fuzzy", "abbreviation",
  "ner", or several joined with "+".
- `span._.entlink_candidates`: candidate KB ids, best first.
- `span._.entlink_links`: written by `entlink_linker`: the top-k `(kb_id, probability)` of
  the span, best first (probabilities calibrated when the linker was calibrated; the rest of
  the mass, if any, is NIL).
"""

from typing import Iterable, List, NamedTuple, Optional, Tuple, Union

from spacy.tokens import Doc, Span

from .errors import EntlinkError

RELATIONS_KEY = "entlink_relations"


class Relation(NamedTuple):
    """A relation between two spans (or two KB ids, for document-level relations)."""

    head: Union[Span, str]
    label: str
    tail: Union[Span, str]
    score: float = 1.0


def _encode_arg(doc: Doc, arg: Union[Span, str], what: str) -> dict:
    if isinstance(arg, Span):
        if arg.doc is not doc:
            raise EntlinkError(f"relation {what} {arg.text!r} is a span of another Doc")
        return {"start": arg.start_char, "end": arg.end_char, "label": arg.label_, "kb_id": arg.kb_id_}
    if isinstance(arg, str) and arg:
        return {"id": arg}
    raise EntlinkError(f"relation {what} must be a Span of the doc or a non-empty KB id string, got {arg!r}")


def _decode_arg(doc: Doc, rec: dict) -> Union[Span, str]:
    if "id" in rec:
        return rec["id"]
    span = doc.char_span(rec["start"], rec["end"], label=rec.get("label", ""), kb_id=rec.get("kb_id", ""))
    if span is None:
        span = doc.char_span(rec["start"], rec["end"], label=rec.get("label", ""),
                             kb_id=rec.get("kb_id", ""), alignment_mode="expand")
    return span


def _get_relations(doc: Doc) -> List[Relation]:
    out = []
    for rec in doc.user_data.get(RELATIONS_KEY, ()):
        out.append(Relation(_decode_arg(doc, rec["head"]), rec["label"], _decode_arg(doc, rec["tail"]),
                            float(rec.get("score", 1.0))))
    return out


def _set_relations(doc: Doc, relations: Iterable) -> None:
    records = []
    for rel in relations:
        if len(rel) not in (3, 4):
            raise EntlinkError(f"a relation is (head, label, tail[, score]); got {rel!r}")
        head, label, tail = rel[0], rel[1], rel[2]
        score = float(rel[3]) if len(rel) == 4 else 1.0
        if not isinstance(label, str) or not label:
            raise EntlinkError(f"relation label must be a non-empty string, got {label!r}")
        records.append({"head": _encode_arg(doc, head, "head"), "label": label,
                        "tail": _encode_arg(doc, tail, "tail"), "score": score})
    doc.user_data[RELATIONS_KEY] = records


def add_relation(doc: Doc, head: Union[Span, str], label: str, tail: Union[Span, str], score: float = 1.0) -> None:
    """Append one relation to `doc._.entlink_relations`."""
    install_extensions()
    _set_relations(doc, list(doc._.entlink_relations) + [Relation(head, label, tail, score)])


def _links_key(span: Span) -> tuple:
    return ("._.", "entlink_links", span.start_char, span.end_char)


def _get_links(span: Span):
    value = span.doc.user_data.get(_links_key(span))
    return None if value is None else [(str(i), float(p)) for i, p in value]


def _set_links(span: Span, links) -> None:
    span.doc.user_data[_links_key(span)] = None if links is None else [[str(i), float(p)] for i, p in links]


def install_extensions() -> None:
    """Register the extensions (safe to call many times)."""
    if not Doc.has_extension(RELATIONS_KEY):
        Doc.set_extension(RELATIONS_KEY, getter=_get_relations, setter=_set_relations)
    if not Span.has_extension("entlink_score"):
        Span.set_extension("entlink_score", default=None)
    if not Span.has_extension("entlink_source"):
        Span.set_extension("entlink_source", default=None)
    if not Span.has_extension("entlink_candidates"):
        Span.set_extension("entlink_candidates", default=None)
    if not Span.has_extension("entlink_links"):
        Span.set_extension("entlink_links", getter=_get_links, setter=_set_links)


install_extensions()


_DIRECT_KEYS: Optional[bool] = None


def _keys_are_spacys() -> bool:
    """Whether spaCy keys a span's extension values as ("._.", name, start_char, end_char) in
    `doc.user_data` (checked once, on a tiny Doc, so a spaCy that changes it gets `span._`)."""
    global _DIRECT_KEYS
    if _DIRECT_KEYS is None:
        from spacy.vocab import Vocab

        install_extensions()
        doc = Doc(Vocab(), words=["ab", "c"])
        doc[0:2]._.entlink_score = 0.5
        _DIRECT_KEYS = list(doc.user_data) == [("._.", "entlink_score", 0, 4)]
    return _DIRECT_KEYS


def span_value_keys(doc: Doc) -> Optional[Tuple[dict, str, str, str, str]]:
    """(doc.user_data, and the parts of spaCy's keys for a span's entlink_score, entlink_source and
    entlink_candidates) for compiled code that writes them as `set_span_values` does; None where
    spaCy keys extension values otherwise."""
    if not _keys_are_spacys():
        return None  # pragma: no cover - a spaCy that keys extensions otherwise
    return doc.user_data, "._.", "entlink_score", "entlink_source", "entlink_candidates"


def set_span_values(span: Span, start_char: int, end_char: int, score: float, source: str,
                    candidates: List[str]) -> None:
    """`span._.entlink_score/source/candidates = …` for the span of `start_char:end_char`,
    written straight into `doc.user_data` where spaCy's own keys allow (`span._` costs a
    Token object per boundary and a Python call per value)."""
    if _keys_are_spacys():
        data = span.doc.user_data
        data[("._.", "entlink_score", start_char, end_char)] = score
        data[("._.", "entlink_source", start_char, end_char)] = source
        data[("._.", "entlink_candidates", start_char, end_char)] = candidates
    else:  # pragma: no cover - a spaCy that keys extensions otherwise
        ext = span._
        ext.entlink_score, ext.entlink_source, ext.entlink_candidates = score, source, candidates
