"""AIDA CoNLL-YAGO reader: AIDA-YAGO2 TSV documents with Wikipedia-linked mentions.

Input (TSV): `-DOCSTART- (n)` (or `-DOCSTART- (n words...)`) starts document `n`; then
one token per line, a blank line after each sentence. A token inside a mention has 4
tab-separated columns: token, `B` (first token) or `I`, the full mention text, and the
Wikipedia title or `--NME--` (NIL). Extra columns of the original release (URL, ids) are
ignored.

Output: one gold `Doc` per document, built from the given tokens (one space between
tokens), with sentence starts set and the mentions in `doc.ents` (and
`doc.spans["entlink_gold"]`), labelled "ENT" (see `label`), `kb_id_` = the title, or ""
for NIL. A mention whose tokens lie on both sides of a sentence break (CoNLL-2003 splits
a few names) stays one entity and the sentence break is kept; such an entity spans two
sentences (counted as "cross_sentence"). `doc.user_data["entlink_doc_id"]` is `n`.

Candidates (optional JSONL, one mention per line, in document order, with `doc`,
`start_token`, `end_token` (exclusive, counted over the document's tokens), `gold` and
`candidates` [{"title", "in_count"}]): each line is attached to the entity with those
tokens: `span._.entlink_candidates` gets the titles in the order given, and
`doc.user_data["entlink_candidate_counts"]["start_char:end_char"]` their in_counts. A line
that matches no mention of the TSV, or whose `gold` disagrees with it, is a DataError
naming the JSONL file and line.
"""

import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..errors import DataError
from ._util import (CANDIDATE_COUNTS_KEY, DocIds, PathLike, Stats, bump, char_key, check_file, check_not_empty,
                    iter_jsonl, merge_stats, numbered_lines, set_doc_id, set_gold, token_doc)

__all__ = ["read_aida", "NIL"]

NIL = "--NME--"
_DOCSTART = re.compile(r"^-DOCSTART-\s*(?:\((\S+?)(?:\s.*)?\))?\s*$")


class _Mention:
    __slots__ = ("start", "end", "text", "title", "line", "cross_sentence")

    def __init__(self, start: int, text: str, title: str, line: int) -> None:
        self.start = start
        self.end = start + 1
        self.text = text
        self.title = title
        self.line = line
        self.cross_sentence = False


class _DocBuffer:
    def __init__(self, doc_id: str, line: int) -> None:
        self.doc_id = doc_id
        self.line = line
        self.words: List[str] = []
        self.sent_starts: List[bool] = []
        self.mentions: List[_Mention] = []
        self.open: Optional[_Mention] = None
        self.new_sentence = True


class _CandidateStream:
    """The candidates JSONL read alongside the TSV, one document at a time."""

    def __init__(self, path: Path) -> None:
        self.path = check_file(path)
        self._lines = iter_jsonl(self.path)
        self._next: Optional[Tuple[int, dict]] = None
        self._advance()

    def _advance(self) -> None:
        self._next = next(self._lines, None)

    def _doc_of(self, line: int, rec: dict) -> str:
        value = rec.get("doc")
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            raise DataError(self.path, line, f"'doc' must be a document number, got {value!r}")
        return str(value)

    def take(self, doc_id: str) -> List[Tuple[int, dict]]:
        """The lines of document `doc_id` at the head of the stream."""
        out = []
        while self._next is not None and self._doc_of(*self._next) == doc_id:
            out.append(self._next)
            self._advance()
        return out

    def check_exhausted(self, tsv: Path) -> None:
        if self._next is not None:
            line, rec = self._next
            raise DataError(self.path, line, f"document {self._doc_of(line, rec)} is not in {tsv}, or the "
                                             f"candidates are not in the TSV's document order")


