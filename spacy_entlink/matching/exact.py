"""Exact matching of KB alias keys over the words of normalised text.

Matching walks words, not spaCy tokens, so it does not depend on how the tokenizer split
"Crohn's" or "5-FU"; the words map back to character offsets of the original text.
"""

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..kb import KnowledgeBase
from ..kb.word_index import scan_text
from ..text import NormalizedText

# A match never crosses a gap (the original text between two words) holding one of these,
# except a comma or period between two digits ("1,2-dichloroethane", "1.5").
_BREAK = re.compile(r"[.;:!?()\[\]{}\n\r\t|<>\"]|,")
_DIGIT_SEP = re.compile(r"^\s*[.,]\s*$")


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


class ExactMatcher:
    """Finds every word span whose normalised text is an alias key (nested ones too)."""

    def __init__(self, kb: KnowledgeBase, max_words: int = 12):
        self.kb = kb
        self.max_words = max_words

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
