"""`entlink_dictionary`: exact, fuzzy and abbreviation matching of a KB, fused with `doc.ents`."""

import shutil
import weakref
from bisect import bisect_left, bisect_right
from collections import Counter
from pathlib import Path
from typing import AbstractSet, Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy
import srsly
from spacy import util
from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE, ORTH, SPACY
from spacy.language import Language
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..errors import ConfigError, EntlinkError, check_choice
from ..extensions import install_extensions, set_span_values, span_value_keys
from ..files import atomic_folder, unpack_files
from ..kb import KnowledgeBase
from ..kb.registry import KBSource, resolve_kb
from ..matching.abbreviations import find_abbreviations
from ..matching.exact import ExactMatcher, token_texts
from ..matching.fusion import FUSION_POLICIES, SpanCandidate, fuse, merge_same_boundaries
from ..matching.fuzzy import FuzzyMatcher
from ..matching.native import extension

_native = extension()

ASSIGN_KB_ID = ("unambiguous", "top", "never")
ALIGNMENT_MODES = ("strict", "contract", "expand")

DEFAULT_CONFIG = {
    "spans_key": "entlink_candidates",
    "fusion": "keep_ner",
    "fuzzy": True,
    "fuzzy_edit_lengths": [6, 12, 24],
    "abbreviations": True,
    "max_words": 12,
    "max_candidates": 10,
    "alignment_mode": "expand",
    "assign_kb_id": "unambiguous",
    "labels": [],
    "default_label": "ENTITY",
    "scorer": {"@scorers": "spacy_entlink.dictionary_scorer.v1"},
}


@Language.factory(
    "entlink_dictionary",
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type", "span._.entlink_candidates"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None,
                           "nel_micro_f": None, "nel_micro_p": None, "nel_micro_r": None},
)
def make_dictionary(
    nlp: Language,
    name: str,
    spans_key: str,
    fusion: str,
    fuzzy: bool,
    fuzzy_edit_lengths: List[int],
    abbreviations: bool,
    max_words: int,
    max_candidates: int,
    alignment_mode: str,
    assign_kb_id: str,
    labels: List[str],
    default_label: str,
    scorer: Optional[Callable],
) -> "DictionaryMatcher":
    """Create an `entlink_dictionary` component; give it a KB with `initialize` or `set_kb`."""
    return DictionaryMatcher(
        nlp.vocab, name=name, spans_key=spans_key, fusion=fusion, fuzzy=fuzzy,
        fuzzy_edit_lengths=fuzzy_edit_lengths, abbreviations=abbreviations, max_words=max_words,
        max_candidates=max_candidates, alignment_mode=alignment_mode, assign_kb_id=assign_kb_id,
        labels=labels, default_label=default_label, scorer=scorer,
    )


