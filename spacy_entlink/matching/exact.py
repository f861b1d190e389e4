"""Exact matching of KB alias keys over the words of normalised text.

Matching walks words, not spaCy tokens, so it does not depend on how the tokenizer split
"Crohn's" or "5-FU"; the words map back to character offsets of the original text. The
compiled path (`ExactMatcher.scan_tokens`) finds the same words from a Doc's tokens, each
lexeme described once (`describe_piece` is its reference), and reports tokens.
"""

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from spacy.attrs import ENT_IOB, ORTH, SPACY
from spacy.tokens import Doc

from ..kb import KnowledgeBase
from ..kb.word_index import scan_text
from ..text import NormalizedText
from .native import extension

# A match never crosses a gap (the original text between two words) holding one of these,
# except a comma or period between two digits ("1,2-dichloroethane", "1.5").
_BREAK = re.compile(r"[.;:!?()\[\]{}\n\r\t|<>\"]|,")
_DIGIT_SEP = re.compile(r"^\s*[.,]\s*$")
_NOT_SPACE = re.compile(r"\S")
# Characters that separate words wherever they stand (ASCII other than letters, digits and
# the apostrophe, whose "'s" depends on what follows it).
_SEPARATORS = frozenset(chr(c) for c in range(128) if not chr(c).isalnum() and chr(c) != "'")

_native = extension()
_TOKEN_TEXTS: Dict[int, str] = {}  # orth -> text; an orth is a hash of the text, so this holds for every vocab
_TOKEN_TEXTS_MAX = 1 << 20
_ANNOTATE_ATTRS = [ORTH, SPACY, ENT_IOB]
_IN_PLACE: Optional[bool] = None


def docs_in_place() -> bool:
    """Whether the compiled paths read a Doc's tokens and write its entity tags in place (spaCy's
    structures as `matching/_scan.c` mirrors them, checked once on a test Doc), rather than
    through `Doc.to_array` / `Doc.from_array`."""
    global _IN_PLACE
    if _IN_PLACE is None:
        _IN_PLACE = False
        if _native is not None:
            from spacy.tokens import Span
            from spacy.vocab import Vocab

            doc = Doc(Vocab(), words=["Aa", "b", "cc", "d\u00e9", "e"], spaces=[True, False, True, False, False])
            doc.ents = [Span(doc, 1, 3, label="X", kb_id="Y"), Span(doc, 4, 5, label="Z")]
            tokens = [(t.orth, t.idx, bool(t.whitespace_), t.ent_iob, t.ent_type, t.ent_kb_id) for t in doc]
            _IN_PLACE = bool(_native.check_doc_layout(doc, tokens))
    return _IN_PLACE


def token_texts() -> Dict[int, str]:
    """This process's cache of token texts by orth, for the compiled paths (the StringStore
    decodes a new str on every look-up); emptied when full."""
    if len(_TOKEN_TEXTS) > _TOKEN_TEXTS_MAX:
        _TOKEN_TEXTS.clear()
    return _TOKEN_TEXTS


@dataclass(frozen=True)
class Match:
    """Words [start, end) of a NormalizedText that match alias key `alias_row`."""

    start: int
    end: int
    alias_row: int
    score: float
    source: str  # "exact" or "fuzzy"


def word_breaks(norm: NormalizedText) -> List[bool]:
    """breaks[k] is True when no match may join word k and word k+1."""
    text = norm.original
    out = []
    for k in range(len(norm.words) - 1):
        gap = text[norm.word_ends[k] : norm.word_starts[k + 1]]
        if gap == " ":
            out.append(False)
        elif _BREAK.search(gap):
            digits = (
                _DIGIT_SEP.match(gap) is not None
                and norm.words[k][-1:].isdigit()
                and norm.words[k + 1][:1].isdigit()
            )
            out.append(not digits)
        else:
            out.append(False)
    return out


def gap_summary(gap: str) -> int:
    """What `word_breaks` needs of a gap's text, in one byte: bit 0 a break character, bits
    1-2 the number of non-space characters (2 = more), bit 3 that character is "." or ","."""
    chars = _NOT_SPACE.findall(gap)
    n = min(len(chars), 2)
    return (1 if _BREAK.search(gap) else 0) | (n << 1) | (8 if n == 1 and chars[0] in ".," else 0)


