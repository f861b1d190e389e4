"""A list of strings stored as one UTF-8 blob plus offsets, memory-mapped on load."""

from pathlib import Path
from typing import Iterable

import numpy as np


def write_strings(path: Path, name: str, strings: Iterable[str]) -> int:
    """Write `strings` as `<name>.npy` (bytes) and `<name>_ptr.npy` (int64 offsets)."""
    encoded = [s.encode("utf8") for s in strings]
    ptr = np.zeros(len(encoded) + 1, dtype=np.int64)
    if encoded:
        np.cumsum([len(b) for b in encoded], out=ptr[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    np.save(path / f"{name}.npy", blob)
    np.save(path / f"{name}_ptr.npy", ptr)
    return len(encoded)


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
