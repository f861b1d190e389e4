"""Registered KB loaders for `[initialize.components.*]` blocks of spaCy configs."""

from pathlib import Path
from typing import Callable, Union

from .base import KnowledgeBase


def kb_from_disk(path: Union[str, Path]) -> Callable[[], KnowledgeBase]:
    """`spacy_entlink.KBFromDisk.v1`: load a KB folder written by `build-kb`."""

    def load() -> KnowledgeBase:
        return KnowledgeBase.from_disk(path)

    return load
