"""Character-trigram index over normalised alias keys, for exact-recall fuzzy search.

Every key is padded with one space on each side and cut into trigrams, coded as 63-bit
integers (three 21-bit code points). Postings are CSR arrays. A Levenshtein edit destroys
at most three trigrams, so an alias within `d` edits of a query shares at least
`n - 3d` of the query's `n` distinct trigrams (the count filter); it then must occur in
one of the query's `3d + 1` rarest trigram lists (prefix filtering), which is where the
shortlist comes from. rapidfuzz checks the shortlist with `score_cutoff`.

Postings hold gram ids (keys numbered by length, then row; `gram_rows.npy` maps them back,
`gram_len.npy` gives their lengths), so the keys of lengths `len(query) ± d` are one slice of
every list; the compiled search cuts every list to it before any candidate is looked at. The
length directory (`gram_dir_ptr.npy`, `gram_dir_len.npy`, `gram_dir_off.npy`) gives, for every
list, each key length in it and where it starts, so the cut reads a few directory entries, not
the (long, scattered) list; without it the cut is searched in the list. A KB built before gram
ids (no `gram_rows.npy`) has rows in its postings and is searched the earlier way.

The compiled count filter stops at once when fewer than `n - 3d` of the query's trigrams
occur in keys of the right lengths at all, and counts in a one-byte array over the keys.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import marisa_trie
import numpy as np
from rapidfuzz.distance import Levenshtein

_SHIFT = np.uint64(21)
DIRECTORY = ("gram_dir_ptr.npy", "gram_dir_len.npy", "gram_dir_off.npy")
DIRECTORY_DTYPES = (np.int64, np.uint16, np.uint32)

from ..matching.native import extension

_scan = extension()


def _codes(padded: str) -> np.ndarray:
    cp = np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    if len(cp) < 3:
        return np.zeros(0, dtype=np.uint64)
    return (cp[:-2] << (_SHIFT * np.uint64(2))) | (cp[1:-1] << _SHIFT) | cp[2:]


def query_grams(key: str) -> np.ndarray:
    """Distinct trigram codes of a normalised key."""
    return np.unique(_codes(f" {key} "))


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy >= 2.3 uses a hash table there, far slower on big arrays)."""
    a = np.sort(a)
    keep = np.ones(len(a), dtype=bool)
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _bits(n: int) -> int:
    return max(1, int(n - 1).bit_length())


def write_key_texts(keys: Sequence[str], path: Path, chunk: int = 1_000_000) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """key_len.npy (lengths in characters, saturating at 65535), key_text.npy (the keys as one
    UTF-8 blob, in row order) and key_text_ptr.npy (offsets), which the compiled fuzzy
    search verifies its shortlist against; returns (key_len, key_text, key_text_ptr)."""
    n = len(keys)
    capped = np.minimum(np.fromiter(map(len, keys), dtype=np.int64, count=n), 65535).astype(np.uint16)
    np.save(path / "key_len.npy", capped)
    ptr = np.zeros(n + 1, dtype=np.int64)
    blobs = []
    for start in range(0, n, chunk):
        encoded = [k.encode("utf8", "surrogatepass") for k in keys[start : start + chunk]]
        ptr[start + 1 : start + 1 + len(encoded)] = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        blobs.append(b"".join(encoded))
    np.cumsum(ptr, out=ptr)
    blob = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    np.save(path / "key_text.npy", blob)
    np.save(path / "key_text_ptr.npy", ptr)
    return capped, blob, ptr


def compiled_postings() -> bool:
    """Whether `write_postings` can build from the key texts alone (the extension is built)."""
    return _scan is not None


def build_gram_index(keys: Sequence[str], path: Path, chunk: int = 1_000_000, *, compiled: bool = True) -> None:
    """Write the trigram index of `keys` (in row order): `write_key_texts`, then `write_postings`."""
    key_len, text, text_ptr = write_key_texts(keys, path)
    write_postings(path, key_len, text, text_ptr, keys, chunk=chunk, compiled=compiled)