def describe_piece(kb: KnowledgeBase, text: str):
    """A piece of text (a token, or tokens joined without a separator) as the compiled token
    scan reads it (`matching/_scan.c` TokenScan.describe, held equal to this reference by the
    tests): (word ids in the KB's word index, breaks between its words, word starts, word ends,
    flags, gap summary before the first word (of the whole text when it has none), after the
    last word). Flags: 1 / 2 the text begins / ends with a separator, 4 / 8 its first / last
    word begins / ends with a digit."""
    norm = kb.normalizer.normalize(text)
    words = norm.words
    flags = (1 if text[:1] in _SEPARATORS and text else 0) | (2 if text[-1:] in _SEPARATORS and text else 0)
    if not words:
        return [], b"", [], [], flags, gap_summary(text), 0
    flags |= (4 if words[0][:1].isdigit() else 0) | (8 if words[-1][-1:].isdigit() else 0)
    word_id = kb.word_index.word_id
    return ([word_id(w) for w in words], bytes(word_breaks(norm)), norm.word_starts, norm.word_ends, flags,
            gap_summary(text[: norm.word_starts[0]]), gap_summary(text[norm.word_ends[-1] :]))


class ExactMatcher:
    """Finds every word span whose normalised text is an alias key (nested ones too)."""

    def __init__(self, kb: KnowledgeBase, max_words: int = 12):
        self.kb = kb
        self.max_words = max_words
        self._tokens = None
        if _native is not None and kb.word_index is not None:
            norm = kb.normalizer
            self._tokens = _native.TokenScan(kb.word_index, norm._char, norm._word, norm.config.acronym_max_len,
                                             norm.config.fold_plurals, max_words)

    def __reduce__(self):  # the compiled scan is rebuilt, not pickled (nlp.pipe(n_process=...) with spawn)
        return (ExactMatcher, (self.kb, self.max_words))

    def scan_tokens(self, doc: Doc) -> Optional[List[Tuple[int, int, int, int, int]]]:
        """The matches of `scan(doc.text)` as (first token, end token, alias row, start char,
        end char), tokens aligned like `doc.char_span(..., alignment_mode="expand")`, in compiled
        code over the Doc's tokens (no text is built; `matching/_scan.c` TokenScan); None where
        the KB has no word index or the extension is not built."""
        if self._tokens is None:
            return None
        return self._tokens.matches(doc if docs_in_place() else doc.to_array([ORTH, SPACY]), doc.vocab.strings,
                                    token_texts())

    def annotate_tokens(self, doc: Doc, rows: dict, row_info, assign: int, ents: int, values):
        """The dictionary's output for exact matches in a Doc without entities, in compiled code
        (`matching/_scan.c` TokenScan.annotate, which says what the arguments are; its entity
        tags come back as an array for `Doc.from_array`, or True where they were written in
        place); None where the Doc has entities, the KB has no word index or the extension is
        not built."""
        if self._tokens is None:
            return None
        return self._tokens.annotate(doc if docs_in_place() else doc.to_array(_ANNOTATE_ATTRS), doc.vocab.strings,
                                     token_texts(), rows, row_info, assign, ents, values)

    def scan(self, text: str) -> Tuple[NormalizedText, Sequence[bool], List[Match], Optional[List[bool]]]:
        """Normalise `text`, find its word breaks, its exact matches and (compiled only) which
        words are KB words: in compiled code over the KB's word index where it has one, else
        `normalize` + `word_breaks` + `__call__` (the same result; the compiled text has word
        offsets only, no character maps)."""
        kb = self.kb
        if kb.word_index is None:
            norm = kb.normalizer.normalize(text)
            breaks = word_breaks(norm)
            return norm, breaks, self(norm, breaks), None
        words, starts, ends, breaks, ids, found = scan_text(kb.word_index, kb.normalizer, text, self.max_words)
        norm = NormalizedText(text, " ".join(words), words, starts, ends)
        return norm, breaks, [Match(i, j, row, 1.0, "exact") for i, j, row in found], [i >= 0 for i in ids]

    def __call__(self, norm: NormalizedText, breaks: Sequence[bool]) -> List[Match]:
        kb = self.kb
        words = norm.words
        n = len(words)
        has_word = kb.has_word
        alias_row = kb.alias_row
        has_prefix = kb.has_prefix
        max_words = self.max_words
        # One vocabulary look-up per word (a word is tried as a start and as a continuation).
        in_vocab = [has_word(w) for w in words]
        out: List[Match] = []
        for i in range(n):
            if not in_vocab[i]:
                continue
            prefix = words[i]
            j = i + 1
            while True:
                row = alias_row(prefix)
                if row is not None:
                    out.append(Match(i, j, row, 1.0, "exact"))
                if j >= n or j - i >= max_words or breaks[j - 1]:
                    break
                if not in_vocab[j]:
                    break
                nxt = words[j]
                prefix = prefix + " "
                if not has_prefix(prefix + nxt):
                    break
                prefix = prefix + nxt
                j += 1
        return out
