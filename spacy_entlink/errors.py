"""Error catalogue: every message says what went wrong and where, and what to do."""

from pathlib import Path
from typing import Optional, Union


class EntlinkError(ValueError):
    """Base class of the errors raised by spacy_entlink for bad input or configuration."""


class DataError(EntlinkError):
    """A malformed record in an input file: the message names the file and the line."""

    def __init__(self, path: Union[str, Path, None], line: Optional[int], message: str):
        self.path = str(path) if path is not None else "<input>"
        self.line = line
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


class KBFormatError(EntlinkError):
    """A knowledge-base folder that is missing files or was written by another version."""


class ConfigError(EntlinkError):
    """A component argument with a value outside what it accepts."""


def check_choice(name: str, value: str, allowed) -> str:
    """Return `value` if it is one of `allowed`, else raise a ConfigError naming the argument."""
    if value not in allowed:
        raise ConfigError(
            f"Invalid value {value!r} for argument '{name}': choose one of "
            + ", ".join(repr(a) for a in sorted(allowed))
        )
    return value
