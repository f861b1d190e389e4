"""Registered KB loaders for `[initialize.components.*]` blocks of spaCy configs."""

from pathlib import Path
from typing import Callable, Union

from ..errors import ConfigError
from .base import KnowledgeBase

KBSource = Union[KnowledgeBase, str, Path, Callable[[], KnowledgeBase]]


def kb_from_disk(path: Union[str, Path]) -> Callable[[], KnowledgeBase]:
    """`spacy_entlink.KBFromDisk.v1`: load a KB folder written by `build-kb`."""

    def load() -> KnowledgeBase:
        return KnowledgeBase.from_disk(path)

    return load


def resolve_kb(kb: KBSource, owner: str) -> KnowledgeBase:
    """A KnowledgeBase from a KB, a KB folder, or a callable returning one (e.g. the loader
    of `spacy_entlink.KBFromDisk.v1`); `owner` names the component in the error."""
    if callable(kb) and not isinstance(kb, KnowledgeBase):
        kb = kb()
    if isinstance(kb, (str, Path)):
        kb = KnowledgeBase.from_disk(kb)
    if not isinstance(kb, KnowledgeBase):
        raise ConfigError(f"{owner}: kb must be a KnowledgeBase or a KB folder, got {type(kb).__name__}")
    return kb
