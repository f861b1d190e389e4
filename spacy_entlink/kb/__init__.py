"""The shared knowledge base and its builders."""

from .base import Candidate, EntityRecord, KnowledgeBase
from .sources import FORMATS, read_alias_file, read_source

__all__ = ["Candidate", "EntityRecord", "KnowledgeBase", "FORMATS", "read_alias_file", "read_source"]
