"""Single-deletion neighbourhoods of the KB vocabulary (SymSpell-style), for fuzzy anchors.

`word_deletes.marisa` holds every string obtained by deleting one character from a KB word
of at least `MIN_LEN` characters. A word `w` is within one Levenshtein edit of some KB word
exactly when `w` is in that set (a deletion), one of `w`'s own deletions is a KB word (an
insertion) or is in the set (a substitution). The fuzzy matcher uses this to skip, at the
cost of a few trie look-ups, text words that no single edit turns into a KB word.
"""

from pathlib import Path
from typing import Iterable

import marisa_trie

MIN_LEN = 4


def deletions(word: str):
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def write_word_deletes(words: Iterable[str], path: Path) -> None:
    out = set()
    for w in words:
        if len(w) >= MIN_LEN:
            out.update(deletions(w))
    marisa_trie.Trie(out).save(str(path / "word_deletes.marisa"))


def within_one_edit(word: str, vocab: marisa_trie.Trie, deletes: marisa_trie.Trie) -> bool:
    """True if some vocabulary word is at most one Levenshtein edit from `word`."""
    if word in vocab or word in deletes:
        return True
    for d in deletions(word):
        if d in vocab or d in deletes:
            return True
    return False