class DictionaryMatcher(Pipe):
    """Marks KB names, synonyms and their abbreviations in text, fused with existing entities.

    Every candidate span (overlaps kept) goes to `doc.spans[spans_key]`; the spans chosen
    by the fusion policy go to `doc.ents`, with `kb_id_` set according to `assign_kb_id`.
    Each span carries `._.entlink_score`, `._.entlink_source` and `._.entlink_candidates`.
    """

    def __init__(
        self,
        vocab,
        name: str = "entlink_dictionary",
        *,
        spans_key: str = "entlink_candidates",
        fusion: str = "keep_ner",
        fuzzy: bool = True,
        fuzzy_edit_lengths: Sequence[int] = (6, 12, 24),
        abbreviations: bool = True,
        max_words: int = 12,
        max_candidates: int = 10,
        alignment_mode: str = "expand",
        assign_kb_id: str = "unambiguous",
        labels: Sequence[str] = (),
        default_label: str = "ENTITY",
        scorer: Optional[Callable] = None,
    ):
        install_extensions()
        self.vocab = vocab
        self.name = name
        check_choice("fusion", fusion, FUSION_POLICIES)
        check_choice("assign_kb_id", assign_kb_id, ASSIGN_KB_ID)
        check_choice("alignment_mode", alignment_mode, ALIGNMENT_MODES)
        if max_words < 1 or max_candidates < 1:
            raise ConfigError("max_words and max_candidates must be at least 1")
        if any(int(x) < 1 for x in fuzzy_edit_lengths):
            raise ConfigError(f"fuzzy_edit_lengths must be positive lengths, got {list(fuzzy_edit_lengths)}")
        self.cfg: Dict[str, Any] = {
            "spans_key": spans_key, "fusion": fusion, "fuzzy": bool(fuzzy),
            "fuzzy_edit_lengths": [int(x) for x in fuzzy_edit_lengths], "abbreviations": bool(abbreviations),
            "max_words": int(max_words), "max_candidates": int(max_candidates),
            "alignment_mode": alignment_mode, "assign_kb_id": assign_kb_id,
            "labels": list(labels), "default_label": default_label,
        }
        self.scorer = scorer
        self.kb: Optional[KnowledgeBase] = None
        self.excluded: Set[str] = set()
        self._exact: Optional[ExactMatcher] = None
        self._fuzzy: Optional[FuzzyMatcher] = None
        self._row_ids: Dict[int, Tuple[List[str], str]] = {}
        self._surface_cache: Dict[str, FrozenSet[str]] = {}

    # --- set-up -------------------------------------------------------------------------
    def set_kb(self, kb: KBSource) -> "DictionaryMatcher":
        """Use `kb` (a KnowledgeBase, a KB folder, or a callable returning one)."""
        kb = resolve_kb(kb, self.name)
        self.kb = kb
        self._exact = ExactMatcher(kb, max_words=self.cfg["max_words"])
        self._row_ids: Dict[int, Tuple[List[str], str]] = {}  # alias row -> _ids(its entities)
        self._surface_cache = {}  # KB id -> its name and aliases, folded (_surfaces)
        self._fuzzy = None
        if self.cfg["fuzzy"]:
            if not kb.has_fuzzy_index:
                raise ConfigError(
                    f"{self.name}: fuzzy=true but the KB at {kb.path} has no fuzzy index; "
                    "rebuild it without --no-fuzzy or set fuzzy=false"
                )
            stop = frozenset(kb.normalizer.normalize_key(w) for w in STOP_WORDS) - {""}
            self._fuzzy = FuzzyMatcher(
                kb, edit_lengths=self.cfg["fuzzy_edit_lengths"], max_words=min(6, self.cfg["max_words"]),
                stop_words=stop,
            )
        return self

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        kb: Optional[KBSource] = None,
        exclude: Optional[Union[str, Path, List[str]]] = None,
        tune: bool = False,
        tune_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
        tune_min_precision: float = 0.3,
        tune_min_count: int = 3,
    ) -> None:
        """Load the KB; optionally exclude alias keys (a list or a file of one per line) and
        learn more exclusions from annotated examples: those of `tune_corpus` (a corpus
        reader such as `spacy.Corpus.v1`), or the training examples when `tune=true`."""
        if kb is not None:
            self.set_kb(kb)
        if self.kb is None:
            raise ConfigError(
                f"{self.name}: no knowledge base. Pass one in [initialize.components.{self.name}.kb] "
                "(e.g. @misc = \"spacy_entlink.KBFromDisk.v1\"), or call set_kb()."
            )
        if exclude is not None:
            self.set_exclusions(_read_exclusions(exclude))
        if tune_corpus is not None:
            if nlp is None:
                raise ConfigError(f"{self.name}: tune_corpus needs the nlp object")
            self.tune(tune_corpus(nlp), min_precision=tune_min_precision, min_count=tune_min_count)
        elif tune:
            if get_examples is None:
                raise ConfigError(f"{self.name}: tune=true needs training examples (or set tune_corpus)")
            self.tune(get_examples(), min_precision=tune_min_precision, min_count=tune_min_count)

    def set_exclusions(self, keys: Iterable[str]) -> None:
        """Alias keys (raw names are normalised) that never produce a match."""
        norm = self._require_kb().normalizer.normalize_key
        self.excluded = {norm(k) for k in keys if k and norm(k)}

    def tune(self, examples: Iterable[Example], *, min_precision: float = 0.3, min_count: int = 3) -> List[str]:
        """Exclude alias keys whose matches were mostly not gold entities in `examples`.

        A key matched at least `min_count` times whose matches have the boundaries and
        label of a gold entity less than `min_precision` of the time is excluded. Returns
        the keys excluded by this call.
        """
        self._require_kb()
        seen: Counter = Counter()
        right: Counter = Counter()
        for eg in examples:
            doc = eg.predicted
            gold = {(e.start_char, e.end_char, e.label_) for e in eg.reference.ents}
            for cand, key in self._dictionary_spans(doc, with_keys=True):
                span = doc[cand.start : cand.end]
                seen[key] += 1
                right[key] += (span.start_char, span.end_char, cand.label) in gold
        new = sorted(k for k, n in seen.items() if n >= min_count and right[k] / n < min_precision)
        self.excluded.update(new)
        return new

    def _require_kb(self) -> KnowledgeBase:
        if self.kb is None:
            raise EntlinkError(
                f"{self.name} has no knowledge base: call nlp.initialize() with "
                f"[initialize.components.{self.name}.kb] set, or nlp.get_pipe('{self.name}').set_kb(path)."
            )
        return self.kb

    # --- matching -----------------------------------------------------------------------
    def _ids(self, rows) -> Tuple[List[str], str]:
        kb = self.kb
        labels = self.cfg["labels"]
        if not labels:
            # No type filter: the first max_candidates rows, labelled by the first of them
            # with a type (one type look-up, plain ints instead of memory-mapped scalars).
            rows = rows[: self.cfg["max_candidates"]]
            rows = rows.tolist() if hasattr(rows, "tolist") else list(rows)
            label = ""
            for r in rows:
                label = kb.get_type(r)
                if label:
                    break
            return kb.get_ids(rows), label or self.cfg["default_label"]
        ids, label = [], ""
        for r in rows:
            t = kb.get_type(r)
            if labels and t not in labels:
                continue
            if not label:
                label = t
            ids.append(kb.get_id(r))
            if len(ids) >= self.cfg["max_candidates"]:
                break
        return ids, label or self.cfg["default_label"]

    def _candidate(self, first: int, end: int, alias_row: int, score: float, source: str,
                   with_key: bool) -> Optional[Union[SpanCandidate, Tuple[SpanCandidate, str]]]:
        """The candidate for a match of `alias_row` over tokens [first, end), or None (an
        excluded key, or no entity of the wanted types)."""
        key = self.kb.alias_key(alias_row) if (self.excluded or with_key) else ""
        if key in self.excluded:
            return None
        seen = self._row_ids
        got = seen.get(alias_row)
        if got is None:
            if len(seen) > _ROW_IDS_MAX:
                seen.clear()
            got = seen[alias_row] = self._row_info(alias_row)
        ids, label = got
        if not ids:
            return None
        cand = SpanCandidate(first, end, label, score, [source], list(ids))
        return (cand, key) if with_key else cand

    def _dictionary_spans(self, doc: Doc, with_keys: bool = False,
                          layout: Optional[Tuple[str, List[int], List[int]]] = None):
        self._require_kb()
        if self._fuzzy is None and self.cfg["alignment_mode"] == "expand":
            found = self._exact.scan_tokens(doc)
            if found is not None:
                out = [self._candidate(first, end, row, 1.0, "exact", with_keys) for first, end, row, _, _ in found]
                return [c for c in out if c is not None]
        text, starts, _ = layout or doc_layout(doc)
        norm, breaks, matches, in_vocab = self._exact.scan(text)
        if not norm.words:
            return []
        if self._fuzzy is not None:
            matches = matches + self._fuzzy(norm, breaks, matches, in_vocab)
        out = []
        mode = self.cfg["alignment_mode"]
        starts = starts if mode == "expand" else None
        for m in matches:
            start, end = norm.words_to_original(m.start, m.end - 1)
            tokens = expand_to_tokens(text, starts, start, end) if starts is not None else None
            if tokens is not None:
                first, last = tokens
            else:
                span = doc.char_span(start, end, alignment_mode=mode)
                if span is None or len(span) == 0:
                    continue
                first, last = span.start, span.end
            cand = self._candidate(first, last, m.alias_row, m.score, m.source, with_keys)
            if cand is not None:
                out.append(cand)
        return out

    def _ids_for_text(self, text: str, label: str) -> List[str]:
        kb = self.kb
        key = kb.normalizer.normalize_key(text)
        row = kb.alias_row(key)
        if row is None and self._fuzzy is not None and key:
            hit = self._fuzzy.lookup(key)
            row = hit[0] if hit else None
        if row is None:
            return []
        rows = kb.alias_entities(row)
        typed = [r for r in rows if kb.get_type(r) == label]
        ids, _ = self._ids(typed or rows)
        return ids

    def _abbreviations(
        self, doc: Doc, pool: Dict[Tuple[int, int], SpanCandidate], ner: List[SpanCandidate],
        layout: Tuple[str, List[int], List[int]],
    ) -> None:
        """Give short forms defined in the doc their long form's ids; drop dictionary matches of
        short forms whose long form is no entity (e.g. "MS" defined as "mass spectrometry")."""
        providers = list(pool.values()) + ner
        for ab in find_abbreviations(doc):
            long = [
                c for c in providers
                if c.end == ab.long.end and c.start < ab.long.end and c.start >= ab.long.start - 1
                and c.ids and not (c.start >= ab.short.start)
            ]
            best = max(long, key=lambda c: (len(c), c.score), default=None)
            occurrences = _occurrences(layout, ab.short.text)
            for start, end in occurrences:
                have = pool.get((start, end))
                if best is None:
                    if have is not None and "ner" not in have.sources:
                        del pool[(start, end)]
                    continue
                pool[(start, end)] = SpanCandidate(
                    start, end, best.label, best.score,
                    ["abbreviation"] + ([s for s in have.sources if s != "abbreviation"] if have else []),
                    list(best.ids),
                )

    def __call__(self, doc: Doc) -> Doc:
        return self.annotate(doc)

    def annotate(self, doc: Doc, *, fusion: Optional[str] = None, reuse: bool = False) -> Doc:
        """Match the KB in `doc` (or, with `reuse`, take the candidates an earlier run of this
        component left in `doc.spans`) and fuse them with `doc.ents` by `fusion` (default: the
        component's own policy)."""
        self._require_kb()
        policy = fusion or self.cfg["fusion"]
        check_choice("fusion", policy, FUSION_POLICIES)
        key = self.cfg["spans_key"]
        if len(doc) == 0:
            doc.spans[key] = []
            return doc
        if not (reuse or self.excluded or self._fuzzy is not None or self.cfg["abbreviations"]
                or self.cfg["alignment_mode"] != "expand") and self._annotate_exact(doc, policy):
            return doc
        ner = [
            SpanCandidate(e.start, e.end, e.label_, 1.0, ["ner"], [e.kb_id_] if e.kb_id_ else [])
            for e in doc.ents
        ]
        layout = doc_layout(doc) if self.cfg["abbreviations"] else None  # else made by _dictionary_spans where needed
        pool = (self._pool_from_spans(doc) if reuse
                else merge_same_boundaries(self._dictionary_spans(doc, layout=layout), copy=False))
        if layout is not None:
            self._abbreviations(doc, pool, ner, layout)
        for e in ner:
            if not e.ids:
                same = pool.get((e.start, e.end))
                e.ids = list(same.ids) if same is not None else self._ids_for_text(doc[e.start : e.end].text, e.label)
        chosen = fuse(policy, ner, list(pool.values()))
        # every span once, for the span group (without NER spans, the pool itself: its spans
        # are already one per boundary pair, and the chosen ones are the pool's own objects)
        everything = merge_same_boundaries(ner + list(pool.values())) if ner else dict(pool)
        resolved = self._resolve(doc, chosen)
        assign = self.cfg["assign_kb_id"]
        ents = []
        for c in chosen:
            kb_id = ""
            sure = len(c.ids) == 1 or (c.start, c.end) in resolved
            if c.ids and (assign == "top" or (assign == "unambiguous" and sure)):
                kb_id = c.ids[0]
            ents.append((c.start, c.end, c.label, kb_id))
            merged = everything[(c.start, c.end)]
            merged.ids, merged.label = list(c.ids), c.label  # disambiguated order, chosen label
        group = []
        for _, c in sorted(everything.items()):  # NER and dictionary spans, by (start, end)
            ids = c.ids
            span = Span(doc, c.start, c.end, label=c.label, kb_id=ids[0] if len(ids) == 1 else "")
            set_span_values(span, span.start_char, span.end_char, float(c.score),
                            c.sources[0] if len(c.sources) == 1 else "+".join(c.sources), list(ids))
            group.append(span)
        if policy != "spans_only":
            set_entities(doc, ents)
        doc.spans[key] = group
        return doc

    def _annotate_exact(self, doc: Doc, policy: str) -> bool:
        """`annotate` in compiled code where it applies (exact matches only, none excluded, no
        abbreviations, no entities in the Doc yet: then every policy but "ner_only" and
        "spans_only" takes the longest matches); False where the Doc has entities or the
        extension or the KB's word index is missing."""
        if len(self._row_ids) > _ROW_IDS_MAX:
            self._row_ids.clear()
        keys = span_value_keys(doc)
        out = self._exact.annotate_tokens(
            doc, self._row_ids, self._row_info, ASSIGN_KB_ID.index(self.cfg["assign_kb_id"]),
            0 if policy == "spans_only" else 1 if policy == "ner_only" else 2,
            None if keys is None else (*keys, 1.0, "exact"),
        )
        if out is None:
            return False
        ents, group = out
        if ents is not None and ents is not True:  # True: written in place
            doc.from_array(_ENT_ATTRS, numpy.frombuffer(ents, dtype="uint64").reshape(len(doc), 3))
        spans = [Span(doc, start, end, label=label, kb_id=kb_id) for start, end, label, kb_id, _ in group]
        if keys is None:  # pragma: no cover - a spaCy that keys extension values otherwise
            for span, (*_, ids) in zip(spans, group):
                set_span_values(span, span.start_char, span.end_char, 1.0, "exact", ids)
        doc.spans[self.cfg["spans_key"]] = spans
        if ents is not None and self.cfg["assign_kb_id"] == "unambiguous":
            ambiguous = [(start, end) for start, end, _, _, ids in group if len(ids) > 1]
            if ambiguous and _an_entity_without_id(doc, ambiguous):
                self._resolve_compiled(doc, group)
        return True

    def _resolve_compiled(self, doc: Doc, group: List[Tuple[int, int, str, str, List[str]]]) -> None:
        """The compiled path resolves by one sense per discourse only: the rest of `_resolve`
        for the entities it left ambiguous, as the Python path would."""
        ids = {(start, end): list(i) for start, end, _, _, i in group}
        ents = list(doc.ents)
        chosen = [SpanCandidate(e.start, e.end, e.label_, 1.0, ["exact"], ids[(e.start, e.end)]) for e in ents]
        before = {(e.start, e.end) for e, c in zip(ents, chosen) if len(c.ids) > 1 and e.kb_id}
        new = self._resolve(doc, chosen, before) - before
        if not new:
            return
        for e, c in zip(ents, chosen):
            if (e.start, e.end) in new:
                e.kb_id_ = c.ids[0]
                set_span_values(e, e.start_char, e.end_char, 1.0, "exact", c.ids)
        doc.ents = ents

    def _row_info(self, alias_row: int) -> Tuple[List[str], str]:
        return self._ids(self.kb.alias_entities(alias_row))

    def _pool_from_spans(self, doc: Doc) -> Dict[Tuple[int, int], SpanCandidate]:
        """The dictionary candidates an earlier run wrote to `doc.spans` (NER spans left out)."""
        key = self.cfg["spans_key"]
        if key not in doc.spans:
            raise EntlinkError(
                f"{self.name}: doc.spans[{key!r}] is missing; the dictionary must run earlier in the "
                "pipeline (fusion = \"spans_only\") before its candidates can be fused with doc.ents"
            )
        pool: Dict[Tuple[int, int], SpanCandidate] = {}
        for span in doc.spans[key]:
            ext = span._
            sources = [s for s in (ext.entlink_source or "").split("+") if s and s != "ner"]
            if sources:
                pool[(span.start, span.end)] = SpanCandidate(
                    span.start, span.end, span.label_, float(ext.entlink_score or 0.0), sources,
                    list(ext.entlink_candidates or []),
                )
        return pool

    def _resolve(self, doc: Doc, chosen: List[SpanCandidate],
                 resolved: Optional[Set[Tuple[int, int]]] = None) -> Set[Tuple[int, int]]:
        """Resolve ambiguous spans: one sense per discourse (`_disambiguate`, whose result
        `resolved` may already be); then a span whose text is, letter case and spacing aside, a
        name or alias of exactly one of its candidates (e.g. "amphetamine" against
        "Amphetamine" and "Amphetamines", which normalise alike); then one sense per discourse
        again with those. Each moves the chosen id first; returns the (start, end) of the spans
        so resolved."""
        resolved = self._disambiguate(chosen) if resolved is None else set(resolved)
        by_text = set()
        for c in chosen:
            if len(c.ids) > 1 and (c.start, c.end) not in resolved:
                text = " ".join(doc[c.start : c.end].text.split()).casefold()
                hits = [i for i in c.ids if text in self._surfaces(i)]
                if len(hits) == 1:
                    _move_first(c, hits[0])
                    by_text.add((c.start, c.end))
        if by_text:
            resolved |= by_text
            resolved |= self._disambiguate(chosen, resolved)
        return resolved

    def _surfaces(self, kb_id: str) -> FrozenSet[str]:
        """The name and aliases of `kb_id`, letter case and spacing folded."""
        found = self._surface_cache.get(kb_id)
        if found is None:
            if len(self._surface_cache) > _ROW_IDS_MAX:
                self._surface_cache.clear()
            kb = self.kb
            row = kb.row_of(kb_id)
            texts = [] if row is None else [kb.get_name(row), *kb.get_aliases(row)]
            found = self._surface_cache[kb_id] = frozenset(" ".join(t.split()).casefold() for t in texts)
        return found

    @staticmethod
    def _disambiguate(chosen: List[SpanCandidate], resolved: AbstractSet[Tuple[int, int]] = frozenset()) -> Set[Tuple[int, int]]:
        """One sense per discourse: an ambiguous span whose candidates include exactly one
        id that another span of the doc has for sure (one id, or one of `resolved`) moves that
        id first; returns the (start, end) of the spans so resolved."""
        sure = {c.ids[0] for c in chosen if len(c.ids) == 1 or (c.start, c.end) in resolved}
        out = set()
        for c in chosen:
            if len(c.ids) > 1 and (c.start, c.end) not in resolved:
                hits = [i for i in c.ids if i in sure]
                if len(hits) == 1:
                    _move_first(c, hits[0])
                    out.add((c.start, c.end))
        return out

    # --- serialization --------------------------------------------------------------------
    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """Write the component folder; an existing folder is replaced only once the new one is
        complete."""
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "exclusions": lambda p: srsly.write_json(p, sorted(self.excluded)),
        }
        if self.kb is not None:
            serialize["kb"] = lambda p: self.kb.to_disk(p)
        with atomic_folder(util.ensure_path(path), self.name) as tmp:
            util.to_disk(tmp, serialize, exclude)

    def _restore_cfg(self, saved: Dict) -> None:
        """Settings come from the loading config (so `spacy.load(..., config=...)` can change
        them); a saved key the config does not have is kept."""
        for key, value in saved.items():
            self.cfg.setdefault(key, value)

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "DictionaryMatcher":
        path = util.ensure_path(path)
        deserialize = {
            "cfg": lambda p: self._restore_cfg(srsly.read_json(p)),
            "exclusions": lambda p: setattr(self, "excluded", set(srsly.read_json(p))),
        }
        util.from_disk(path, deserialize, exclude)
        if (path / "kb").exists() and "kb" not in exclude:
            self.set_kb(KnowledgeBase.from_disk(path / "kb"))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        files = {}
        if self.kb is not None:
            files = {f.name: f.read_bytes() for f in self.kb.path.iterdir() if f.is_file()}
        return srsly.msgpack_dumps({"cfg": self.cfg, "exclusions": sorted(self.excluded), "kb": files})

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = tuple()) -> "DictionaryMatcher":
        msg = srsly.msgpack_loads(data)
        self._restore_cfg(msg["cfg"])
        self.excluded = set(msg["exclusions"])
        if msg["kb"]:
            folder = unpack_files(msg["kb"], self.name)
            self.set_kb(KnowledgeBase.from_disk(folder))
            weakref.finalize(self, shutil.rmtree, folder, True)
        return self