def read_aida(
    path: PathLike,
    nlp: Language,
    *,
    candidates: Optional[PathLike] = None,
    label: str = "ENT",
    stats: Optional[Stats] = None,
) -> Iterator[Doc]:
    """Gold Docs of an AIDA-YAGO2 TSV file, one per document, in file order.

    candidates: a candidates JSONL for the same documents, attached to the entities.
    label: the entity label of every mention.
    stats: a mutable mapping that receives counts ("docs", "entities", "gold_spans", "nil",
        "cross_sentence", "sentences", "with_candidates").
    """
    path = Path(path)
    stream = _CandidateStream(Path(candidates)) if candidates is not None else None
    buf: Optional[_DocBuffer] = None
    n_docs = 0
    n_made = 0
    seen = DocIds(path)
    for i, line in numbered_lines(path):
        if line.startswith("-DOCSTART-"):
            m = _DOCSTART.match(line)
            if m is None:
                raise DataError(path, i, f"malformed -DOCSTART- line {line!r} (expected '-DOCSTART- (n)')")
            if buf is not None and buf.words:
                n_made += 1
                yield _make_doc(path, nlp, buf, label, stream, stats)
            n_docs += 1
            buf = _DocBuffer(m.group(1) or str(n_docs), i)
            seen.add(buf.doc_id, i)
            continue
        if not line.strip():
            if buf is not None:
                buf.new_sentence = True
            continue
        if buf is None:
            raise DataError(path, i, "token line before the first -DOCSTART- line")
        cols = line.split("\t")
        if not cols[0].strip():
            raise DataError(path, i, f"empty or whitespace-only token {cols[0]!r}")
        if len(cols) == 1:
            _close(path, buf)
        elif 4 <= len(cols) <= 7:
            tag, text, title = cols[1], cols[2], cols[3]
            if not text or not title:
                raise DataError(path, i, "empty mention text or title")
            if tag == "B":
                _close(path, buf)
                buf.open = _Mention(len(buf.words), text, title, i)
            elif tag == "I":
                mention = buf.open
                if mention is None:
                    raise DataError(path, i, "'I' line outside a mention (expected 'B' on the mention's first token)")
                if mention.text != text or mention.title != title:
                    raise DataError(path, i, f"'I' line for {text!r} -> {title} continues the mention {mention.text!r} "
                                             f"-> {mention.title} opened on line {mention.line}")
                if buf.new_sentence:
                    mention.cross_sentence = True
                mention.end = len(buf.words) + 1
            else:
                raise DataError(path, i, f"second column must be 'B' or 'I', got {tag!r}")
        else:
            raise DataError(path, i, f"expected 1 tab-separated column (token) or 4 (token, B/I, mention, "
                                     f"title), got {len(cols)}")
        buf.words.append(cols[0])
        buf.sent_starts.append(buf.new_sentence)
        buf.new_sentence = False
    if buf is not None and buf.words:
        n_made += 1
        yield _make_doc(path, nlp, buf, label, stream, stats)
    check_not_empty(path, n_made)
    if stream is not None:
        stream.check_exhausted(path)


def _close(path: Path, buf: _DocBuffer) -> None:
    mention = buf.open
    if mention is None:
        return
    buf.open = None
    tokens = "".join(buf.words[mention.start:mention.end])
    if "".join(mention.text.split()) != tokens:
        raise DataError(path, mention.line, f"mention text {mention.text!r} does not match its tokens "
                                            f"{' '.join(buf.words[mention.start:mention.end])!r}")
    buf.mentions.append(mention)


def _make_doc(
    path: Path, nlp: Language, buf: _DocBuffer, label: str,
    stream: Optional[_CandidateStream], stats: Optional[Stats],
) -> Doc:
    _close(path, buf)
    counts: Stats = {}
    doc = token_doc(nlp.vocab, buf.words, buf.sent_starts)
    spans = []
    for m in buf.mentions:
        spans.append(Span(doc, m.start, m.end, label=label, kb_id="" if m.title == NIL else m.title))
        bump(counts, "nil", int(m.title == NIL))
        bump(counts, "cross_sentence", int(m.cross_sentence))
    set_gold(doc, spans, counts)
    if stream is not None:
        _attach_candidates(stream, buf.doc_id, doc, spans, counts)
    set_doc_id(doc, buf.doc_id)
    bump(counts, "sentences", sum(buf.sent_starts))
    bump(counts, "docs")
    merge_stats(counts, stats)
    return doc


def _attach_candidates(stream: _CandidateStream, doc_id: str, doc: Doc, spans: List[Span], counts: Stats) -> None:
    by_tokens: Dict[Tuple[int, int], Span] = {(s.start, s.end): s for s in spans}
    seen: Dict[Tuple[int, int], int] = {}
    in_counts: Dict[str, List[int]] = {}
    path = stream.path
    for line, rec in stream.take(doc_id):
        start, end = rec.get("start_token"), rec.get("end_token")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise DataError(path, line, f"'start_token' and 'end_token' must be integers, got {start!r}, {end!r}")
        span = by_tokens.get((start, end))
        if span is None:
            raise DataError(path, line, f"mention {rec.get('mention')!r} at tokens {start}-{end} of document "
                                        f"{doc_id} is not a mention of the TSV")
        if (start, end) in seen:
            raise DataError(path, line, f"second line for the mention at tokens {start}-{end} of document "
                                        f"{doc_id} (first on line {seen[(start, end)]})")
        seen[(start, end)] = line
        gold = rec.get("gold")
        if (gold or "") != span.kb_id_:
            raise DataError(path, line, f"gold {gold!r} differs from the TSV's title "
                                        f"{span.kb_id_ or NIL!r} for {span.text!r}")
        cands = rec.get("candidates")
        if not isinstance(cands, list) or not all(
            isinstance(c, dict) and isinstance(c.get("title"), str) and isinstance(c.get("in_count"), int)
            and not isinstance(c.get("in_count"), bool) for c in cands
        ):
            raise DataError(path, line, "'candidates' must be a list of {\"title\": str, \"in_count\": int}")
        span._.entlink_candidates = [c["title"] for c in cands]
        in_counts[char_key(span)] = [c["in_count"] for c in cands]
        bump(counts, "with_candidates")
    if in_counts:
        doc.user_data[CANDIDATE_COUNTS_KEY] = in_counts
