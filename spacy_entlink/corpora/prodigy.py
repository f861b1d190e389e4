"""Prodigy JSONL reader: annotated tasks with spans, KB ids and relations.

Input: one task per line with `text`, `spans` [{"start", "end", "label", optional "kb_id"}]
(character offsets, end exclusive), optional `relations` [{"head_span": {"start", "end",
"label"}, "child_span": {...}, "label"}] and `answer`. Tasks answered "reject" or
"ignore" are skipped (counted as "skipped"); "accept" or no answer is kept.

A task in the layout of Prodigy's entity-linking choice recipe (one span without
`kb_id`, `options`, and `accept` [chosen option id]) gives that span the chosen id as
kb_id; an id starting with "NIL" gives an empty kb_id.

Output: one gold `Doc` per kept task, tokenised by the given pipeline's tokenizer. Spans
become entities (`doc.ents` holds the longest of overlapping ones; every span is in
`doc.spans["entlink_gold"]`); a span whose offsets fall inside a token is expanded to
whole tokens (counted as "misaligned"). Relations go into `doc._.entlink_relations`
with head = `head_span`, tail = `child_span`. `doc.user_data["entlink_doc_id"]` is
`meta.id`, else `_input_hash`, else the line number.

Bad JSON, a missing or non-string text, offsets out of range and other malformed
values raise `DataError` naming the file and line.
"""

from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..errors import DataError
from ..extensions import Relation
from ._util import (PathLike, Stats, bump, check_not_empty, check_span_text, get_doc_id, gold_span, iter_jsonl,
                    log_misaligned, logger, merge_stats, set_doc_id, set_gold, text_doc)

__all__ = ["read_prodigy"]

KEEP_ANSWERS = ("accept",)
SKIP_ANSWERS = ("reject", "ignore")


def read_prodigy(
    path: PathLike,
    nlp: Language,
    *,
    stats: Optional[Stats] = None,
) -> Iterator[Doc]:
    """Gold Docs of a Prodigy JSONL file, one per accepted task, in file order.

    stats: a mutable mapping that receives counts ("docs", "entities", "gold_spans",
        "overlapping", "misaligned", "relations", "skipped").
    """
    path = Path(path)
    totals: Stats = {}
    n_tasks = 0
    first_line: Dict[str, int] = {}
    for line, task in iter_jsonl(path):
        n_tasks += 1
        counts: Stats = {}
        answer = task.get("answer", "accept")
        if answer in SKIP_ANSWERS:
            bump(counts, "skipped")
            merge_stats(counts, totals, stats)
            continue
        if answer not in KEEP_ANSWERS:
            raise DataError(path, line, f"unknown answer {answer!r} (expected accept, reject or ignore)")
        doc = _make_doc(path, line, nlp, task, counts)
        doc_id = get_doc_id(doc) or ""
        if doc_id in first_line:
            # Prodigy exports repeat an input for every annotator: kept, and counted.
            bump(counts, "duplicate_ids")
            logger.warning("%s, line %d: task id %r was first seen at line %d; both are kept", path, line, doc_id,
                           first_line[doc_id])
        else:
            first_line[doc_id] = line
        merge_stats(counts, totals, stats)
        yield doc
    check_not_empty(path, n_tasks, "tasks")
    log_misaligned(path, totals)


def _offsets(path: Path, line: int, rec: Any, what: str, text: str) -> Tuple[int, int]:
    text_len = len(text)
    if not isinstance(rec, dict):
        raise DataError(path, line, f"{what} must be an object with 'start' and 'end'")
    start, end = rec.get("start"), rec.get("end")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise DataError(path, line, f"{what}: 'start' and 'end' must be integers, got {start!r}, {end!r}")
    if not 0 <= start < end <= text_len:  # type: ignore[operator]
        raise DataError(path, line, f"{what}: offsets {start}-{end} out of range for a text of {text_len} characters")
    check_span_text(text, start, end, path, line, what)  # type: ignore[arg-type]
    return start, end  # type: ignore[return-value]


def _span(path: Path, line: int, doc: Doc, start: int, end: int, label: str, kb_id: str,
          counts: Stats) -> Span:
    return gold_span(doc, start, end, label, kb_id, path, line, "span", counts)


def _make_doc(path: Path, line: int, nlp: Language, task: Dict[str, Any], counts: Stats) -> Doc:
    text = task.get("text")
    if not isinstance(text, str):
        raise DataError(path, line, "'text' must be a string")
    doc = text_doc(nlp, text, path, line, counts)
    raw_spans = task.get("spans") or []
    if not isinstance(raw_spans, list):
        raise DataError(path, line, "'spans' must be a list")
    choice_id = _choice_id(task) if len(raw_spans) == 1 else None
    spans: List[Span] = []
    by_offsets: Dict[Tuple[int, int], Span] = {}
    for k, rec in enumerate(raw_spans):
        start, end = _offsets(path, line, rec, f"span {k}", text)
        label = rec.get("label")
        if not isinstance(label, str) or not label:
            raise DataError(path, line, f"span {k}: 'label' must be a non-empty string")
        kb_id = rec.get("kb_id")
        if kb_id is None:
            kb_id = choice_id or ""
        if not isinstance(kb_id, str):
            raise DataError(path, line, f"span {k}: 'kb_id' must be a string, got {kb_id!r}")
        span = _span(path, line, doc, start, end, label, kb_id, counts)
        spans.append(span)
        by_offsets.setdefault((start, end), span)
    set_gold(doc, spans, counts)
    raw_rels = task.get("relations") or []
    if not isinstance(raw_rels, list):
        raise DataError(path, line, "'relations' must be a list")
    relations: List[Relation] = []
    for k, rel in enumerate(raw_rels):
        if not isinstance(rel, dict):
            raise DataError(path, line, f"relation {k} must be an object")
        label = rel.get("label")
        if not isinstance(label, str) or not label:
            raise DataError(path, line, f"relation {k}: 'label' must be a non-empty string")
        args = []
        for key in ("head_span", "child_span"):
            start, end = _offsets(path, line, rel.get(key), f"relation {k} {key}", text)
            span = by_offsets.get((start, end))
            if span is None:
                arg_label = rel[key].get("label") or ""
                span = _span(path, line, doc, start, end, str(arg_label), "", counts)
            args.append(span)
        relations.append(Relation(args[0], label, args[1], 1.0))
    if relations:
        doc._.entlink_relations = relations
    bump(counts, "relations", len(relations))
    meta = task.get("meta")
    doc_id = meta.get("id") if isinstance(meta, dict) else None
    if doc_id is None:
        doc_id = task.get("_input_hash", line)
    set_doc_id(doc, str(doc_id))
    bump(counts, "docs")
    return doc


def _choice_id(task: Dict[str, Any]) -> Optional[str]:
    accept = task.get("accept")
    if not task.get("options") or not isinstance(accept, list) or len(accept) != 1:
        return None
    chosen = accept[0]
    if isinstance(chosen, int) and not isinstance(chosen, bool):
        chosen = str(chosen)
    if not isinstance(chosen, str):
        return None
    return "" if chosen.startswith("NIL") else chosen
