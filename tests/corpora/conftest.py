"""Fixtures for the corpus-reader tests: a blank English pipeline and a file writer."""

from pathlib import Path
from typing import Callable

import pytest
import spacy
from spacy.language import Language


@pytest.fixture(scope="session")
def nlp() -> Language:
    return spacy.blank("en")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(name, content) -> path of a new file in tmp_path."""

    def _write(name: str, content: str) -> Path:
        path = tmp_path / name
        path.write_text(content, encoding="utf8")
        return path

    return _write
