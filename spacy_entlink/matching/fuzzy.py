"""Fuzzy matching of word spans against KB alias keys, with length-dependent edit bounds.

A span of normalised text is compared with the KB's keys through the KB's trigram index
(exact recall within the edit bound, see `kb/grams.py`), then guarded against the typical
false positives of fuzzy dictionary matching:
- no edits at all below `min_length` characters (acronyms and short names are exact only);
- the allowed number of edits grows with length (`edit_lengths[k]` is the shortest key
  allowed k+1 edits);
- numbers, short words (<= 3 characters) and protected acronyms must be identical, so
  "type 1 diabetes" never matches "type 2 diabetes" and "hepatitis A" never "hepatitis B";
- a span of n words needs at least n - edits words that occur in the KB vocabulary, and at
  least one that does not (a span of KB words only is no typo of a KB name), and each word
  outside the vocabulary must be within one edit of a KB word (checked in the KB's
  single-deletion index, see `kb/neighbours.py`).
- a key that only adds or drops a suffix ("relapse"/"relapsed") is not a match.
"""

from bisect import bisect_right
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from ..kb import KnowledgeBase
from ..text import NormalizedText
from .exact import Match


def _signature(words: Iterable[str]) -> Tuple[str, ...]:
    return tuple(w for w in words if len(w) <= 3 or w.isupper() or any(c.isdigit() for c in w))


class FuzzyMatcher:
    """Word spans within an edit bound of an alias key that no exact match covers."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        edit_lengths: Sequence[int] = (5, 10, 20),
        max_words: int = 6,
        stop_words: FrozenSet[str] = frozenset(),
        cache_size: int = 200_000,
    ):
        self.kb = kb
        self.edit_lengths = sorted(int(x) for x in edit_lengths)
        self.max_words = max_words
        self.stop_words = stop_words
        self._cache: Dict[str, Optional[Tuple[int, float]]] = {}
        self._near: Dict[str, bool] = {}
        self._stop: Dict[str, bool] = {}
        self._cache_size = cache_size

    @property
    def min_length(self) -> int:
        return self.edit_lengths[0] if self.edit_lengths else 10**9

    def max_edits(self, length: int) -> int:
        return bisect_right(self.edit_lengths, length)  # how many thresholds `length` reaches

    def _fixable(self, word: str) -> bool:
        """Could an edit make this non-KB word a KB word? (exact for one edit; words long
        enough for two edits are always tried)."""
        hit = self._near.get(word)
        if hit is None:
            if len(word) < 2:
                hit = False
            elif len(self.edit_lengths) > 1 and len(word) >= self.edit_lengths[1]:
                hit = True
            else:
                hit = self.kb.near_word(word)
            if len(self._near) >= self._cache_size:
                self._near.clear()
            self._near[word] = hit
        return hit

    def lookup(self, key: str) -> Optional[Tuple[int, float]]:
        """Best alias row within the edit bound of `key` and its similarity, or None."""
        if key in self._cache:
            return self._cache[key]
        found = self.candidates(key, limit=1)
        best = found[0] if found else None
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = best
        return best

    def candidates(self, key: str, limit: int = 5, *, search_limit: int = 20) -> List[Tuple[int, float]]:
        """Alias rows within the edit bound of the normalised `key` that pass the guards above
        (exact hits excluded), best first, with their similarity; the one fuzzy rule that the
        dictionary and the linker's "fuzzy" candidate source share."""
        d = self.max_edits(len(key))
        if d <= 0:
            return []
        out: List[Tuple[int, float]] = []
        sig = _signature(key.split(" "))
        for row, edits, sim in self.kb.fuzzy_search(key, d, limit=search_limit):
            if edits == 0:
                continue  # exact hits are the exact matcher's
            other = self.kb.alias_key(row)
            if _signature(other.split(" ")) != sig:
                continue
            if other.startswith(key) or key.startswith(other):
                continue  # a bare suffix ("relapse"/"relapsed") is inflection, not a typo
            out.append((row, sim))
            if len(out) >= limit:
                break
        return out

    def _is_stop(self, word: str) -> bool:
        """A stop word, or a word without a letter (never the start or end of a fuzzy match)."""
        hit = self._stop.get(word)
        if hit is None:
            hit = word in self.stop_words or not any(c.isalpha() for c in word)
            if len(self._stop) >= self._cache_size:
                self._stop.clear()
            self._stop[word] = hit
        return hit

    def __call__(self, norm: NormalizedText, breaks: Sequence[bool], exact: Iterable[Match],
                 in_vocab: Optional[Sequence[bool]] = None) -> List[Match]:
        """Fuzzy matches of `norm`'s word spans; `in_vocab` (whether each word is a KB word)
        when the caller already knows it."""
        words = norm.words
        n = len(words)
        covered: Set[Tuple[int, int]] = {(m.start, m.end) for m in exact}
        if in_vocab is None:
            in_vocab = [self.kb.has_word(w) for w in words]
        fixable = [v or self._fixable(w) for v, w in zip(in_vocab, words)]
        is_stop = self._is_stop
        stop = [is_stop(w) for w in words]
        out: List[Match] = []
        min_len = self.min_length
        for i in range(n):
            if stop[i]:
                continue
            length = -1
            known = 0
            for j in range(i, min(n, i + self.max_words)):
                if j > i and breaks[j - 1]:
                    break
                length += len(words[j]) + 1
                known += in_vocab[j]
                if not fixable[j]:
                    break
                if stop[j] or length < min_len or (i, j + 1) in covered:
                    continue
                n_words = j - i + 1
                d = self.max_edits(length)
                if known < n_words - d or known == n_words:
                    continue
                key = " ".join(words[i : j + 1])
                hit = self.lookup(key)
                if hit is not None:
                    out.append(Match(i, j + 1, hit[0], hit[1], "fuzzy"))
        return out
