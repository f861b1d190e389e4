"""Single-deletion neighbourhoods of the KB vocabulary (SymSpell-style), for fuzzy anchors.

`word_deletes.marisa` holds every string obtained by deleting one character from a KB word
of at least `MIN_LEN` characters. A word `w` is within one Levenshtein edit of some KB word
exactly when `w` is in that set (a deletion), one of `w`'s own deletions is a KB word (an
insertion) or is in the set (a substitution). The fuzzy matcher uses this to skip, at the
cost of a few trie look-ups, text words that no single edit turns into a KB word.
"""

import logging
from pathlib import Path
from typing import Iterable, List

import marisa_trie

from .numbering import distinct

MIN_LEN = 4
MAX_LEN = 64
"""Words longer than this get no deletions (their number and total size grow with the square
of the length: a 10 MB "word" would never finish); `within_one_edit` answers True for
any word of at least MAX_LEN characters, so no neighbour of a long KB word is skipped."""

logger = logging.getLogger("spacy_entlink.kb")


def deletions(word: str):
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def write_word_deletes(words: Iterable[str], path: Path) -> None:
    # A list made distinct in first-seen order, not a set: marisa builds the same trie faster
    # from keys grouped by word than from a set's hash order.
    out: List[str] = []
    long_words = 0
    for w in words:
        if len(w) > MAX_LEN:
            long_words += 1
        elif len(w) >= MIN_LEN:
            out += [w[:i] + w[i + 1 :] for i in range(len(w))]
    if long_words:
        logger.warning("%d KB words are longer than %d characters: they get no one-edit neighbourhood, and any "
                       "text word of %d or more characters is tried by the fuzzy matcher", long_words, MAX_LEN, MAX_LEN)
    marisa_trie.Trie(distinct(out)).save(str(path / "word_deletes.marisa"))


def within_one_edit(word: str, vocab: marisa_trie.Trie, deletes: marisa_trie.Trie) -> bool:
    """True if some vocabulary word may be at most one Levenshtein edit from `word` (always
    for words of MAX_LEN or more characters, whose KB neighbours have no deletions stored)."""
    if len(word) >= MAX_LEN:
        return True
    if word in vocab or word in deletes:
        return True
    for d in deletions(word):
        if d in vocab or d in deletes:
            return True
    return False
