"""KnowledgeBase: entity ids, names, aliases, descriptions, types and priors on disk.

Layout of a KB folder (no pickle anywhere; every file is memory-mapped on load):

    meta.json            format version, counts, types, normaliser options
    ids.marisa           entity ids; an entity's row is its id's key id in this trie
    alt_ids.marisa       alternative ids (e.g. OMIM/DO ids of a MeSH disease) + alt_rows.npy
    parents.npy/parents_ptr.npy      broader entities (rows) per entity: the KB's hierarchy
                         (MeSH tree, OBO is_a); absent in KBs built before it, read as none
    keys.marisa          normalised alias keys (names and synonyms); key id = alias row
    key_ptr.npy          CSR pointers: alias row -> slice of key_ent.npy
    key_ent.npy          entity rows per alias, canonical-name matches first, then by prior
    key_canon.npy        1 where the alias is the entity's canonical name
    words.marisa         every normalised word of every key (vocabulary for fuzzy anchors)
    word_deletes.marisa  one-character deletions of those words (see neighbours.py)
    names.npy/names_ptr.npy          canonical names, UTF-8 blob + offsets
    aliases.npy/aliases_ptr.npy/ent_alias_ptr.npy   raw aliases per entity
    desc.npy/desc_ptr.npy            descriptions
    types.npy, priors.npy            uint16 type code, float32 prior per entity
    grams.npy/gram_ptr.npy/gram_post.npy   character-trigram index of the keys (fuzzy)
    key_len.npy, key_text.npy/key_text_ptr.npy   key lengths and texts (UTF-8), for verifying it
    gram_rows.npy/gram_len.npy, gram_dir_*.npy   gram ids and each list's length directory (grams.py)
    wi_*.npy             word trie of the keys for the compiled exact matcher (see word_index.py)
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import marisa_trie
import numpy as np

from ..errors import KBFormatError
from ..files import copy_files, mmap_array
from ..text import Normalizer, NormalizerConfig, get_normalizer
from .grams import GramIndex
from .neighbours import within_one_edit
from .strings import StringStore
from .word_index import load_word_index

FORMAT_VERSION = 1
PathLike = Union[str, Path]



def _lookup(trie: marisa_trie.Trie, key: str) -> Optional[int]:
    """`trie.get(key)`; None for a key with NUL, which marisa's `get` would cut there (and
    answer for the shorter key) although `key in trie` is False."""
    if "\x00" in key:
        return None
    return trie.get(key)


def resolve_row(ids: marisa_trie.Trie, alt: marisa_trie.Trie, alt_rows: np.ndarray, entity_id: str) -> Optional[int]:
    """Row of an entity id (its key id in `ids`) or of an alternative id (through `alt` and
    `alt_rows`), None if unknown."""
    row = _lookup(ids, entity_id)
    if row is None:
        a = _lookup(alt, entity_id)
        if a is not None:
            row = int(alt_rows[a])
    return row


@dataclass
class EntityRecord:
    """One entity as read from a source file (`line` is where it was read, for errors)."""

    id: str
    name: str
    aliases: List[str] = field(default_factory=list)
    description: str = ""
    type: str = ""
    prior: float = 0.0
    alt_ids: List[str] = field(default_factory=list)
    source: Optional[str] = None
    line: Optional[int] = None
    parents: List[str] = field(default_factory=list)  # ids of broader entities (is-a)


@dataclass(frozen=True)
class Candidate:
    """An entity that an alias key can refer to."""

    id: str
    name: str
    type: str
    prior: float
    row: int
    is_name: bool


def _prefix_exists(trie: marisa_trie.Trie, prefix: str) -> bool:
    for _ in trie.iterkeys(prefix):
        return True
    return False


class KnowledgeBase:
    """Entities with names, aliases, descriptions, types and priors, memory-mapped from disk.

    Build one with `KnowledgeBase.build(records, path)` or the `build-kb` CLI; open one with
    `KnowledgeBase.from_disk(path)`. All lookups take normalised keys produced by
    `kb.normalizer`, the same normaliser the KB was built with.
    """

    def __init__(self, path: PathLike):
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.exists():
            raise KBFormatError(
                f"{path} is not a spacy-entlink knowledge base (no meta.json). "
                "Build one with `python -m spacy_entlink build-kb`."
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf8"))
        except (OSError, ValueError) as err:  # ValueError covers bad UTF-8 and bad JSON
            raise KBFormatError(f"{meta_path}: unreadable KB metadata ({err}).") from err
        if not isinstance(meta, dict):
            meta = {}
        if meta.get("format") != "spacy-entlink-kb" or meta.get("version") != FORMAT_VERSION:
            raise KBFormatError(
                f"{meta_path}: unsupported KB format {meta.get('format')!r} version "
                f"{meta.get('version')!r} (this spacy-entlink reads version {FORMAT_VERSION})."
            )
        self.path = path
        self.meta = meta
        self.normalizer: Normalizer = get_normalizer(NormalizerConfig.from_dict(meta["normalizer"]))
        try:
            self._ids = marisa_trie.Trie().mmap(str(path / "ids.marisa"))
            self._keys = marisa_trie.Trie().mmap(str(path / "keys.marisa"))
            self._words = marisa_trie.Trie().mmap(str(path / "words.marisa"))
            self._alt = marisa_trie.Trie().mmap(str(path / "alt_ids.marisa"))
            load = lambda name: mmap_array(path / name)  # noqa: E731
            self._alt_rows = load("alt_rows.npy")
            self._key_ptr = load("key_ptr.npy")
            self._key_ent = load("key_ent.npy")
            self._key_canon = load("key_canon.npy")
            self._types = load("types.npy")
            self._priors = load("priors.npy")
            self._names = StringStore.load(path, "names")
            self._desc = StringStore.load(path, "desc")
            self._aliases = StringStore.load(path, "aliases")
            self._ent_alias_ptr = load("ent_alias_ptr.npy")
            self._grams: Optional[GramIndex] = GramIndex.load(path) if meta.get("fuzzy_index") else None
            self.word_index = load_word_index(path, meta)
            has_parents = (path / "parents_ptr.npy").exists()
            self._parent_ptr = load("parents_ptr.npy") if has_parents else None
            self._parents = load("parents.npy") if has_parents else None
            if has_parents and len(self._parent_ptr) != len(self._ids) + 1:
                raise ValueError(f"parents_ptr.npy has {len(self._parent_ptr)} entries for {len(self._ids)} entities")
            deletes = path / "word_deletes.marisa"
            self._word_deletes = marisa_trie.Trie().mmap(str(deletes)) if deletes.exists() else None
        except (OSError, ValueError, RuntimeError) as err:  # marisa raises RuntimeError
            raise KBFormatError(f"{path}: incomplete or damaged knowledge base ({err}).") from err
        self.type_names: List[str] = list(meta["types"])

    # --- construction -----------------------------------------------------------------
    @classmethod
    def from_disk(cls, path: PathLike) -> "KnowledgeBase":
        return cls(path)

    def to_disk(self, path: PathLike) -> None:
        """Copy the KB's files to `path` (a no-op when it already lives there)."""
        copy_files(self.path, path)

    def __reduce__(self):
        return (KnowledgeBase, (str(self.path),))

    @classmethod
    def build(
        cls,
        records: Iterable[EntityRecord],
        path: PathLike,
        *,
        normalizer: Optional[NormalizerConfig] = None,
        fuzzy_index: bool = True,
        progress: bool = False,
        name: str = "",
        extra_aliases: Optional[Iterable[EntityRecord]] = None,
        adjectives: bool = False,
    ) -> "KnowledgeBase":
        """Write a KB built from `records` to `path` and open it; `extra_aliases` (records
        with an id and aliases) add aliases to entities of `records`; `adjectives` also keys
        names by their adjectival form (see `kb/variants.py`)."""
        from .build import write_kb

        write_kb(records, Path(path), normalizer or NormalizerConfig(), fuzzy_index, progress, name, extra_aliases,
                 adjectives)
        return cls(path)

    def without(self, removed: Iterable[str], path: PathLike, *, progress: bool = False) -> "KnowledgeBase":
        """This KB rebuilt at `path` without the entities `removed` (canonical ids), with the same
        normaliser settings, adjectival keys and fuzzy index: e.g. to see how a linker treats
        entities its KB lacks."""
        removed = set(removed)
        alt_ids: Dict[int, List[str]] = {}
        for key, i in self._alt.items():
            alt_ids.setdefault(int(self._alt_rows[i]), []).append(key)

        def records() -> Iterator[EntityRecord]:
            for r in range(len(self)):
                if self.get_id(r) not in removed:
                    rec = self.entity(self.get_id(r))
                    rec.alt_ids = sorted(alt_ids.get(r, []))
                    yield rec

        meta = self.meta
        return KnowledgeBase.build(records(), path, normalizer=NormalizerConfig.from_dict(meta.get("normalizer")),
                                   fuzzy_index=bool(meta.get("fuzzy_index", True)),
                                   adjectives=bool(meta.get("adjectives")), progress=progress,
                                   name=f"{meta.get('name', '')} minus {len(removed)} entities")

    # --- sizes --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    @property
    def n_aliases(self) -> int:
        """Number of distinct normalised alias keys."""
        return len(self._keys)

    @property
    def has_fuzzy_index(self) -> bool:
        return self._grams is not None

    def __contains__(self, entity_id: str) -> bool:
        return entity_id in self._ids or entity_id in self._alt

    # --- entities -----------------------------------------------------------------------
    def row_of(self, entity_id: str) -> Optional[int]:
        """Row of an entity id or alternative id, None if unknown."""
        return resolve_row(self._ids, self._alt, self._alt_rows, entity_id)

    def ids(self) -> Iterator[str]:
        for row in range(len(self)):
            yield self._ids.restore_key(row)

    def get_id(self, row: int) -> str:
        return self._ids.restore_key(int(row))

    def get_ids(self, rows: Iterable[int]) -> List[str]:
        """`get_id` of every row (one call for many)."""
        restore = self._ids.restore_key
        return [restore(int(r)) for r in rows]

    def get_name(self, row: int) -> str:
        return self._names[row]

    def get_description(self, row: int) -> str:
        return self._desc[row]

    def get_type(self, row: int) -> str:
        return self.type_names[int(self._types[row])]

    def get_prior(self, row: int) -> float:
        return float(self._priors[row])

    def get_aliases(self, row: int) -> List[str]:
        a, b = int(self._ent_alias_ptr[row]), int(self._ent_alias_ptr[row + 1])
        return [self._aliases[i] for i in range(a, b)]

    @property
    def has_hierarchy(self) -> bool:
        """Whether some entity has a broader entity (parents)."""
        return self._parents is not None and len(self._parents) > 0

    def get_parents(self, row: int) -> List[int]:
        """Rows of the entity's broader entities (empty without a hierarchy)."""
        if self._parent_ptr is None:
            return []
        a, b = int(self._parent_ptr[row]), int(self._parent_ptr[row + 1])
        return [int(r) for r in self._parents[a:b]]

    def ancestors(self, row: int, depth: int = 2) -> Dict[int, int]:
        """Broader entities up to `depth` is-a steps away: row -> fewest steps (cycles and
        diamonds visited once)."""
        out: Dict[int, int] = {}
        frontier = [int(row)]
        for d in range(1, depth + 1):
            nxt = []
            for r in frontier:
                for p in self.get_parents(r):
                    if p not in out and p != row:
                        out[p] = d
                        nxt.append(p)
            frontier = nxt
        return out

    def entity(self, entity_id: str) -> Optional[EntityRecord]:
        """The record of an entity (by id or alternative id), None if unknown."""
        row = self.row_of(entity_id)
        if row is None:
            return None
        return EntityRecord(
            id=self.get_id(row), name=self.get_name(row), aliases=self.get_aliases(row),
            description=self.get_description(row), type=self.get_type(row), prior=self.get_prior(row),
            parents=[self.get_id(p) for p in self.get_parents(row)],
        )

    # --- aliases ------------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        return self.normalizer.normalize_key(text)

    def alias_row(self, key: str) -> Optional[int]:
        """Row of a normalised alias key, None if it is no alias."""
        return _lookup(self._keys, key)

    def alias_key(self, alias_row: int) -> str:
        return self._keys.restore_key(int(alias_row))

    def has_prefix(self, prefix: str) -> bool:
        """True if some alias key starts with `prefix` (normalised)."""
        return _prefix_exists(self._keys, prefix)

    def has_word(self, word: str) -> bool:
        """True if `word` (normalised) occurs in some alias key."""
        return word in self._words

    def alias_entities(self, alias_row: int) -> np.ndarray:
        """Entity rows of an alias row, canonical-name matches first, then by prior."""
        return self._key_ent[int(self._key_ptr[alias_row]) : int(self._key_ptr[alias_row + 1])]

    def alias_is_name(self, alias_row: int) -> np.ndarray:
        return self._key_canon[int(self._key_ptr[alias_row]) : int(self._key_ptr[alias_row + 1])]

    def candidates_for_key(self, key: str) -> List[Candidate]:
        """Candidates of a normalised key (empty if it is no alias)."""
        row = _lookup(self._keys, key)
        return [] if row is None else self.candidates_for_alias_row(row)

    def candidates_for_alias_row(self, alias_row: int) -> List[Candidate]:
        rows = self.alias_entities(alias_row)
        canon = self.alias_is_name(alias_row)
        return [
            Candidate(self.get_id(r), self.get_name(r), self.get_type(r), self.get_prior(r), int(r), bool(c))
            for r, c in zip(rows, canon)
        ]

    def get_candidates(self, mention: str) -> List[Candidate]:
        """Candidates for raw mention text (normalised with the KB's normaliser)."""
        return self.candidates_for_key(self.normalize(mention))

    # --- fuzzy --------------------------------------------------------------------------
    def near_word(self, word: str) -> bool:
        """True if a KB word is within one edit of `word` (always True without the index)."""
        if self._word_deletes is None:
            return True
        return within_one_edit(word, self._words, self._word_deletes)

    def fuzzy_search(self, key: str, max_edits: int, limit: int = 10) -> List[Tuple[int, int, float]]:
        """Alias rows within `max_edits` Levenshtein edits of the normalised `key`.

        Returns (alias_row, edits, similarity in 0..1) sorted best first. Exact: a
        trigram count filter with prefix filtering gives every alias within the edit
        bound a place in the shortlist, which rapidfuzz then verifies.
        """
        if self._grams is None:
            raise KBFormatError(
                f"{self.path}: this KB was built without a fuzzy index; rebuild it without --no-fuzzy."
            )
        return self._grams.search(key, max_edits, self._keys, limit)