_ROW_IDS_MAX = 1 << 18  # alias rows whose ids and label a component keeps (the KB never changes under it)
_ENT_ATTRS = [ENT_IOB, ENT_TYPE, ENT_KB_ID]
_OUTSIDE = (2, 0, 0)


def set_entities(doc: Doc, ents: List[Tuple[int, int, str, str]]) -> None:
    """`doc.set_ents([Span(doc, start, end, label=label, kb_id=kb_id), ...], default="outside")`
    for non-overlapping (start, end, label, kb_id), through `Doc.from_array` (a third of the
    cost): every token gets its entity tag; tokens outside the entities are "O" with no type
    and no KB id."""
    strings = doc.vocab.strings
    # runs of tokens: (O, no type, no id) between the entities, (I, type, id) over each of them
    values, lengths, firsts, at = [_OUTSIDE], [], [], 0
    for start, end, label, kb_id in ents:
        lengths.append(start - at)
        values.append((1, strings.add(label), strings.add(kb_id) if kb_id else 0))
        lengths.append(end - start)
        values.append(_OUTSIDE)
        firsts.append(start)
        at = end
    lengths.append(len(doc) - at)
    array = numpy.repeat(numpy.array(values, dtype="uint64"), lengths, axis=0)
    array[firsts, 0] = 3  # B
    doc.from_array(_ENT_ATTRS, array)


