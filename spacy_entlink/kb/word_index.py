"""The word trie of a KB's alias keys, for the compiled exact matcher (`matching/_scan.c`).

Files of a KB folder (written by build-kb, memory-mapped on load, no pickle):

    wi_blob.npy / wi_ptr.npy     the key vocabulary as UTF-8 and its offsets (word id = position)
    wi_words.npy                 open-addressing hash table, UTF-8 bytes -> word id
    wi_edge_keys.npy / wi_edge_vals.npy   open-addressing hash table, (node, word id) -> child node
    wi_rows.npy                  alias row of the key that ends at each node, -1 for a prefix

`meta.json` says `"word_index": WORD_INDEX_VERSION`. A KB without these files (built by an
earlier version, or where the extension could not be compiled) is matched by the pure-Python
`ExactMatcher`, which finds the same matches.
"""

import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..files import mmap_array

WORD_INDEX_VERSION = 1
FILES = ("wi_blob.npy", "wi_ptr.npy", "wi_words.npy", "wi_edge_keys.npy", "wi_edge_vals.npy", "wi_rows.npy")
DTYPES = (np.uint8, np.int64, np.int32, np.uint64, np.int32, np.int32)

logger = logging.getLogger("spacy_entlink.kb")

from ..matching.native import extension

_scan = extension()


def available() -> bool:
    """Whether the compiled scan is importable here."""
    return _scan is not None


def write_word_index(vocabulary: Iterable[str], keys: Sequence[str], path: Path) -> bool:
    """Write the word trie of `keys` (alias keys by row) over `vocabulary` (every word of
    them); False, with a warning, where the extension is not built."""
    if _scan is None:
        logger.warning("spacy_entlink.matching._scan is not built: the KB gets no compiled word index "
                       "(exact matching falls back to Python); reinstall with `pip install` and gcc")
        return False
    tables = _scan.build(sorted(vocabulary), list(keys))
    for name, dtype, data in zip(FILES, DTYPES, tables):
        np.save(path / name, np.frombuffer(data, dtype=dtype), allow_pickle=False)
    return True


def load_word_index(path: Path, meta: dict):
    """The KB's `_scan.WordIndex` over its memory-mapped tables, or None (no index, another
    version, or no extension)."""
    if _scan is None or meta.get("word_index") != WORD_INDEX_VERSION:
        return None
    arrays = [mmap_array(path / name) for name in FILES]
    for name, dtype, array in zip(FILES, DTYPES, arrays):
        if array.dtype != dtype or array.ndim != 1:
            raise ValueError(f"{name} holds {array.dtype} in {array.ndim} dimensions, expected 1-D {np.dtype(dtype)}")
    return _scan.WordIndex(*arrays)


def scan_text(index, normalizer, text: str, max_words: int):
    """`index.scan` with the normaliser's own cached functions for characters and words
    beyond ASCII: (words, word_starts, word_ends, breaks, word_ids, matches)."""
    cfg = normalizer.config
    return index.scan(text, normalizer._char, normalizer._word, max_words, cfg.acronym_max_len, cfg.fold_plurals)
