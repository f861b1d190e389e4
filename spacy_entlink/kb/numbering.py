"""Numbering and finding strings in bulk, for KB builds (compiled in `matching/_scan.c` where
built: at 10^6 names a dict operation per string costs seconds; the results are the same)."""

from typing import Dict, List, Tuple

import numpy as np

from ..matching.native import extension

_scan = extension()


def number_strings(strings: List[str]) -> Tuple[np.ndarray, List[str]]:
    """Each string's number in first-seen order (int64), and the distinct strings in that order."""
    if _scan is not None:
        numbers, distinct = _scan.number_strings(strings)
        return np.frombuffer(numbers, dtype=np.int64).copy(), distinct
    local: Dict[str, int] = {}
    numbers = np.fromiter((local.setdefault(s, len(local)) for s in strings), dtype=np.int64, count=len(strings))
    return numbers, list(local)


def distinct(strings: List[str]) -> List[str]:
    """The distinct strings in first-seen order (`list(dict.fromkeys(strings))`)."""
    return number_strings(strings)[1] if _scan is not None else list(dict.fromkeys(strings))


def positions(needles: List[str], haystack: List[str]) -> np.ndarray:
    """The index in `haystack` (distinct strings) of every needle (each one of them; -1 where
    one is not, compiled only)."""
    if _scan is not None:
        return np.frombuffer(_scan.positions(needles, haystack), dtype=np.int64)
    index_of = {k: i for i, k in enumerate(haystack)}
    return np.fromiter(map(index_of.__getitem__, needles), dtype=np.int64, count=len(needles))