def doc_layout(doc: Doc) -> Tuple[str, List[int], List[int]]:
    """`doc.text` and the start and end character of every token, in compiled code from the
    Doc's ORTH and SPACY arrays where the extension is built (spaCy's own `doc.text` and
    `token.idx` build a Token object per token, which costs as much as matching the text)."""
    if _native is None:
        return doc.text, [t.idx for t in doc], [t.idx + len(t.text) for t in doc]
    return _native.doc_layout(doc.to_array([ORTH, SPACY]), token_texts(), doc.vocab.strings)


def expand_to_tokens(text: str, starts: List[int], start: int, end: int) -> Optional[Tuple[int, int]]:
    """`doc.char_span(start, end, alignment_mode="expand")` as (first token, end token) by
    bisection over the token starts, when both ends are non-space characters (each then lies
    inside a token); None otherwise (ask spaCy)."""
    if not 0 <= start < end <= len(text) or text[start].isspace() or text[end - 1].isspace():
        return None
    return bisect_right(starts, start) - 1, bisect_left(starts, end)


def strict_tokens(starts: List[int], ends: List[int], start: int, end: int) -> Optional[Tuple[int, int]]:
    """`doc.char_span(start, end)` (strict) as (first token, end token) by bisection over the
    token starts and ends; None where the characters are not exactly a run of tokens."""
    i = bisect_left(starts, start)
    j = bisect_left(ends, end)
    if i < len(starts) and starts[i] == start and j < len(ends) and ends[j] == end and j >= i:
        return i, j + 1
    return None


