"""Character-trigram index over normalised alias keys, for exact-recall fuzzy search.

Every key is padded with one space on each side and cut into trigrams, coded as 63-bit
integers (three 21-bit code points). Postings are CSR arrays. A Levenshtein edit destroys
at most three trigrams, so an alias within `d` edits of a query shares at least
`n - 3d` of the query's `n` distinct trigrams (the count filter); it then must occur in
one of the query's `3d + 1` rarest trigram lists (prefix filtering), which is where the
shortlist comes from. rapidfuzz checks the shortlist with `score_cutoff`.
"""

from pathlib import Path
from typing import List, Sequence, Tuple

import marisa_trie
import numpy as np
from rapidfuzz.distance import Levenshtein

_SHIFT = np.uint64(21)


def _codes(padded: str) -> np.ndarray:
    cp = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cp) < 3:
        return np.zeros(0, dtype=np.uint64)
    return (cp[:-2] << (_SHIFT * np.uint64(2))) | (cp[1:-1] << _SHIFT) | cp[2:]


def query_grams(key: str) -> np.ndarray:
    """Distinct trigram codes of a normalised key."""
    return np.unique(_codes(f" {key} "))


def build_gram_index(keys: Sequence[str], path: Path, chunk: int = 2_000_000) -> None:
    """Write grams.npy, gram_ptr.npy, gram_post.npy and key_len.npy for `keys` (in row order)."""
    n = len(keys)
    lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=n)
    np.save(path / "key_len.npy", np.minimum(lengths, 65535).astype(np.uint16))
    all_codes: List[np.ndarray] = []
    all_rows: List[np.ndarray] = []
    for start in range(0, n, chunk):
        part = keys[start : start + chunk]
        padded = " " + "  ".join(part) + " "  # each key padded by one space on each side
        cp = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        plen = lengths[start : start + len(part)] + 2
        offsets = np.zeros(len(part) + 1, dtype=np.int64)
        np.cumsum(plen, out=offsets[1:])
        codes = (cp[:-2] << (_SHIFT * np.uint64(2))) | (cp[1:-1] << _SHIFT) | cp[2:]
        owner = np.repeat(np.arange(len(part), dtype=np.int64), plen)[: len(codes)]
        valid = (np.arange(len(codes)) - offsets[owner]) <= (plen[owner] - 3)
        all_codes.append(codes[valid])
        all_rows.append((owner[valid] + start).astype(np.uint32))
    codes = np.concatenate(all_codes) if all_codes else np.zeros(0, np.uint64)
    rows = np.concatenate(all_rows) if all_rows else np.zeros(0, np.uint32)
    del all_codes, all_rows
    uniq, inv = np.unique(codes, return_inverse=True)
    del codes
    pair = (inv.astype(np.uint64) << np.uint64(32)) | rows.astype(np.uint64)
    del inv, rows
    pair = np.unique(pair)
    gram_of = (pair >> np.uint64(32)).astype(np.int64)
    post = (pair & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    del pair
    ptr = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(np.bincount(gram_of, minlength=len(uniq)), out=ptr[1:])
    np.save(path / "grams.npy", uniq)
    np.save(path / "gram_ptr.npy", ptr)
    np.save(path / "gram_post.npy", post)


class GramIndex:
    """Memory-mapped trigram index; see the module docstring."""

    def __init__(self, grams: np.ndarray, ptr: np.ndarray, post: np.ndarray, key_len: np.ndarray):
        self.grams = grams
        self.ptr = ptr
        self.post = post
        self.key_len = key_len

    @classmethod
    def load(cls, path: Path) -> "GramIndex":
        load = lambda name: np.load(path / name, mmap_mode="r")  # noqa: E731
        return cls(load("grams.npy"), load("gram_ptr.npy"), load("gram_post.npy"), load("key_len.npy"))

    def shortlist(self, key: str, max_edits: int) -> np.ndarray:
        """Alias rows that pass the trigram count filter's necessary condition."""
        q = query_grams(key)
        if len(q) == 0:
            return np.zeros(0, dtype=np.uint32)
        idx = np.searchsorted(self.grams, q)
        idx = np.minimum(idx, len(self.grams) - 1)
        found = self.grams[idx] == q
        starts = np.where(found, self.ptr[idx], 0)
        ends = np.where(found, self.ptr[idx + 1], 0)
        sizes = ends - starts
        need = len(q) - 3 * max_edits  # shared grams an alias within max_edits must have
        if need <= 0:
            # Too few grams to filter by; fall back to every gram list (still exact).
            take = np.argsort(sizes)
        else:
            take = np.argsort(sizes)[: len(q) - need + 1]
        lists = [self.post[starts[i] : ends[i]] for i in take if sizes[i] > 0]
        if not lists:
            return np.zeros(0, dtype=np.uint32)
        cand = np.unique(np.concatenate(lists))
        lo, hi = len(key) - max_edits, len(key) + max_edits
        lens = self.key_len[cand]
        return cand[(lens >= lo) & (lens <= hi)]

    def search(
        self, key: str, max_edits: int, keys: marisa_trie.Trie, limit: int = 10
    ) -> List[Tuple[int, int, float]]:
        if max_edits <= 0:
            row = keys.get(key)
            return [] if row is None else [(row, 0, 1.0)]
        out = []
        for row in self.shortlist(key, max_edits):
            other = keys.restore_key(int(row))
            d = Levenshtein.distance(key, other, score_cutoff=max_edits)
            if d <= max_edits:
                sim = 1.0 - d / max(len(key), len(other), 1)
                out.append((int(row), d, sim))
        out.sort(key=lambda t: (t[1], -t[2], t[0]))
        return out[:limit]
