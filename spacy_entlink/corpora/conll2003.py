"""CoNLL-2003 NER reader: `token POS chunk NER` lines, IOB1 tags, documents split by -DOCSTART-.

Input: one token per line with 4 space-separated columns, a blank line after each
sentence, and `-DOCSTART- -X- O O` lines between documents. The -DOCSTART- lines may
come first (the usual layout) or last (as in some copies): they only separate documents,
and no empty document is produced.

Tags are IOB1: `I-X` inside an entity, `B-X` only to start an entity right after another
X entity. IOB2 files (every entity starting with `B-`) read the same way. Entities never
cross a blank line.

Output: one gold `Doc` per document, built from the given tokens (one space between
tokens), with sentence starts set, entities in `doc.ents` (and `doc.spans["entlink_gold"]`)
without KB ids, and `doc.user_data["entlink_doc_id"]` = the document's 1-based position in
the file. Lines with another column count or an invalid tag raise `DataError` naming the
file and line.
"""

import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..errors import DataError
from ._util import PathLike, Stats, bump, check_not_empty, merge_stats, numbered_lines, set_doc_id, set_gold, token_doc

__all__ = ["read_conll2003", "DOCSTART"]

DOCSTART = "-DOCSTART-"
_TAG = re.compile(r"^(?:O|[IB]-\S+)$")


class _DocBuffer:
    """Tokens, sentence starts and entity spans of the document being read."""

    def __init__(self) -> None:
        self.words: List[str] = []
        self.sent_starts: List[bool] = []
        self.spans: List[Tuple[int, int, str]] = []
        self.open: Optional[List] = None  # [start, end, label] of the entity being read
        self.new_sentence = True

    def end_sentence(self) -> None:
        self._close()
        self.new_sentence = True

    def add(self, word: str, tag: str) -> None:
        self.sent_starts.append(self.new_sentence)
        self.new_sentence = False
        i = len(self.words)
        self.words.append(word)
        if tag == "O":
            self._close()
            return
        prefix, label = tag[0], tag[2:]
        if prefix == "I" and self.open is not None and self.open[2] == label:
            self.open[1] = i + 1
            return
        self._close()
        self.open = [i, i + 1, label]

    def _close(self) -> None:
        if self.open is not None:
            self.spans.append((self.open[0], self.open[1], self.open[2]))
            self.open = None


def read_conll2003(
    path: PathLike,
    nlp: Language,
    *,
    stats: Optional[Stats] = None,
) -> Iterator[Doc]:
    """Gold Docs of a CoNLL-2003 file, one per document, in file order.

    stats: a mutable mapping that receives counts ("docs", "entities", "gold_spans",
        "sentences").
    """
    path = Path(path)
    buf = _DocBuffer()
    n_docs = 0
    for i, line in numbered_lines(path):
        cols = line.split()
        if not cols:
            buf.end_sentence()
            continue
        if cols[0] == DOCSTART:
            if buf.words:
                n_docs += 1
                yield _make_doc(nlp, buf, n_docs, stats)
            buf = _DocBuffer()
            continue
        if len(cols) != 4:
            raise DataError(path, i, f"expected 4 space-separated columns (token POS chunk NER), got {len(cols)}")
        tag = cols[3]
        if not _TAG.match(tag):
            raise DataError(path, i, f"invalid NER tag {tag!r} (expected O, I-TYPE or B-TYPE)")
        buf.add(cols[0], tag)
    if buf.words:
        n_docs += 1
        yield _make_doc(nlp, buf, n_docs, stats)
    check_not_empty(path, n_docs)


def _make_doc(nlp: Language, buf: _DocBuffer, number: int, stats: Optional[Stats]) -> Doc:
    buf.end_sentence()
    counts: Stats = {}
    doc = token_doc(nlp.vocab, buf.words, buf.sent_starts)
    set_gold(doc, [Span(doc, s, e, label=label) for s, e, label in buf.spans], counts)
    set_doc_id(doc, str(number))
    bump(counts, "sentences", sum(buf.sent_starts))
    bump(counts, "docs")
    merge_stats(counts, stats)
    return doc
