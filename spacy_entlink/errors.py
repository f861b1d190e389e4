"""Error catalogue: every message says what went wrong and where, and what to do."""

import re
from pathlib import Path
from typing import Optional, Union


class EntlinkError(ValueError):
    """Base class of the errors raised by spacy_entlink for bad input or configuration."""


class DataError(EntlinkError):
    """A malformed record in an input file: the message names the file and the line."""

    def __init__(self, path: Union[str, Path, None], line: Optional[int], message: str):
        self.path = str(path) if path is not None else "<input>"
        self.line = line
        self.message = message
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



_SURROGATES = "\ud800-\udfff"
_LINE_BREAKS = "\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029"
_CONTROLS = "\x00-\x08\x0a-\x1f\x7f-\x9f"  # C0 and C1 without tab
_BAD = {(c, b): re.compile("[" + _SURROGATES + ("" if c else _CONTROLS) + ("" if b else _LINE_BREAKS) + "]")
        for c in (True, False) for b in (True, False)}


def problem_pattern(*, controls: bool = True, line_breaks: bool = True) -> "re.Pattern[str]":
    """The regular expression that `text_problem` searches with the same arguments (None from
    it exactly when this finds nothing), for screening many strings joined by tabs at once."""
    return _BAD[controls, line_breaks]


def text_problem(value: str, *, controls: bool = True, line_breaks: bool = True) -> Optional[str]:
    """What makes `value` unfit to store, or None: a lone surrogate (not Unicode, cannot be
    written as UTF-8) always; with `controls=False` a control character (U+0000-U+001F,
    U+007F-U+009F) other than tab; with `line_breaks=False` a line break."""
    m = _BAD[controls, line_breaks].search(value)
    if m is None:
        return None
    o, i = ord(m.group()), m.start() + 1
    if 0xD800 <= o <= 0xDFFF:
        return f"a lone surrogate U+{o:04X} at character {i} (the text is not valid Unicode)"
    if m.group() in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
        return f"a line break (U+{o:04X}) at character {i}"
    return f"the control character U+{o:04X} at character {i}"
