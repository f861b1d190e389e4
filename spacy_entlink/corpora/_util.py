"""Helpers shared by the corpus readers: file opening, gold-span placement, doc ids, stats."""

import logging
from pathlib import Path
from typing import Iterable, List, MutableMapping, Optional, Sequence, Union

from spacy.tokens import Doc, Span
from spacy.util import filter_spans
from spacy.vocab import Vocab

from ..errors import DataError
from ..files import iter_jsonl, numbered_lines, open_text  # noqa: F401 (re-exported)
from ..extensions import install_extensions

logger = logging.getLogger("spacy_entlink.corpora")

PathLike = Union[str, Path]
Stats = MutableMapping[str, int]

GOLD_SPANS_KEY = "entlink_gold"
"""`doc.spans` key holding every gold mention, overlapping ones included."""
DOC_ID_KEY = "entlink_doc_id"
"""`doc.user_data` key holding the document's id in its corpus (PMID, orig_id, AIDA number...)."""
CANDIDATE_COUNTS_KEY = "entlink_candidate_counts"
"""`doc.user_data` key: {"start_char:end_char": [in_count, ...]} parallel to `span._.entlink_candidates`."""

install_extensions()


def bump(stats: Optional[Stats], key: str, n: int = 1) -> None:
    """Add `n` to `stats[key]` when a stats mapping was given."""
    if stats is not None:
        stats[key] = stats.get(key, 0) + n


def merge_stats(counts: Stats, *targets: Optional[Stats]) -> None:
    """Add `counts` into each of `targets` that is not None."""
    for target in targets:
        if target is not None:
            for key, value in counts.items():
                bump(target, key, value)


def check_file(path: PathLike) -> Path:
    """`path` as a Path, or a DataError if it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found" if not path.exists() else "not a file")
    return path


def gold_span(doc: Doc, start: int, end: int, label: str, kb_id: str, path: PathLike, line: int,
              what: str, stats: Optional[Stats] = None) -> Span:
    """The span of characters [start, end), expanded to token boundaries when it cuts a token
    (counted as "misaligned"); DataError naming `path` and `line` when it covers no token."""
    span = doc.char_span(start, end, label=label, kb_id=kb_id)
    if span is None:
        span = doc.char_span(start, end, label=label, kb_id=kb_id, alignment_mode="expand")
        if span is None:
            raise DataError(path, line, f"{what} at {start}-{end} covers no token")
        bump(stats, "misaligned")
        logger.debug("%s, line %d: %s at %d-%d expanded to token boundaries: %r", path, line, what, start, end, span.text)
    return span


def text_doc(nlp, text: str, path: PathLike, line: int, stats: Optional[Stats] = None) -> Doc:
    """`text` tokenized by `nlp`'s tokenizer. A text longer than `nlp.max_length` (which
    `nlp.make_doc` refuses) is tokenized all the same, counted as "over_max_length" and
    logged: gold conversion runs no parser or NER, but a pipeline that does will need
    `nlp.max_length` raised or the document split."""
    if len(text) > nlp.max_length:
        bump(stats, "over_max_length")
        logger.warning("%s, line %d: a document of %d characters, over nlp.max_length (%d); tokenized anyway",
                       path, line, len(text), nlp.max_length)
        return nlp.tokenizer(text)
    return nlp.make_doc(text)


def parse_offset(value: str, path: PathLike, line: int, what: str) -> int:
    """A character offset written as plain ASCII digits; DataError for anything else
    ("1_0", "+3", " 3", "٣" all pass `int()` but are not offsets a tool writes)."""
    if not (value.isascii() and value.isdigit()):
        raise DataError(path, line, f"{what} offset {value!r} is not an integer of digits 0-9")
    return int(value)


def check_span_text(text: str, start: int, end: int, path: PathLike, line: int, what: str) -> None:
    """DataError when the characters [start, end) of `text` are all whitespace."""
    if not text[start:end].strip():
        raise DataError(path, line, f"{what} at {start}-{end} covers only whitespace ({text[start:end]!r})")


class DocIds:
    """The document ids seen so far in one file, to refuse a second document with an id."""

    def __init__(self, path: PathLike, what: str = "document id") -> None:
        self.path, self.what, self.first = path, what, {}

    def add(self, doc_id: str, line: Optional[int]) -> None:
        if doc_id in self.first:
            first = self.first[doc_id]
            where = f" (first at line {first})" if first is not None else ""
            raise DataError(self.path, line, f"a second document with {self.what} {doc_id!r}{where}; "
                                             "give each document its own id")
        self.first[doc_id] = line


def check_not_empty(path: PathLike, n_docs: int, what: str = "documents") -> None:
    """DataError when a corpus file gave no documents (an empty or wrong file)."""
    if n_docs == 0:
        raise DataError(path, None, f"no {what} in the file (empty, or not in this format?)")


def token_doc(vocab: Vocab, words: Sequence[str], sent_starts: Optional[Sequence[bool]] = None) -> Doc:
    """A Doc of `words`, one space between tokens and none after the last one."""
    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    if sent_starts is not None:
        return Doc(vocab, words=list(words), spaces=spaces, sent_starts=list(sent_starts))
    return Doc(vocab, words=list(words), spaces=spaces)


def set_gold(doc: Doc, spans: Iterable[Span], stats: Optional[Stats] = None) -> List[Span]:
    """Store `spans` as the gold mentions of `doc`.

    All of them go into `doc.spans["entlink_gold"]`; the longest non-overlapping subset
    (earlier first on ties) becomes `doc.ents`. Returns the spans kept in `doc.ents`.
    Counts "entities" (in doc.ents), "gold_spans" and "overlapping" (left out of doc.ents).
    """
    spans = list(spans)
    kept = filter_spans(spans)
    doc.set_ents(kept, default="outside")
    doc.spans[GOLD_SPANS_KEY] = spans
    bump(stats, "entities", len(kept))
    bump(stats, "gold_spans", len(spans))
    bump(stats, "overlapping", len(spans) - len(kept))
    return kept


def set_doc_id(doc: Doc, doc_id: str) -> None:
    """Record the document's corpus id in `doc.user_data["entlink_doc_id"]`."""
    doc.user_data[DOC_ID_KEY] = str(doc_id)


def get_doc_id(doc: Doc) -> Optional[str]:
    """The corpus id recorded by a reader, or None."""
    value = doc.user_data.get(DOC_ID_KEY)
    return None if value is None else str(value)


def char_key(span: Span) -> str:
    """The "start_char:end_char" key used in `doc.user_data["entlink_candidate_counts"]`."""
    return f"{span.start_char}:{span.end_char}"


def log_misaligned(path: PathLike, stats: Stats) -> None:
    """Log a one-line summary when some mentions did not align with token boundaries."""
    n = stats.get("misaligned", 0)
    if n:
        logger.warning("%s: %d of %d mentions did not align with token boundaries and were expanded",
                       path, n, stats.get("gold_spans", 0))
