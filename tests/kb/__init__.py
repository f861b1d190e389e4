"""Helpers for the KB tests: invented, realistic-looking entity names in bulk.

Names are made of words built from syllables plus a medical-looking suffix, mixed with
common connector words ("disease", "type 2", "of the") and capitals, so that keys share
words and trigrams the way real vocabularies do. Everything is drawn with numpy; the only
per-name Python work is one `" ".join`, so millions of names take seconds.
"""

from typing import List

import numpy as np

_ONSETS = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "ch", "cl", "cr", "dr", "fl", "gr", "ph", "pl", "pr", "sc", "sp", "st", "th", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "y", "ae", "ai", "ea", "io", "ou"]
_CODAS = ["", "", "", "n", "r", "s", "l", "m", "x", "t", "c", "st", "nd"]
_SUFFIXES = ["", "", "itis", "osis", "oma", "emia", "pathy", "plasia", "trophy", "algia", "ase", "in", "ol"]
_CONNECT = ["disease", "syndrome", "deficiency", "type 1", "type 2", "of the", "with", "familial",
            "congenital", "acute", "chronic", "X-linked", "and", "(disorder)", "cancer", "protein"]


def _pick(rng: np.random.Generator, items: List[str], n: int) -> np.ndarray:
    return np.array(items, dtype=object)[rng.integers(0, len(items), n)]


def make_words(rng: np.random.Generator, n: int) -> np.ndarray:
    """n invented words of 1..4 syllables plus an optional suffix (object array)."""
    k = rng.integers(1, 5, n)
    out = _pick(rng, _ONSETS, n) + _pick(rng, _VOWELS, n) + _pick(rng, _CODAS, n)
    for extra in range(1, 4):
        m = k > extra
        c = int(m.sum())
        out[m] = out[m] + _pick(rng, _ONSETS, c) + _pick(rng, _VOWELS, c) + _pick(rng, _CODAS, c)
    return out + _pick(rng, _SUFFIXES, n)


def make_names(rng: np.random.Generator, n: int, vocab: np.ndarray) -> List[str]:
    """n names of 1..4 words drawn Zipf-like from `vocab`, with connectors and capitals."""
    vocab = np.asarray(vocab, dtype=object)
    nw = rng.choice([1, 2, 3, 4], size=n, p=[0.2, 0.4, 0.3, 0.1])
    total = int(nw.sum())
    ranks = np.minimum((len(vocab) * rng.random(total) ** 2.5).astype(np.int64), len(vocab) - 1)
    words = vocab[ranks]
    conn = rng.random(total) < 0.15
    words[conn] = _pick(rng, _CONNECT, int(conn.sum()))
    cap = rng.random(total) < 0.3
    words[cap] = np.array([w.capitalize() for w in words[cap]], dtype=object)
    ends = np.cumsum(nw).tolist()
    starts = [0] + ends[:-1]
    flat = words.tolist()
    return [" ".join(flat[a:b]) for a, b in zip(starts, ends)]


def synthetic_names(n: int, seed: int = 0, vocab_size: int = 0) -> List[str]:
    """n names (not necessarily distinct) over a vocabulary of `vocab_size` words."""
    rng = np.random.default_rng(seed)
    vocab = make_words(rng, vocab_size or max(100, n // 4))
    return make_names(rng, n, vocab)


def snapshot(kb) -> tuple:
    """Everything a KB answers, as plain data: ids, names, aliases, descriptions, types,
    priors, alias keys and their candidates."""
    rows = range(len(kb))
    return (
        [kb.get_id(r) for r in rows],
        [kb.get_name(r) for r in rows],
        [kb.get_aliases(r) for r in rows],
        [kb.get_description(r) for r in rows],
        [kb.get_type(r) for r in rows],
        [kb.get_prior(r) for r in rows],
        [(kb.alias_key(a), kb.candidates_for_alias_row(a)) for a in range(kb.n_aliases)],
    )
