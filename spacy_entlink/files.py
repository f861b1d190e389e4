"""Reading input files line by line with errors that name the file and the line; memory-mapped
arrays and folder copies for the on-disk formats (KB, name trie, dense index)."""

import gzip
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple, Union

import numpy as np

from .errors import DataError, EntlinkError, text_problem

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
    """(line number, object) for each non-blank line of a JSONL file; DataError naming the
    line for invalid JSON, nesting too deep to parse, or a string with a lone surrogate."""
    for n, line in numbered_lines(path):
        if not line.strip():
            continue
        yield n, parse_json(line, path, n, what="line")


def parse_json(text: str, path: PathLike, line: Optional[int] = None, what: str = "file") -> Any:
    """`text` parsed as JSON, every string checked for lone surrogates; DataError naming
    `path` and `line` (or the line of the error inside a whole file) otherwise."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        where = line if line is not None else err.lineno
        raise DataError(path, where, f"invalid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise DataError(path, line, "JSON nested too deeply to read") from None
    if what == "line" and not isinstance(obj, dict):
        raise DataError(path, line, "expected a JSON object per line")
    bad = json_text_problem(obj)
    if bad:
        raise DataError(path, line, bad)
    return obj


def read_json_file(path: PathLike) -> Any:
    """A whole UTF-8 JSON file, parsed; DataError naming the file and the line of a byte
    that is not UTF-8, of invalid JSON, or for a string with a lone surrogate."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found" if not path.exists() else "not a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(path, line, f"not valid UTF-8 (byte {raw[err.start]:#04x})") from None
    return parse_json(text.lstrip("\ufeff"), path)


def json_text_problem(obj: Any) -> Optional[str]:
    """The first string (key or value) of a parsed JSON value with a lone surrogate, described
    with where it is (`'name'`, `'spans'[2]['label']`), or None."""
    stack: List[Tuple[str, Any]] = [("", obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            bad = text_problem(value)
            if bad:
                return f"{where or 'the value'} contains {bad}"
        elif isinstance(value, dict):
            for k, v in value.items():
                bad = text_problem(k)
                if bad:
                    return f"a key {k!r} contains {bad}"
                stack.append((f"{where}[{k!r}]" if where else repr(k), v))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
    return None


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


def prepare_output(path: PathLike, what: str = "output") -> Path:
    """`path` with its parent folder created; an EntlinkError naming `what` and the path when
    that folder cannot be made or written (read-only, /proc, below a file, ...)."""
    path = Path(path)
    existing = next((a for a in path.parents if a.exists()), None)
    if existing is not None and not existing.is_dir():
        raise EntlinkError(f"{what} {path}: cannot write there ({existing} is a file, not a folder)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        probe.close()
    except OSError as err:
        raise EntlinkError(f"{what} {path}: cannot write there ({err.strerror or err})") from None
    return path


@contextmanager
def atomic_file(path: PathLike, what: str = "output") -> Iterator[Path]:
    """A temporary file next to `path`, renamed to `path` when the block ends without an
    error and removed when it fails: a reader never sees a half-written file, and what was
    at `path` stays until the new file is complete."""
    path = prepare_output(path, what)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: PathLike, what: str = "output") -> Iterator[Path]:
    """A new temporary folder next to `path` that replaces `path` when the block ends without
    an error; on failure it is removed and what was at `path` is left as it was (also when
    the final swap fails: the previous folder is put back)."""
    path = prepare_output(path, what)
    if path.exists() and not path.is_dir():
        raise EntlinkError(f"{what} {path}: must be a folder, and a file of that name exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.writing-", dir=path.parent))
    try:
        yield tmp
        swap_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_folder(new: PathLike, path: PathLike) -> None:
    """Replace the folder `path` (if any) by the folder `new`; on failure the old one is put back."""
    new, path = Path(new), Path(path)
    if not path.exists():
        new.rename(path)
        return
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    path.rename(old)
    try:
        new.rename(path)
    except BaseException:
        old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
