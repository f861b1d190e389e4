"""The compiled extension `matching/_scan.c`, where it is built: `extension()` gives the module,
or None where it is missing or `SPACY_ENTLINK_PURE_PYTHON=1` asks for the Python reference
paths (which give the same results; benchmarks and tests compare the two)."""

import os


def extension():
    if os.environ.get("SPACY_ENTLINK_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from . import _scan
    except ImportError:  # pragma: no cover - built by `pip install`; see setup.py
        return None
    return _scan