def _occurrences(layout: Tuple[str, List[int], List[int]], short: str) -> List[Tuple[int, int]]:
    """Token spans of every occurrence of `short` (or its plural with "s") as whole words."""
    text, starts, ends = layout
    out = []
    for form in (short, short + "s"):
        pos = text.find(form)
        while pos != -1:
            end = pos + len(form)
            before = text[pos - 1] if pos > 0 else " "
            after = text[end] if end < len(text) else " "
            if not before.isalnum() and not after.isalnum():
                span = strict_tokens(starts, ends, pos, end)
                if span is not None:
                    out.append(span)
            pos = text.find(form, pos + 1)
    return out


def _read_exclusions(source: Union[str, Path, List[str]]) -> List[str]:
    if isinstance(source, (list, tuple, set)):
        return list(source)
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"exclusion list {path} not found")
    return [line.strip() for line in path.read_text(encoding="utf8").splitlines() if line.strip() and not line.startswith("#")]


def _move_first(candidate: SpanCandidate, kb_id: str) -> None:
    candidate.ids = [kb_id] + [i for i in candidate.ids if i != kb_id]


def _an_entity_without_id(doc: Doc, spans: List[Tuple[int, int]]) -> bool:
    """Whether one of the token spans `spans` is an entity of `doc` without a KB id."""
    tags = doc.to_array([ENT_IOB, ENT_KB_ID])
    n = len(doc)
    return any(tags[start, 0] == 3 and tags[start, 1] == 0 and (end == n or tags[end, 0] != 1) for start, end in spans)
