"""PubTator reader (BC5CDR, NCBI-disease): title + abstract documents with MeSH-linked mentions.

Input, one block per document, blocks separated by blank lines:

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids[<TAB>part texts]   (one line per mention)
    PMID<TAB>CID<TAB>chemical id<TAB>disease id                         (one line per relation)

Output: one gold `Doc` per document, tokenised by the given pipeline's tokenizer.

- Text: title + " " + abstract (the title alone when there is no abstract line). Mention
  offsets are character offsets into it, end exclusive, and the mention text must equal
  that slice.
- Mentions become spans labelled with their type. A mention whose offsets fall inside a
  token is expanded to whole tokens (counted as "misaligned" and logged). `doc.ents`
  cannot overlap, so it holds the longest of overlapping mentions; every mention is also
  in `doc.spans["entlink_gold"]`.
- KB ids (`span.kb_id_`): each id gets `id_prefix` ("MESH:" by default, so that ids read
  `MESH:D009270` as in CTD MEDIC) unless it already has a prefix (`OMIM:...`).
  The id `-1` (no concept) gives an empty kb_id: the mention stays, unlinked.
  A composite mention with several ids (`D002544|D014652`, or `+`-joined as in
  NCBI-disease) gets them all joined with "|" (`MESH:D002544|MESH:D014652`), the `-1`
  parts dropped. Convention: a predicted id is right for such a mention if it equals any
  one of the "|"-separated parts.
- Relation lines (`PMID<TAB>CID<TAB>chem<TAB>disease`) become document-level relations
  between KB ids, `Relation(id_prefix + chem, "CID", id_prefix + disease, 1.0)`, in
  `doc._.entlink_relations`. They are kept when `types` filters out their mentions.
- `doc.user_data["entlink_doc_id"]` is the PMID.

Every malformed line raises `DataError` naming the file and line.
"""

import re
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..errors import DataError
from ..extensions import Relation
from ._util import (DocIds, PathLike, Stats, bump, check_not_empty, check_span_text, gold_span, log_misaligned,
                    merge_stats, numbered_lines, parse_offset, set_doc_id, set_gold, text_doc)

__all__ = ["read_pubtator", "normalize_ids"]

_TEXT_LINE = re.compile(r"^([^\t|]+)\|([ta])\|(.*)$")
_ID_SPLIT = re.compile(r"[|+]")


def normalize_ids(raw: str, id_prefix: str = "MESH:") -> str:
    """KB id string for a PubTator id field: prefixed parts joined by "|", "-1" parts dropped."""
    out: List[str] = []
    for part in _ID_SPLIT.split(raw.strip()):
        part = part.strip()
        if not part or part == "-1":
            continue
        if ":" not in part:
            part = id_prefix + part
        if part not in out:
            out.append(part)
    return "|".join(out)


class _Block:
    """The lines of one document while it is being read."""

    def __init__(self, pmid: str, title: str, line: int) -> None:
        self.pmid = pmid
        self.title = title
        self.line = line
        self.abstract: Optional[str] = None
        self.annotations: List[Tuple[int, List[str]]] = []


