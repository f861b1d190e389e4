"""Reading input files line by line with errors that name the file and the line; memory-mapped
arrays and folder copies for the on-disk formats (KB, name trie, dense index)."""

import gzip
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Tuple, Union

import numpy as np

from .errors import DataError, EntlinkError

PathLike = Union[str, Path]


class TextLines:
    """The lines of a UTF-8 (optionally gzipped) file, each with its line ending.

    Lines are decoded one at a time, so that a byte that is not UTF-8 is reported as a
    DataError naming its line (a text stream decodes in blocks and would raise a bare
    UnicodeDecodeError); a UTF-8 byte order mark (Excel's CSV export) is dropped.
    """

    def __init__(self, path: Path):
        self.path = path
        self._f = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
        self._n = 0

    def __enter__(self) -> "TextLines":
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def close(self) -> None:
        self._f.close()

    def __iter__(self) -> Iterator[str]:
        try:
            for raw in self._f:
                self._n += 1
                try:
                    line = raw.decode("utf8")
                except UnicodeDecodeError as err:
                    raise DataError(
                        self.path, self._n, f"not valid UTF-8 (byte {raw[err.start]:#04x} at byte {err.start + 1} of the line)"
                    ) from None
                if self._n == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield line
        except (OSError, EOFError) as err:  # e.g. a truncated or damaged .gz file
            raise DataError(self.path, self._n + 1, f"cannot read the file ({err})") from None


def _open_text(path: Path) -> TextLines:
    if not path.exists():
        raise DataError(path, None, "file not found")
    return TextLines(path)


def open_text(path: PathLike) -> TextLines:
    """The lines of an existing UTF-8 text file (gzipped when its name ends in .gz)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found" if not path.exists() else "not a file")
    return TextLines(path)


def numbered_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without its line ending) for each line of a text file."""
    with open_text(path) as f:
        for i, line in enumerate(f, start=1):
            yield i, line.rstrip("\r\n")


def iter_jsonl(path: PathLike) -> Iterator[Tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file."""
    for n, line in numbered_lines(path):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, n, f"invalid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(path, n, "expected a JSON object per line")
            yield n, obj


def mmap_array(path: PathLike) -> np.ndarray:
    """A memory-mapped .npy file as a plain ndarray view (indexing an np.memmap goes through
    Python-level __getitem__ on every access)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def copy_files(source: PathLike, target: PathLike) -> None:
    """Copy the files of folder `source` into `target` (a no-op when they are the same folder)."""
    source, target = Path(source), Path(target)
    if target.exists() and target.resolve() == source.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file():
            shutil.copyfile(f, target / f.name)


def unpack_files(files: Any, where: str) -> Path:
    """Write a `{relative path: bytes}` map (a component's `to_bytes`) into a new temporary
    folder, refusing anything that is not such a map or a path that would land outside it."""
    if not isinstance(files, dict):
        raise EntlinkError(f"{where}: the bytes are not a packed folder (expected a map of files)")
    folder = Path(tempfile.mkdtemp(prefix="entlink_files_")).resolve()
    for rel, content in files.items():
        target = (folder / rel).resolve() if isinstance(rel, str) and rel else folder
        if not isinstance(content, bytes) or folder not in target.parents:
            shutil.rmtree(folder, ignore_errors=True)
            raise EntlinkError(f"{where}: refusing to write {rel!r} outside the component folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return folder
