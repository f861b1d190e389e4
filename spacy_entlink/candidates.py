"""Candidate generation: which KB entities a mention may refer to.

A candidate source is a registered function `source(generator, mentions)` that appends KB rows
to each `Mention.rows` (or replaces them); the linker runs its configured sources in order and
keeps the rows deduplicated, in the order found. Built-in sources (registry
`spacy_entlink.candidate_sources`, entry-point group `spacy_entlink_candidate_sources`):

- "span": ids an upstream `entlink_dictionary` or a corpus reader left in `span._.entlink_candidates`;
- "kb": the KB's alias table, exact after the shared normalisation;
- "abbreviation": a short form defined in its document ("long form (SF)") takes its long form's
  candidates instead of its own (kept where both agree); later sources use the long form's text;
- "fuzzy": alias keys within the edit bound of the mention, with the guards of
  `matching.fuzzy.FuzzyMatcher` (numbers, short words and acronyms exact; bare suffixes are no
  typos), only for mentions that the sources before left without candidates;
- "dense": the `dense_k` entities whose names are nearest to the mention in the dense index
  (a trained retriever, see `linking.retriever`), for every mention;
- "dense_fallback": the same, only for mentions without candidates so far;
- "dense_extra": the `dense_k` entities nearest in a second dense index (another encoder, e.g.
  the general one a retriever was trained from), for every mention: candidates only, the
  linker's name-similarity feature stays in the first index's space;
- "trie": the entities of the linker's `trie_k` best names from constrained beam search over
  the whole name trie, for every mention;
- "ancestors": for a mention whose text is no name in the KB, the broader entities (up to
  `ANCESTOR_DEPTH` is-a steps, from the KB's hierarchy) of its first `ANCESTOR_OF` candidates so
  far: "renal dysfunction", nearest to "Renal Insufficiency", also gets "Kidney Diseases". Does
  nothing with a KB without parents.

A new source: `@candidate_sources.register("mine")` on a function with that signature, then
list "mine" in the linker's `candidates`.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import catalogue
import numpy as np
from spacy.tokens import Doc, Span

from .errors import ConfigError
from .kb import KnowledgeBase
from .matching.abbreviations import find_abbreviations
from .matching.fuzzy import FuzzyMatcher

candidate_sources = catalogue.create("spacy_entlink", "candidate_sources", entry_points=True)

ANCESTOR_OF = 5  # the "ancestors" source expands a mention's first 5 candidates
ANCESTOR_DEPTH = 2  # by their parents and grandparents
DEFAULT_FUZZY_EDIT_LENGTHS = (6, 12, 24)  # the dictionary's defaults: 1 edit from 6 characters, 2 from 12, 3 from 24


@dataclass
class Mention:
    """A mention being given candidates: its span, the text later sources search with (the
    long form of a defined abbreviation, else the span's text) and the KB rows found so far."""

    span: Span
    text: str
    rows: List[int] = field(default_factory=list)

    def add(self, rows) -> None:
        seen = set(self.rows)
        for r in rows:
            r = int(r)
            if r not in seen:
                seen.add(r)
                self.rows.append(r)


def short_form_variants(found: Dict[str, str]) -> Dict[str, str]:
    """Defined short forms plus their other grammatical number: "VSDs" defined also expands
    "VSD", "CKD" defined also "CKDs" (a form defined in the text itself wins)."""
    out = dict(found)
    for short, long in found.items():
        if len(short) >= 3 and short[-1] == "s" and short[-2].isupper():
            out.setdefault(short[:-1], long)
        elif len(short) >= 2 and short[-1].isupper():
            out.setdefault(short + "s", long)
    return out


class AbbreviationCache:
    """Short form -> long form text of the abbreviations defined in a document (cached)."""

    def __init__(self, size: int = 256):
        self._cache: Dict[int, tuple] = {}
        self._size = size

    def __call__(self, doc: Doc) -> Dict[str, str]:
        hit = self._cache.get(id(doc))
        if hit is not None and hit[0] is doc:
            return hit[1]
        found = short_form_variants({ab.short.text: ab.long.text for ab in find_abbreviations(doc)})
        if len(self._cache) > self._size:
            self._cache.clear()
        self._cache[id(doc)] = (doc, found)
        return found

    def expanded(self, span: Span) -> str:
        """The span's long form if it is a short form defined in its document, else its text."""
        return self(span.doc).get(span.text) or span.text


class CandidateGenerator:
    """Runs candidate sources in order over mentions.

    `dense`: a `DenseIndex` (for "dense"/"dense_fallback"); `dense_extra`: a second one (for
    "dense_extra"); `generate`: spans -> KB rows of their best names from beam search over the
    name trie (for "trie")."""

    def __init__(self, kb: KnowledgeBase, sources: Sequence[str], *, dense=None, dense_extra=None, dense_k: int = 8,
                 trie_k: int = 5,
                 generate: Optional[Callable[[Sequence[Span]], List[List[int]]]] = None,
                 fuzzy_edit_lengths: Sequence[int] = DEFAULT_FUZZY_EDIT_LENGTHS,
                 abbreviations: Optional[AbbreviationCache] = None, fuzzy: Optional[FuzzyMatcher] = None):
        self.kb = kb
        self.sources = [check_source(s) for s in sources]
        self.dense = dense
        self.dense_extra = dense_extra
        self.dense_k = int(dense_k)
        self.trie_k = int(trie_k)
        self.generate = generate
        if fuzzy is None and kb.has_fuzzy_index:
            fuzzy = FuzzyMatcher(kb, edit_lengths=fuzzy_edit_lengths)
        self.fuzzy = fuzzy  # pass one in to keep its lookup caches across batches
        self.abbreviations = abbreviations or AbbreviationCache()
        self.vectors: Dict[str, np.ndarray] = {}  # text -> embedding, of the texts the dense sources searched

    def __call__(self, spans: Sequence[Span]) -> List[List[int]]:
        mentions = [Mention(s, s.text) for s in spans]
        for name in self.sources:
            candidate_sources.get(name)(self, mentions)
        return [m.rows for m in mentions]

    def fuzzy_rows(self, text: str, limit: int = 5) -> List[int]:
        """KB rows of the alias keys that the shared fuzzy rule accepts for `text`."""
        if self.fuzzy is None:
            return []
        key = self.kb.normalize(text)
        rows: Dict[int, None] = {}
        for alias_row, _ in self.fuzzy.candidates(key, limit=limit):
            for r in self.kb.alias_entities(alias_row):
                rows.setdefault(int(r))
        return list(rows)

    def long_form_rows(self, long: str) -> List[int]:
        """The long form's exact candidates, else those of the long form without its first
        words, else (with "fuzzy" among the sources) its fuzzy candidates."""
        words = long.split()
        for i in range(len(words)):
            found = self.kb.get_candidates(" ".join(words[i:]))
            if found:
                return [c.row for c in found]
        if "fuzzy" in self.sources:
            return self.fuzzy_rows(long)
        return []


def check_source(name: str) -> str:
    """`name` if a candidate source of that name is registered, else a ConfigError."""
    if name not in candidate_sources:
        raise ConfigError(f"Invalid value {name!r} for argument 'candidates': choose from "
                          + ", ".join(repr(n) for n in sorted(candidate_sources.get_all())))
    return name


@candidate_sources.register("span")
def span_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    for m in mentions:
        m.add(r for r in (gen.kb.row_of(i) for i in m.span._.entlink_candidates or []) if r is not None)


@candidate_sources.register("kb")
def kb_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    for m in mentions:
        m.add(c.row for c in gen.kb.get_candidates(m.span.text))


@candidate_sources.register("abbreviation")
def abbreviation_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    for m in mentions:
        long = gen.abbreviations(m.span.doc).get(m.span.text)
        if not long:
            continue
        m.text = long
        long_rows = gen.long_form_rows(long)
        if long_rows:
            keep = set(long_rows)
            m.rows = [r for r in m.rows if r in keep] or list(dict.fromkeys(long_rows))


@candidate_sources.register("fuzzy")
def fuzzy_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    for m in mentions:
        if not m.rows:
            m.add(gen.fuzzy_rows(m.text))


def _dense(gen: CandidateGenerator, mentions: List[Mention], index=None) -> None:
    """Add the `dense_k` nearest entities in `index` (default: the first dense index, whose
    query embeddings are kept in `gen.vectors`)."""
    first = index is None
    index = gen.dense if first else index
    if index is None or not mentions or len(index.rows) == 0:
        return
    texts = [m.text for m in mentions]
    vectors = index.encoder.encode(texts)
    if first:
        gen.vectors.update(zip(texts, vectors))  # kept for the linker's cosine feature: no second encoding
    for m, hits in zip(mentions, index.search_vectors(vectors, k=gen.dense_k)):
        m.add(r for r, _ in hits)


@candidate_sources.register("dense")
def dense_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    _dense(gen, mentions)


@candidate_sources.register("dense_fallback")
def dense_fallback_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    _dense(gen, [m for m in mentions if not m.rows])


@candidate_sources.register("dense_extra")
def dense_extra_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    if gen.dense_extra is not None:
        _dense(gen, mentions, gen.dense_extra)


@candidate_sources.register("trie")
def trie_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    if gen.generate is None or not mentions:
        return
    for m, rows in zip(mentions, gen.generate([m.span for m in mentions])):
        m.add(rows[: gen.trie_k])


@candidate_sources.register("ancestors")
def ancestors_source(gen: CandidateGenerator, mentions: List[Mention]) -> None:
    kb = gen.kb
    if not kb.has_hierarchy:
        return
    for m in mentions:
        if not m.rows or kb.get_candidates(m.text):
            continue
        found: Dict[int, int] = {}
        for r in m.rows[:ANCESTOR_OF]:
            for a, d in kb.ancestors(r, ANCESTOR_DEPTH).items():
                found[a] = min(d, found.get(a, d))
        m.add(sorted(found, key=found.__getitem__))  # nearer first, then in the order found