def read_pubtator(
    path: PathLike,
    nlp: Language,
    *,
    types: Optional[Iterable[str]] = None,
    id_prefix: str = "MESH:",
    stats: Optional[Stats] = None,
) -> Iterator[Doc]:
    """Gold Docs of a PubTator file, one per document, in file order.

    types: mention types to keep (e.g. ["Disease"]); None keeps all.
    id_prefix: prefix added to ids without one.
    stats: a mutable mapping that receives counts ("docs", "entities", "gold_spans",
        "overlapping", "misaligned", "relations", "no_id", "composite", "filtered").
    """
    path = Path(path)
    keep = set(types) if types is not None else None
    totals: Stats = {}
    block: Optional[_Block] = None
    seen = DocIds(path, "PMID")
    n_docs = 0
    for i, line in numbered_lines(path):
        if not line.strip():
            if block is not None:
                n_docs += 1
                yield _make_doc(path, nlp, block, keep, id_prefix, totals, stats)
                block = None
            continue
        m = _TEXT_LINE.match(line)
        if m:
            pmid, kind, text = m.group(1), m.group(2), m.group(3)
            if kind == "t":
                if block is not None:
                    n_docs += 1
                    yield _make_doc(path, nlp, block, keep, id_prefix, totals, stats)
                seen.add(pmid, i)
                block = _Block(pmid, text, i)
            else:
                if block is None:
                    raise DataError(path, i, "abstract line before any title line")
                if pmid != block.pmid:
                    raise DataError(path, i, f"abstract of PMID {pmid} inside the document of PMID {block.pmid}")
                if block.abstract is not None:
                    raise DataError(path, i, f"second abstract line for PMID {pmid}")
                if block.annotations:
                    raise DataError(path, i, f"abstract line of PMID {pmid} after its annotation lines")
                block.abstract = text
            continue
        fields = line.split("\t")
        if block is None:
            raise DataError(path, i, "annotation line before any title line (expected 'PMID|t|title')")
        if fields[0] != block.pmid:
            raise DataError(path, i, f"annotation of PMID {fields[0]!r} inside the document of PMID {block.pmid}")
        block.annotations.append((i, fields))
    if block is not None:
        n_docs += 1
        yield _make_doc(path, nlp, block, keep, id_prefix, totals, stats)
    check_not_empty(path, n_docs)
    log_misaligned(path, totals)


def _make_doc(
    path: Path, nlp: Language, block: _Block, keep: Optional[set], id_prefix: str,
    totals: Stats, caller_stats: Optional[Stats],
) -> Doc:
    stats: Stats = {}
    text = block.title if block.abstract is None else block.title + " " + block.abstract
    doc = text_doc(nlp, text, path, block.line, stats)
    spans: List[Span] = []
    relations: List[Relation] = []
    for line, fields in block.annotations:
        n = len(fields)
        if n == 4:
            _, rel_type, head_id, tail_id = fields
            if rel_type.lstrip("-").isdigit():
                raise DataError(path, line, "mention line with 4 fields: expected PMID, start, end, text, type, id")
            if not rel_type:
                raise DataError(path, line, "relation line with an empty relation type")
            head, tail = normalize_ids(head_id, id_prefix), normalize_ids(tail_id, id_prefix)
            if not head or not tail:
                raise DataError(path, line, f"relation {rel_type} needs two ids, got {head_id!r} and {tail_id!r}")
            relations.append(Relation(head, rel_type, tail, 1.0))
            continue
        if n not in (5, 6, 7):
            raise DataError(
                path, line,
                f"expected 6 or 7 tab-separated fields (mention) or 4 (relation), got {n}",
            )
        start = parse_offset(fields[1], path, line, "start")
        end = parse_offset(fields[2], path, line, "end")
        mention, label = fields[3], fields[4]
        raw_ids = fields[5] if n >= 6 else ""
        if not (0 <= start < end <= len(text)):
            raise DataError(path, line, f"offsets {start}-{end} out of range for a text of {len(text)} characters")
        if text[start:end] != mention:
            raise DataError(path, line, f"mention text {mention!r} differs from the text at {start}-{end}: "
                                        f"{text[start:end]!r}")
        check_span_text(text, start, end, path, line, f"mention {mention!r}")
        if not label:
            raise DataError(path, line, "empty mention type")
        if keep is not None and label not in keep:
            bump(stats, "filtered")
            continue
        kb_id = normalize_ids(raw_ids, id_prefix)
        if not kb_id:
            bump(stats, "no_id")
        elif "|" in kb_id:
            bump(stats, "composite")
        spans.append(gold_span(doc, start, end, label, kb_id, path, line, f"mention {mention!r}", stats))
    set_gold(doc, spans, stats)
    if relations:
        doc._.entlink_relations = relations
    bump(stats, "relations", len(relations))
    set_doc_id(doc, block.pmid)
    bump(stats, "docs")
    merge_stats(stats, totals, caller_stats)
    return doc
