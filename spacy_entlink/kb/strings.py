"""A list of strings stored as one UTF-8 blob plus offsets, memory-mapped on load."""

from pathlib import Path
from typing import Iterable

import numpy as np


def write_strings(path: Path, name: str, strings: Iterable[str]) -> int:
    """Write `strings` as `<name>.npy` (bytes) and `<name>_ptr.npy` (int64 offsets)."""
    strings = strings if isinstance(strings, list) else list(strings)
    joined = "".join(strings)
    if joined.isascii():  # one encode; byte lengths are the character lengths
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        blob = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        encoded = [s.encode("utf8") for s in strings]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    ptr = np.zeros(len(strings) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    np.save(path / f"{name}.npy", blob)
    np.save(path / f"{name}_ptr.npy", ptr)
    return len(strings)


class StringStore:
    """Read-only, memory-mapped list of strings written by `write_strings`."""

    def __init__(self, blob: np.ndarray, ptr: np.ndarray):
        self._blob = blob
        self._ptr = ptr

    @classmethod
    def load(cls, path: Path, name: str) -> "StringStore":
        return cls(np.load(path / f"{name}.npy", mmap_mode="r"), np.load(path / f"{name}_ptr.npy", mmap_mode="r"))

    def __len__(self) -> int:
        return len(self._ptr) - 1

    def __getitem__(self, i: int) -> str:
        a, b = int(self._ptr[i]), int(self._ptr[i + 1])
        return self._blob[a:b].tobytes().decode("utf8")