def write_postings(path: Path, key_len: np.ndarray, text: np.ndarray, text_ptr: np.ndarray,
                   keys: Optional[Sequence[str]] = None, *, chunk: int = 1_000_000, compiled: bool = True) -> None:
    """Write gram_rows.npy, gram_len.npy, grams.npy, gram_ptr.npy and gram_post.npy from what
    `write_key_texts` returned (`keys` too for the numpy builder; not needed where
    `compiled_postings()`).

    Compiled (`_scan.gram_postings`, where built and `compiled`): two passes over the keys in
    gram-id order, one counting each trigram's keys, one filling the lists, so every list is
    born sorted and memory holds the postings themselves and little else. Otherwise
    vectorised: every (trigram, key row) pair is packed into one uint64 and all pairs are
    sorted with one in-place `np.sort`, which is much faster than `argsort`, `lexsort` or
    the hash-based `np.unique` of numpy >= 2.3 (the latter took minutes on 10^8 codes).
    Trigrams are packed through dense character ids so that (trigram, row) fits in 64 bits;
    with too many distinct characters for that, trigram ids come from `searchsorted`.
    """
    n = len(key_len)
    # Postings hold gram ids ("gids"): the keys numbered by (length, row), so that the keys
    # of a length range are one range of gids and each posting list, sorted by gid, holds
    # them as one slice (found by bisection) before any candidate is looked at.
    row_of_gid = np.argsort(key_len, kind="stable").astype(np.uint32)
    gid_len = key_len[row_of_gid]
    np.save(path / "gram_rows.npy", row_of_gid)
    np.save(path / "gram_len.npy", gid_len)
    if compiled and _scan is not None:
        grams, ptr, post = _scan.gram_postings(text, text_ptr, row_of_gid)
        directory = _scan.gram_directory(ptr, post, gid_len)
        for name, data, dtype in (("grams", grams, np.uint64), ("gram_ptr", ptr, np.int64), ("gram_post", post, np.uint32),
                                  *zip(DIRECTORY, directory, DIRECTORY_DTYPES)):
            np.save(path / name, np.frombuffer(data, dtype=dtype), allow_pickle=False)
        return
    if keys is None:
        raise ValueError("write_postings: the numpy builder needs the keys")
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    gid_of_row = np.empty(n, dtype=np.uint64)
    gid_of_row[row_of_gid] = np.arange(n, dtype=np.uint64)
    del row_of_gid, text, text_ptr
    row_bits = _bits(n)
    # Code points of each chunk of keys, every key padded by one space on each side.
    parts: List[Tuple[int, np.ndarray]] = []
    for start in range(0, n, chunk):
        part = keys[start : start + chunk]
        padded = " " + "  ".join(part) + " "
        parts.append((start, np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)))
    alphabet = _sorted_unique(np.concatenate([_sorted_unique(cp) for _, cp in parts] or [np.zeros(0, np.uint32)]))
    char_bits = _bits(len(alphabet))
    dense = 3 * char_bits + row_bits <= 64
    lut = None
    if dense:
        lut = np.zeros(0x110000, dtype=np.uint32)
        lut[alphabet] = np.arange(len(alphabet), dtype=np.uint32)
        gram_shift = np.uint64(char_bits)
    else:
        gram_shift = _SHIFT

    def chunk_grams(start: int, cp: np.ndarray):
        """(trigram codes, owner rows) of one chunk; codes dense or 63-bit."""
        plen = lengths[start : start + chunk] + 2
        ends = np.cumsum(plen)
        chars = (lut[cp] if dense else cp).astype(np.uint64)
        codes = (chars[:-2] << (gram_shift * np.uint64(2))) | (chars[1:-1] << gram_shift) | chars[2:]
        del chars
        valid = np.ones(len(cp), dtype=bool)
        valid[ends - 2] = False  # trigrams that would start on a key's last two padded chars
        valid[ends - 1] = False
        owner = np.repeat(gid_of_row[start : start + len(plen)], plen)
        return codes[valid[:-2]], owner[:-2][valid[:-2]]

    pairs: List[np.ndarray] = []
    uniq_codes = None
    if not dense:
        uniq_codes = _sorted_unique(np.concatenate([chunk_grams(s, cp)[0] for s, cp in parts]))
        if _bits(len(uniq_codes)) + row_bits > 64:
            raise ValueError(f"too many alias keys ({n}) and trigrams ({len(uniq_codes)}) for the trigram index")
    for s, cp in parts:
        codes, owner = chunk_grams(s, cp)
        if not dense:
            codes = np.searchsorted(uniq_codes, codes).astype(np.uint64)
        pairs.append((codes << np.uint64(row_bits)) | owner)
        del codes, owner
    del parts, lut, gid_of_row
    pair = np.concatenate(pairs) if pairs else np.zeros(0, np.uint64)
    del pairs
    pair.sort()
    keep = np.ones(len(pair), dtype=bool)
    np.not_equal(pair[1:], pair[:-1], out=keep[1:])  # a trigram repeated within one key
    pair = pair[keep]
    del keep
    post = (pair & np.uint64((1 << row_bits) - 1)).astype(np.uint32)
    gram_of = pair >> np.uint64(row_bits)
    del pair
    first = np.ones(len(gram_of), dtype=bool)
    np.not_equal(gram_of[1:], gram_of[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    ptr = np.empty(len(starts) + 1, dtype=np.int64)
    ptr[:-1] = starts
    ptr[-1] = len(gram_of)
    g = gram_of[starts]
    del gram_of, first, starts
    if dense:
        mask = np.uint64((1 << char_bits) - 1)
        c1 = alphabet[(g >> (gram_shift * np.uint64(2))) & mask].astype(np.uint64)
        c2 = alphabet[(g >> gram_shift) & mask].astype(np.uint64)
        c3 = alphabet[g & mask].astype(np.uint64)
        grams = (c1 << (_SHIFT * np.uint64(2))) | (c2 << _SHIFT) | c3
    else:
        grams = uniq_codes[g.astype(np.int64)]
    np.save(path / "grams.npy", grams.astype(np.uint64))
    np.save(path / "gram_ptr.npy", ptr)
    np.save(path / "gram_post.npy", post)
    for name, array in zip(DIRECTORY, length_directory(ptr, post, gid_len)):
        np.save(path / name, array)


def length_directory(ptr: np.ndarray, post: np.ndarray, gid_len: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dir_ptr, dir_len, dir_off): for each trigram list, every key length in it (ascending,
    as the gids are) and the place in the list where that length starts."""
    n_grams = len(ptr) - 1
    lens = gid_len[post.astype(np.int64)]
    gram = np.repeat(np.arange(n_grams, dtype=np.int64), np.diff(ptr))
    first = np.ones(len(post), dtype=bool)
    first[1:] = (lens[1:] != lens[:-1]) | (gram[1:] != gram[:-1])
    at = np.flatnonzero(first)
    dir_ptr = np.searchsorted(at, ptr).astype(np.int64)
    return dir_ptr, lens[at].astype(np.uint16), (at - ptr[gram[at]]).astype(np.uint32)


class GramIndex:
    """Memory-mapped trigram index; see the module docstring."""

    def __init__(self, grams: np.ndarray, ptr: np.ndarray, post: np.ndarray, key_len: np.ndarray,
                 key_text: Optional[np.ndarray] = None, key_text_ptr: Optional[np.ndarray] = None,
                 gram_rows: Optional[np.ndarray] = None, gram_len: Optional[np.ndarray] = None,
                 directory: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None):
        # Plain ndarray views of the memory maps: slicing a np.memmap costs microseconds.
        view = lambda a: None if a is None else np.asarray(a)  # noqa: E731
        self.grams = view(grams)
        self.ptr = view(ptr)
        self.post = view(post)
        self.key_len = view(key_len)
        self.key_text = view(key_text)
        self.key_text_ptr = view(key_text_ptr)
        self.gram_rows = view(gram_rows)  # gid -> row; None: the postings hold rows
        self.gram_len = view(gram_len)  # key length of each gid, ascending
        # (dir_ptr, dir_len, dir_off), where each list's lengths start; None: searched instead
        self.directory = None if directory is None or gram_rows is None else tuple(view(a) for a in directory)
        if self.directory is not None:
            dir_ptr, dir_len, dir_off = self.directory
            if [a.dtype for a in self.directory] != [np.dtype(t) for t in DIRECTORY_DTYPES] or \
                    len(dir_ptr) != len(self.grams) + 1 or len(dir_len) != len(dir_off):
                raise ValueError(f"the length directory ({', '.join(DIRECTORY)}) does not match the trigram index")

    @classmethod
    def load(cls, path: Path) -> "GramIndex":
        load = lambda name: np.load(path / name, mmap_mode="r")  # noqa: E731
        optional = lambda name: load(name) if (path / name).exists() else None  # noqa: E731 - later additions
        return cls(load("grams.npy"), load("gram_ptr.npy"), load("gram_post.npy"), load("key_len.npy"),
                   optional("key_text.npy"), optional("key_text_ptr.npy"), optional("gram_rows.npy"),
                   optional("gram_len.npy"),
                   tuple(load(name) for name in DIRECTORY) if all((path / n).exists() for n in DIRECTORY) else None)

    def shortlist(self, key: str, max_edits: int, *, compiled: bool = True) -> np.ndarray:
        """Alias rows that may lie within `max_edits` edits of `key` (a superset of them), in
        ascending order; `compiled`: in `matching/_scan.c` where it is built (the superset may
        differ; the rows within the bound, and so `search`, do not)."""
        lo, hi = len(key) - max_edits, len(key) + max_edits
        if hi >= 65535:
            hi = 1 << 62  # key_len saturates at 65535
        q = query_grams(key)
        need = len(q) - 3 * max_edits  # distinct query grams an alias within max_edits keeps
        if compiled and _scan is not None and need > 0:
            found = _scan.shortlist(self.grams, self.ptr, self.post, self.key_len, q, max_edits, lo, hi,
                                    self.gram_rows, self.gram_len, self.directory)
            return np.frombuffer(found, dtype=np.uint32)
        if need <= 0:
            # An alias may share no trigram at all with the query ("chronic" and "cirosis"
            # are 3 edits apart): the only exact filter left is the length.
            lens = self.key_len
            return np.flatnonzero((lens >= max(lo, 0)) & (lens <= hi)).astype(np.uint32)
        idx = np.searchsorted(self.grams, q)
        idx = np.minimum(idx, len(self.grams) - 1)
        found = self.grams[idx] == q
        starts = np.where(found, self.ptr[idx], 0)
        ends = np.where(found, self.ptr[idx + 1], 0)
        # (The compiled search first cuts every list to the gids of the right lengths; here that
        # would cost two bisections per list in Python, more than it saves: the length filter
        # comes after the union instead. The rows within the edit bound are the same.)
        by_gid = self.gram_rows is not None
        sizes = ends - starts
        # At most 3*max_edits query grams are missing from such an alias, so it is in one of
        # any 3*max_edits + 1 of the lists: take the shortest (absent grams count as empty).
        take = np.argsort(sizes, kind="stable")[: 3 * max_edits + 1]
        post = self.post
        lists = [post[starts[i] : ends[i]] for i in take if sizes[i] > 0]
        if not lists:
            return np.zeros(0, dtype=np.uint32)
        cand = np.concatenate(lists)
        cand.sort()
        cand = cand[np.concatenate(([True], cand[1:] != cand[:-1]))]
        lens = self.gram_len[cand] if by_gid else self.key_len[cand]
        cand = cand[(lens >= lo) & (lens <= hi)]
        rows = (lambda gids: np.sort(self.gram_rows[gids])) if by_gid else (lambda c: c)  # noqa: E731
        if len(cand) <= 64 or need <= 1:
            return rows(cand)  # verifying a few candidates costs less than counting
        # Count filter: keep candidates that share at least `need` of the query's grams
        # (posting lists are sorted by row, so membership is a binary search).
        # Lists go shortest first; after each, candidates that cannot reach `need` even if
        # they are in every list left are dropped, so the long lists see few candidates.
        counts = np.zeros(len(cand), dtype=np.int32)
        order = [i for i in np.argsort(sizes, kind="stable") if sizes[i] > 0]
        left = len(q)
        for i in order:
            lst = post[starts[i] : ends[i]]
            pos = np.minimum(np.searchsorted(lst, cand), len(lst) - 1)
            counts += lst[pos] == cand
            left -= 1
            alive = counts + left >= need
            if not alive.all():
                cand, counts = cand[alive], counts[alive]
                if len(cand) == 0:
                    break
        return rows(cand[counts >= need])

    def search(
        self, key: str, max_edits: int, keys: marisa_trie.Trie, limit: int = 10, *, compiled: bool = True
    ) -> List[Tuple[int, int, float]]:
        """(row, edits, similarity) of the keys within `max_edits` of `key`, best first;
        `compiled`: shortlist and verification in `matching/_scan.c` where it is built and the
        KB has its key texts (the same result)."""
        if max_edits <= 0:
            row = keys.get(key)
            return [] if row is None else [(row, 0, 1.0)]
        if compiled and _scan is not None and self.key_text is not None:
            found = _scan.fuzzy_search(self.grams, self.ptr, self.post, self.key_len, self.key_text,
                                       self.key_text_ptr, key, max_edits, limit, self.gram_rows, self.gram_len,
                                       self.directory)
            if found is not None:
                return found
        out = []
        for row in self.shortlist(key, max_edits, compiled=compiled):
            other = keys.restore_key(int(row))
            d = Levenshtein.distance(key, other, score_cutoff=max_edits)
            if d <= max_edits:
                sim = 1.0 - d / max(len(key), len(other), 1)
                out.append((int(row), d, sim))
        out.sort(key=lambda t: (t[1], -t[2], t[0]))
        return out[:limit]
