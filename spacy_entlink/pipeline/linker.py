"""`entlink_linker`: GENRE-style entity linking of `doc.ents` against the KB.

For every entity span a seq2seq model reads the span in context between `[START_ENT]` and
`[END_ENT]` and scores the names of the span's candidates (or, with no candidates, generates a
name by constrained beam search over the KB's name trie). Results go to `ent.kb_id_` and to
`span._.entlink_links`, a list of `(kb_id, probability)`, best first.
"""

import random
import shutil
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import srsly
from rapidfuzz import fuzz
import torch
from spacy import util
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..candidates import DEFAULT_FUZZY_EDIT_LENGTHS, AbbreviationCache, CandidateGenerator, check_source
from ..errors import ConfigError, EntlinkError
from ..extensions import install_extensions
from ..kb import KnowledgeBase
from ..kb.registry import KBSource, resolve_kb
from ..linking.calibration import Calibration, CalibrationData, cross_validate, fit_gate, gate_score
from ..linking.context import ContextModel, ContextSample, context_words, stop_word_test
from ..linking.dense import ANN_THRESHOLD, DenseIndex, SentenceEncoder
from ..linking.examples import Pair, gold_pairs, span_context
from ..linking.linker import Linker, LinkerSettings, Ranked, build_name_trie
from ..linking.name_trie import NameTrie
from ..linking.seq2seq import Seq2Seq
from ..matching.fuzzy import FuzzyMatcher
from ..models.hf import check_precision
from .torch_pipe import TorchPipe

RANKING_SETTINGS = ("beam_size", "top_k", "max_candidates", "candidate_names", "fallback", "batch_size", "dense_k",
                    "trie_k")
DENSE_SOURCES = ("dense", "dense_fallback")
N_FEATURES = 10  # columns of GenreLinker.features
CONTEXT_FEATURE = 9  # the column of the context model's score
COSINE_FEATURE = 6  # the column of the dense cosine: mentions are embedded only for calibrations that weigh it
MAX_FEATURE_NAMES = 16  # names per candidate compared with the mention

DEFAULT_MODEL = """
[model]
@architectures = "spacy_entlink.GenreLinker.v2"
name = ""
decoder_layers = 2
max_context_tokens = 128
max_name_tokens = 32
"""

DEFAULT_CONFIG = {
    "model": Config().from_str(DEFAULT_MODEL)["model"],
    "candidates": ["span", "kb", "abbreviation", "fuzzy"],
    "dense_model": "",
    "dense_k": 8,
    "extra_dense_model": None,
    "dense_ann": {"threshold": ANN_THRESHOLD, "m": 32, "ef_construction": 80, "ef_search": 128},
    "trie_k": 5,
    "context_window": 48,
    "beam_size": 5,
    "top_k": 5,
    "max_candidates": 32,
    "candidate_names": "canonical",
    "fallback": "trie",
    "trie_aliases": True,
    "threshold": None,
    "nil_id": "NIL",
    "labels": [],
    "batch_size": 32,
    "learning_rate": 5e-5,
    "grad_clip": 1.0,
    "precision": "auto",
    "train_precision": "float32",
    "overwrite": True,
    "scorer": {"@scorers": "spacy.entity_linker_scorer.v1"},
}


def _dense_ann(given: Optional[Dict[str, Any]], name: str) -> Dict[str, int]:
    """The `dense_ann` setting with its defaults filled in; a clear error for an unknown key or a
    value below 1."""
    out = dict(DEFAULT_CONFIG["dense_ann"])
    for key, value in (given or {}).items():
        if key not in out:
            raise ConfigError(f"{name}: dense_ann has no setting {key!r}; choose from {sorted(out)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: dense_ann.{key} must be a whole number of at least 1, got {value!r}")
        out[key] = value
    return out


def genre_linker_model(name: str = "", decoder_layers: int = 2, max_context_tokens: int = 128,
                       max_name_tokens: int = 32) -> Model:
    """`spacy_entlink.GenreLinker.v2`: the seq2seq model of `entlink_linker`.

    `name` is a Hugging Face seq2seq checkpoint (BART, T5, GENRE, an `EncoderDecoderModel`)
    or an encoder to warm-start an encoder-decoder from (`decoder_layers` of it in the
    decoder); empty means the embedded all-MiniLM-L6-v2. Weights are loaded when the
    component is initialised or read from disk, not when the config is resolved; the torch
    modules then become the model's shims (see `spacy_entlink.pipeline.torch_pipe`).
    """
    if max_context_tokens < 8 or max_name_tokens < 2:
        raise ConfigError("max_context_tokens must be >= 8 and max_name_tokens >= 2")
    return Model(
        "entlink_genre",
        _no_forward,
        attrs={"name": name or "", "decoder_layers": int(decoder_layers),
               "max_context_tokens": int(max_context_tokens), "max_name_tokens": int(max_name_tokens)},
    )


def genre_linker_model_v1(name: str = "", decoder_layers: int = 2, max_context_tokens: int = 128,
                          max_name_tokens: int = 32, precision: str = "auto") -> Model:
    """`spacy_entlink.GenreLinker.v1` (configs written before v2): as v2; `precision` belongs
    to the component now (`[components.entlink_linker] precision`), a value other than "auto"
    here is still applied when the component's is "auto"."""
    check_precision(precision, "spacy_entlink.GenreLinker.v1")
    model = genre_linker_model(name, decoder_layers, max_context_tokens, max_name_tokens)
    if precision != "auto":
        model.attrs["legacy_precision"] = precision
    return model


def _features_key(rows: Sequence[int], mention: Optional[str], expanded: Optional[str],
                  vector: Optional[np.ndarray], similarity: bool, span: Optional[Span] = None) -> tuple:
    """What `GenreLinker.features` depends on, as a dictionary key."""
    where = None if span is None else (id(span.doc), span.start, span.end)
    return (tuple(rows), mention, expanded, None if vector is None else vector.tobytes(), similarity, where)


def _without_context(features: np.ndarray) -> np.ndarray:
    """`features` with the context model's column at 0."""
    out = np.array(features, dtype=np.float64, copy=True)
    out[:, CONTEXT_FEATURE] = 0.0
    return out


def _no_forward(model: Model, X: Any, is_train: bool):
    raise EntlinkError("the entlink_linker model runs through the component (nlp.pipe), not as a thinc layer")


@Language.factory(
    "entlink_linker",
    assigns=["token.ent_kb_id", "span._.entlink_links"],
    requires=["doc.ents"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"nel_micro_f": 1.0, "nel_micro_r": None, "nel_micro_p": None},
)
def make_linker(nlp: Language, name: str, model: Model, candidates: List[str], dense_model: str, dense_k: int,
                extra_dense_model: Optional[str], dense_ann: Dict[str, int], trie_k: int, context_window: int,
                beam_size: int, top_k: int, max_candidates: int, candidate_names: str, fallback: str,
                trie_aliases: bool, threshold: Optional[float], nil_id: str, labels: List[str],
                batch_size: int, learning_rate: float, grad_clip: float, precision: str, train_precision: str,
                overwrite: bool, scorer: Optional[Callable]) -> "GenreLinker":
    """Create an `entlink_linker`.

    candidates: candidate sources, run in order (see `spacy_entlink.candidates`): "span",
        "kb", "abbreviation", "fuzzy", "dense" (the `dense_k` entities nearest in the dense
        index of `dense_model`: a retriever trained by `train-retriever`, a Hugging Face
        encoder, or empty for the embedded MiniLM), "dense_fallback" (the same, only without
        candidates so far), "dense_extra" (the `dense_k` entities nearest in a second index, of
        `extra_dense_model`: candidates only, e.g. from the general encoder a retriever was
        trained from), "trie" (the entities of the `trie_k` best names of beam search over the
        whole name trie), or any registered source. Empty list: always search the whole name
        trie.
    extra_dense_model: the encoder of "dense_extra" (as `dense_model`; null: none).
    dense_ann: the dense index's approximate search: from `threshold` names on, a faiss HNSW
        graph with `m` links per node built with `ef_construction`, searched with `ef_search`
        (a search-time setting: raise it for recall, docs/benchmarks.md (l)).
    fallback: "trie" (search all KB names when a mention has no candidate) or "nil".
    candidate_names: score each candidate's "canonical" name only, or "all" its names.
    threshold: below this calibrated probability the mention is linked to `nil_id`.
    labels: link only entities with these labels (empty: all).
    learning_rate, grad_clip: the optimizer of `train-linker` and of updates without one;
        `spacy train` uses `[training.optimizer]`.
    precision: inference precision, "float32", "bfloat16" (autocast) or "auto" (bfloat16 where
        the hardware computes it natively).
    train_precision: the same choices for the forward passes of `update` (`spacy train`); the
        weights, gradients and optimizer state stay float32.
    """
    return GenreLinker(nlp.vocab, model, name, candidates=candidates, dense_model=dense_model, dense_k=dense_k,
                       extra_dense_model=extra_dense_model, dense_ann=dense_ann, trie_k=trie_k,
                       context_window=context_window,
                       beam_size=beam_size, top_k=top_k, max_candidates=max_candidates,
                       candidate_names=candidate_names, fallback=fallback, trie_aliases=trie_aliases,
                       threshold=threshold, nil_id=nil_id, labels=labels, batch_size=batch_size,
                       learning_rate=learning_rate, grad_clip=grad_clip, precision=precision,
                       train_precision=train_precision, overwrite=overwrite, scorer=scorer)


class GenreLinker(TorchPipe):
    """Links `doc.ents` to KB ids with a seq2seq model constrained to KB names."""

    def __init__(self, vocab: Vocab, model: Model, name: str = "entlink_linker", *, scorer: Optional[Callable] = None,
                 **cfg: Any):
        install_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = dict(cfg)
        for src in self.cfg.get("candidates", []):
            check_source(src)
        legacy = model.attrs.pop("legacy_precision", None)
        if legacy is not None:
            warnings.warn(f"{name}: precision in spacy_entlink.GenreLinker.v1 is deprecated; set it on the component "
                          f"([components.{name}] precision)", DeprecationWarning, stacklevel=2)
            if self.cfg.get("precision", "auto") == "auto":
                self.cfg["precision"] = legacy
        check_precision(self.cfg.get("precision", "auto"), name)
        check_precision(self.cfg.get("train_precision", "float32"), name, "train_precision")
        th = self.cfg.get("threshold")
        if th is not None and not 0.0 <= float(th) <= 1.0:
            raise ConfigError(f"{name}: threshold must be between 0 and 1 (or null), got {th!r}")
        self.cfg["dense_ann"] = _dense_ann(self.cfg.get("dense_ann"), name)
        self.settings = self._settings()
        self.kb: Optional[KnowledgeBase] = None
        self.seq2seq: Optional[Seq2Seq] = None
        self.trie: Optional[NameTrie] = None
        self.linker: Optional[Linker] = None
        self.dense: Optional[DenseIndex] = None
        self.dense_extra: Optional[DenseIndex] = None  # the "dense_extra" source's index
        self.calibration = Calibration()
        self.entity_counts: Dict[str, int] = {}
        self.mention_counts: Dict[str, Dict[str, int]] = {}  # normalised mention -> {kb id: count}
        self.context_model: Optional[ContextModel] = None
        self._is_stop = stop_word_test(vocab)
        self._names_cache: Dict[int, List[str]] = {}
        self._abbreviations = AbbreviationCache()
        self._fuzzy: Optional[FuzzyMatcher] = None
        self._query_vectors: Dict[str, np.ndarray] = {}  # the last candidate search's mention embeddings
        self._gate_features: Dict[tuple, np.ndarray] = {}  # this batch's features of mentions the cascade decided
        self.calibration_cv: Optional[Dict[str, float]] = None
        self.calibration_out_of_kb: List[str] = []  # ids the last calibrate(out_of_kb=) took out of the KB

    # --- set-up -------------------------------------------------------------------------
    def _settings(self) -> LinkerSettings:
        cfg = self.cfg
        return LinkerSettings(
            beam_size=cfg.get("beam_size", 5), top_k=cfg.get("top_k", 5), max_candidates=cfg.get("max_candidates", 32),
            candidate_names=cfg.get("candidate_names", "canonical"), fallback=cfg.get("fallback", "trie"),
            batch_size=cfg.get("batch_size", 32),
        )

    def configure(self, **settings: Any) -> "GenreLinker":
        """Change ranking settings (beam_size, top_k, max_candidates, candidate_names, fallback,
        batch_size); they are saved with the component."""
        unknown = sorted(set(settings) - set(RANKING_SETTINGS))
        if unknown:
            raise ConfigError(f"{self.name}: no such setting {unknown[0]!r}; choose from {list(RANKING_SETTINGS)}")
        old = dict(self.cfg)
        self.cfg.update(settings)
        try:
            self._set_settings()
        except ConfigError:
            self.cfg = old
            raise
        return self

    def _set_settings(self) -> None:
        self.settings = self._settings()
        if self.linker is not None:
            self.linker.settings = self.settings

    def _load_seq2seq(self) -> Seq2Seq:
        if self.seq2seq is None:
            a = self.model.attrs
            self.seq2seq = Seq2Seq.load(a["name"], decoder_layers=a["decoder_layers"],
                                        max_context_tokens=a["max_context_tokens"],
                                        max_name_tokens=a["max_name_tokens"], precision=self.precision)
            self._place()
        return self.seq2seq

    def set_seq2seq(self, seq2seq: Seq2Seq) -> "GenreLinker":
        """Use an already loaded (e.g. tiny, test) seq2seq model; the name trie is rebuilt."""
        self.seq2seq = seq2seq
        seq2seq.precision = self.precision
        self._forget_optimizer()
        self._place()
        if self.kb is not None:
            self.set_kb(self.kb)
        return self

    def set_kb(self, kb: KBSource, *, progress: bool = False) -> "GenreLinker":
        """Use `kb` and build its name trie with the model's tokenizer."""
        kb = resolve_kb(kb, self.name)
        seq2seq = self._load_seq2seq()
        folder = Path(tempfile.mkdtemp(prefix="entlink_trie_"))
        weakref.finalize(self, shutil.rmtree, folder, True)
        trie = build_name_trie(seq2seq, kb, folder / "trie", aliases=self.cfg.get("trie_aliases", True),
                               progress=progress)
        self._use(kb, trie)
        if self._wants_dense() or self.dense is not None:
            self.build_dense(progress=progress)
        if self._wants_dense_extra() or self.dense_extra is not None:
            self.build_dense(progress=progress, extra=True)
        return self

    def _wants_dense(self) -> bool:
        return any(s in DENSE_SOURCES for s in self.cfg.get("candidates", []))

    def _wants_dense_extra(self) -> bool:
        return "dense_extra" in self.cfg.get("candidates", [])

    def set_candidates(self, sources: Sequence[str], *, progress: bool = False) -> "GenreLinker":
        """Use these candidate sources (building the dense name indexes that "dense" and
        "dense_extra" need)."""
        for src in sources:
            check_source(src)
        self.cfg["candidates"] = list(sources)
        if self._wants_dense() and self.dense is None:
            self.build_dense(progress=progress)
        if self._wants_dense_extra() and self.dense_extra is None:
            self.build_dense(progress=progress, extra=True)
        return self

    def build_dense(self, *, progress: bool = False, model: Optional[str] = None, extra: bool = False) -> DenseIndex:
        """Embed the KB's names for the "dense" candidate source and the cosine feature (with
        `extra`: for the "dense_extra" source), with `model` (saved as the `dense_model`, or
        `extra_dense_model`, setting) or the configured one."""
        if self.kb is None:
            raise ConfigError(f"{self.name}: set a KB before building the dense name index")
        key = "extra_dense_model" if extra else "dense_model"
        if model is not None or self.cfg.get(key) is None:
            self.cfg[key] = model or ""
        folder = Path(tempfile.mkdtemp(prefix="entlink_dense_"))
        weakref.finalize(self, shutil.rmtree, folder, True)
        old = self.dense_extra if extra else self.dense
        if model is None and old is not None:
            encoder = old.encoder  # the same encoder (e.g. a trained retriever saved with the pipeline)
        else:
            encoder = SentenceEncoder(self.cfg.get(key) or None)
        encoder.precision = self.precision
        ann = self.cfg["dense_ann"]
        index = DenseIndex.build(self.kb, folder, encoder, progress=progress, ann_threshold=ann["threshold"],
                                 hnsw={k: ann[k] for k in ("m", "ef_construction", "ef_search")})
        if extra:
            self.dense_extra = index
        else:
            self.dense = index
            self._query_vectors = {}
        self._place()
        return index

    def _use(self, kb: KnowledgeBase, trie: NameTrie) -> None:
        self.kb, self.trie = kb, trie
        self._names_cache = {}
        self.linker = Linker(self._load_seq2seq(), kb, trie, self.settings)

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None, kb: Optional[KBSource] = None) -> None:
        """Load the model (see the architecture's `name`), the KB and build the name trie."""
        if kb is not None:
            self.set_kb(kb, progress=True)
        if self.kb is None:
            raise ConfigError(
                f"{self.name}: no knowledge base. Pass one in [initialize.components.{self.name}.kb] "
                "(e.g. @misc = \"spacy_entlink.KBFromDisk.v1\"), or call set_kb()."
            )

    def _require(self) -> Linker:
        if self.linker is None:
            raise ConfigError(f"{self.name}: not initialised; call nlp.initialize() with a KB, or set_kb()")
        return self.linker

    # --- candidates ---------------------------------------------------------------------
    def candidate_rows(self, span: Span) -> Optional[List[int]]:
        """KB rows of the span's candidates (None: search the whole name trie)."""
        return self.candidate_rows_batch([span])[0]

    def candidate_rows_batch(self, spans: Sequence[Span]) -> List[Optional[List[int]]]:
        """`candidate_rows` of many spans (dense retrieval and trie search run once for all)."""
        sources = self.cfg.get("candidates", [])
        if not sources:
            return [None] * len(spans)
        linker = self._require()
        if self._fuzzy is None or self._fuzzy.kb is not self.kb:
            self._fuzzy = FuzzyMatcher(self.kb, edit_lengths=DEFAULT_FUZZY_EDIT_LENGTHS) if self.kb.has_fuzzy_index else None
        gen = CandidateGenerator(self.kb, sources, dense=self.dense, dense_extra=self.dense_extra,
                                 dense_k=int(self.cfg.get("dense_k", 8)), trie_k=int(self.cfg.get("trie_k", 5)), generate=self._trie_rows,
                                 abbreviations=self._abbreviations, fuzzy=self._fuzzy)
        found = gen(spans)
        self._query_vectors = gen.vectors
        return [linker.filter_type(rows, s.label_) for rows, s in zip(found, spans)]

    def _trie_rows(self, spans: Sequence[Span]) -> List[List[int]]:
        """KB rows of each span's best names by beam search over the whole name trie."""
        window = self.cfg.get("context_window", 48)
        ranked = self._require().rank([span_context(s, window) for s in spans], [None] * len(spans),
                                      [s.label_ for s in spans])
        return [[r for r, _ in rk] for rk in ranked]

    def _expanded_text(self, span: Span) -> str:
        """The span's long form if it is a short form defined in its document, else its text."""
        return self._abbreviations.expanded(span)

    def _mentions(self, docs: Sequence[Doc]) -> List[Tuple[int, Span]]:
        labels = set(self.cfg.get("labels") or [])
        return [(d, ent) for d, doc in enumerate(docs) for ent in doc.ents if not labels or ent.label_ in labels]

    # --- prediction ---------------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[List[Tuple[Span, Ranked, Optional[np.ndarray]]]]:
        """Per document, each mention with its ranked candidates and its embedding (None
        unless the calibration weighs name similarity in the dense index's space)."""
        docs = list(docs)
        self._require()
        mentions = self._mentions(docs)
        spans = [ent for _, ent in mentions]
        ranked = self.rank_spans(spans)
        vectors = self.mention_vectors(spans)
        out: List[List[Tuple[Span, Ranked, Optional[np.ndarray]]]] = [[] for _ in docs]
        for m, ((d, ent), r) in enumerate(zip(mentions, ranked)):
            out[d].append((ent, r, None if vectors is None else vectors[m]))
        return out

    def rank_spans(self, spans: Sequence[Span], candidates: Optional[Sequence[Optional[List[int]]]] = None, *,
                   gate: bool = True) -> List[Ranked]:
        """Ranked KB rows (model scores) of mention spans; `candidates` overrides the configured
        sources (None per mention: the whole name trie). With `gate` and a calibration that
        has one, mentions the features alone decide skip the model (all their scores 0)."""
        if not spans:
            return []
        linker = self._require()
        window = self.cfg.get("context_window", 48)
        if candidates is None:
            candidates = self.candidate_rows_batch(spans)
        self._gate_features = {}
        skip = self._decided(spans, candidates) if gate else None
        return linker.rank([span_context(s, window) for s in spans], candidates, [s.label_ for s in spans], skip,
                           skip_score=self.calibration.skip_score)

    def _decided(self, spans: Sequence[Span], candidates: Sequence[Optional[List[int]]]) -> Optional[Set[int]]:
        """Mentions with several candidates whose calibrated features alone reach the gate."""
        cal = self.calibration
        if cal.gate is None or not cal.prior_weights:
            return None
        multi = [m for m, c in enumerate(candidates) if c is not None and len(c) > 1]
        if not multi:
            return None
        vectors = self.mention_vectors([spans[m] for m in multi])
        similarity = len(cal.prior_weights) > 5
        out = set()
        for i, m in enumerate(multi):
            span = spans[m]
            rows = self.linker.scored_rows(candidates[m])
            expanded = self._expanded_text(span)
            vector = None if vectors is None else vectors[i]
            feats = self.features(rows, span.text, expanded=expanded, vector=vector, similarity=similarity, span=span)
            if cal.decided_without_model(feats):
                out.add(m)  # its links() reuse these features: its rows keep this order
                self._gate_features[_features_key(rows, span.text, expanded, vector, similarity, span)] = feats
        return out

    def mention_vectors(self, spans: Sequence[Span], *, force: bool = False) -> Optional[np.ndarray]:
        """Embeddings of the spans' (abbreviation-expanded) texts in the dense name index's
        space, for the name-similarity feature; None without a dense index, or when the
        calibration does not use that feature (unless `force`)."""
        if self.dense is None or not spans:
            return None
        if not force and len(self.calibration.prior_weights) <= COSINE_FEATURE:
            return None
        texts = [self._expanded_text(s) for s in spans]
        known = self._query_vectors  # embedded already by the dense source or the cascade, this batch
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            if len(known) > 100_000:
                known = self._query_vectors = {}
            known.update(zip(missing, self.dense.encoder.encode(missing)))
        return np.stack([known[t] for t in texts])

    def set_counts(self, examples: Iterable[Example]) -> Dict[str, int]:
        """Count the gold KB ids of `examples` (the training data), overall and per normalised
        mention text: the frequency priors p(entity) and p(entity | mention) that the
        calibration can weigh beside the model's scores."""
        counts: Dict[str, int] = {}
        by_mention: Dict[str, Dict[str, int]] = {}
        for eg in examples:
            for ent in eg.reference.ents:
                if ent.kb_id_ and self.kb is not None and ent.kb_id_ in self.kb:
                    counts[ent.kb_id_] = counts.get(ent.kb_id_, 0) + 1
                    ids = by_mention.setdefault(self.kb.normalize(ent.text), {})
                    ids[ent.kb_id_] = ids.get(ent.kb_id_, 0) + 1
        self.entity_counts = counts
        self.mention_counts = by_mention
        return counts

    def features(self, rows: Sequence[int], mention: Optional[str] = None, *, expanded: Optional[str] = None,
                 vector: Optional[np.ndarray] = None, similarity: bool = True, span: Optional[Span] = None) -> np.ndarray:
        """Features of a mention's candidates, one row each, weighed by the calibration:
        0 log(1 + training count), 1 log(1 + KB prior), 2 log(1 + training count of the
        candidate for this mention's normalised text), 3 the candidate is the frequency
        prior's choice (most training mentions, then highest KB prior; every candidate tied
        there; 0 for all when there are neither counts nor priors), 4 it is the one (or one
        of those tied) most often seen with this mention text, 5 the best rapidfuzz token-set similarity (0-1) between the mention
        (`expanded`: its long form, for a defined abbreviation) and the candidate's names,
        6 the best cosine similarity between the mention's `vector` and the candidate's names
        in the dense index (the retriever's score; 0 without either), 7 one of the
        candidate's names is the mention (or its long form) after normalisation, 8 the best
        rapidfuzz ratio (0-1) between the mention and the candidate's names, 9 the context
        model's score of the candidate for the words around `span` (0 without either).
        No column depends on the order of `rows`.
        Columns 0, 2, 3 and 4 need training counts (`set_counts`) and are 0 without them, so
        a KB-only linker is calibrated on the others. (A calibration fitted with fewer weights
        uses the leading columns; `similarity=False` leaves the string similarities at 0.)"""
        kb = self.kb
        seen = self.mention_counts.get(kb.normalize(mention), {}) if mention and self.mention_counts else {}
        ids = [kb.get_id(r) for r in rows]
        count = [self.entity_counts.get(i, 0) for i in ids]
        prior = [max(kb.get_prior(r), 0.0) for r in rows]
        by_mention = [seen.get(i, 0) for i in ids]
        feats = np.zeros((len(rows), N_FEATURES), dtype=np.float64)
        if not rows:
            return feats
        feats[:, 0] = np.log1p(count)
        feats[:, 1] = np.log1p(prior)
        feats[:, 2] = np.log1p(by_mention)
        if max(count) > 0 or max(prior) > 0:
            best = max(zip(count, prior))
            for k in range(len(rows)):
                feats[k, 3] = float((count[k], prior[k]) == best)
        if max(by_mention) > 0:
            feats[:, 4] = np.asarray(by_mention) == max(by_mention)
        text = expanded or mention
        if text and similarity:
            key = kb.normalize(text)
            # a candidate's normalised names are its alias keys, so one lookup per key suffices
            exact = {c.row for t in {kb.normalize(t) for t in (mention, expanded) if t}
                     for c in kb.candidates_for_key(t)}
            for k, r in enumerate(rows):
                names = self._normalized_names(r)
                feats[k, 5] = max((fuzz.token_set_ratio(key, n) for n in names), default=0) / 100
                feats[k, 7] = float(r in exact)
                feats[k, 8] = max((fuzz.ratio(key, n) for n in names), default=0) / 100
        if vector is not None and self.dense is not None:
            feats[:, COSINE_FEATURE] = self.dense.similarities(vector, rows)
        if self.context_model is not None and span is not None:
            feats[:, CONTEXT_FEATURE] = self.context_model.scores(self.context_model.span_context(span),
                                                                  self._extra_name_words(rows, span.text))
        return feats

    def _extra_name_words(self, rows: Sequence[int], mention: str) -> List[List[str]]:
        """Each row's canonical-name words that `mention` lacks (the context model's name side)."""
        return [ContextModel.extra_words(self.kb.get_name(r), mention, self._is_stop) for r in rows]

    def _normalized_names(self, row: int) -> List[str]:
        """The row's first `MAX_FEATURE_NAMES` names, normalised (cached)."""
        cache = self._names_cache
        names = cache.get(row)
        if names is None:
            kb = self.kb
            raw = [kb.get_name(row)] + kb.get_aliases(row)[: MAX_FEATURE_NAMES - 1]
            names = list(dict.fromkeys(kb.normalize(n) for n in raw if n))
            if len(cache) > 200_000:
                cache.clear()
            cache[row] = names
        return names

    def links(self, ranked: Ranked, mention: Optional[str] = None, *, expanded: Optional[str] = None,
              vector: Optional[np.ndarray] = None, span: Optional[Span] = None) -> Tuple[List[Tuple[str, float]], float]:
        """Top-k `(kb_id, probability)`, most probable first, and the NIL probability of one
        ranked mention (the calibration combines model scores and the `features`; `span`: the
        mention in its doc, for the context model)."""
        if not ranked:
            return [], 1.0
        k = self.settings.top_k
        rows = [r for r, _ in ranked]
        n_weights = len(self.calibration.prior_weights)
        feats = None
        if n_weights:
            similarity = n_weights > 5
            feats = self._gate_features.get(_features_key(rows, mention, expanded, vector, similarity, span)) \
                if self._gate_features else None
            if feats is None:
                feats = self.features(rows, mention, expanded=expanded, vector=vector, similarity=similarity, span=span)
        probs, p_nil = self.calibration.probabilities([s for _, s in ranked], feats)
        order = np.argsort(-probs, kind="stable")[:k]
        return [(self.kb.get_id(rows[i]), float(probs[i])) for i in order], p_nil

    def span_links(self, spans: Sequence[Span], ranked: Sequence[Ranked],
                   vectors: Optional[np.ndarray] = None) -> List[Tuple[List[Tuple[str, float]], float]]:
        """`links` of many spans (their texts, long forms and embeddings)."""
        if vectors is None:
            vectors = self.mention_vectors(spans)
        return [self.links(r, s.text, expanded=self._expanded_text(s), vector=None if vectors is None else vectors[m],
                           span=s)
                for m, (s, r) in enumerate(zip(spans, ranked))]

    def is_nil(self, top: Sequence[Tuple[str, float]], p_nil: float) -> bool:
        """Whether a mention whose `links` are `(top, p_nil)` gets `nil_id`: no candidate, the
        best probability below `threshold`, or NIL more probable than the best candidate."""
        threshold = self.cfg.get("threshold")
        return not top or (threshold is not None and top[0][1] < float(threshold)) or p_nil > top[0][1]

    def set_annotations(self, docs: Iterable[Doc],
                        predictions: List[List[Tuple[Span, Ranked, Optional[np.ndarray]]]]) -> None:
        nil = self.cfg.get("nil_id", "NIL")
        overwrite = self.cfg.get("overwrite", True)
        for doc, preds in zip(docs, predictions):
            if not preds:
                continue
            new_ids: Dict[Tuple[int, int], str] = {}
            for ent, ranked, vector in preds:
                top, p_nil = self.links(ranked, ent.text, expanded=self._expanded_text(ent), vector=vector, span=ent)
                ent._.entlink_links = top
                kb_id = nil if self.is_nil(top, p_nil) else top[0][0]
                if overwrite or not ent.kb_id_:
                    new_ids[(ent.start, ent.end)] = kb_id
            ents = []
            for ent in doc.ents:
                kb_id = new_ids.get((ent.start, ent.end))
                ents.append(ent if kb_id is None else Span(doc, ent.start, ent.end, label=ent.label, kb_id=kb_id))
            doc.ents = ents

    # --- training -----------------------------------------------------------------------
    def torch_modules(self) -> Dict[str, torch.nn.Module]:
        """The seq2seq model and, once loaded, the dense indexes' encoders."""
        out: Dict[str, torch.nn.Module] = {}
        if self.seq2seq is not None:
            out["seq2seq"] = self.seq2seq.model
        for key, index in (("dense", self.dense), ("dense_extra", self.dense_extra)):
            encoder = getattr(index, "_encoder", None)
            if encoder is not None:
                out[key] = encoder.model
        return out

    def _place(self) -> None:
        super()._place()
        for holder in (self.seq2seq, getattr(self.dense, "_encoder", None), self.dense,
                       getattr(self.dense_extra, "_encoder", None), self.dense_extra):
            if holder is not None:
                holder.precision = self.precision  # the component's setting is the only one

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """Accumulate gradients of the name cross-entropy for the gold entities of `examples`
        (reference ents with a `kb_id_` in the KB); the step is taken in `finish_update`."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        self._require()
        labels = self.cfg.get("labels") or None
        pairs, _ = gold_pairs(examples, self.kb, window=self.cfg.get("context_window", 48), labels=labels)
        loss = self.update_pairs(pairs)
        losses[self.name] += loss
        if sgd not in (None, False):
            self.finish_update(sgd)
        return losses

    def update_pairs(self, pairs: Sequence[Pair]) -> float:
        """Accumulate gradients for (context, KB row) pairs; returns the summed loss."""
        if not pairs:
            return 0.0
        linker = self._require()
        model = linker.seq2seq.model
        model.train()
        total = 0.0
        bs = self.settings.batch_size
        pairs = sorted(pairs, key=lambda p: len(p.context))
        try:
            for start in range(0, len(pairs), bs):
                part = pairs[start : start + bs]
                with self.training_precision(linker.seq2seq.device):
                    loss = linker.loss(part)
                if loss is None:
                    continue
                (loss * len(part) / len(pairs)).backward()
                total += float(loss.detach()) * len(part) / len(pairs)
        finally:
            model.eval()
        return total

    def add_label(self, label: str) -> int:
        raise NotImplementedError(f"{self.name} links to KB entities; it has no labels to add")

    # --- calibration --------------------------------------------------------------------
    def calibrate(self, examples: Iterable[Example], *, with_nil: bool = True, folds: int = 0,
                  gate: bool = True, out_of_kb: float = 0.0, seed: int = 0) -> Calibration:
        """Fit the score calibration on examples with gold `kb_id_`s (use dev, not train).

        The gold entities' spans are linked (with the configured candidates); a mention whose
        gold id is not among its ranked candidates counts as NIL. With `folds` >= 2 the
        accuracy@1 of calibrations fitted on the other folds' documents is measured too and
        kept in `calibration_cv` (an estimate of the fitted calibration on unseen documents).
        With `gate`, the cascade's gate is fitted on the same mentions (`fit_gate`, judged by
        the folds' calibrations when `folds` >= 2): the lowest at which answering from the
        features alone loses no accuracy there.
        With `out_of_kb` > 0 (a NIL option only), that share of the examples' distinct gold
        entities (drawn with `seed`; `calibration_out_of_kb` lists them) is taken out of the KB
        while the mentions are scored, so that NIL is fitted on mentions of entities the KB
        lacks, as it will meet them in text; the KB is restored afterwards."""
        if out_of_kb:
            if not with_nil:
                raise ConfigError(f"{self.name}: out_of_kb simulates entities the KB lacks to fit NIL on; "
                                  "it needs a NIL option (with_nil=True)")
            if not 0.0 < out_of_kb < 1.0:
                raise ConfigError(f"{self.name}: out_of_kb must be a share between 0 and 1, got {out_of_kb!r}")
        examples = list(examples)
        data = self._calibration_data_out_of_kb(examples, out_of_kb, seed) if out_of_kb else \
            self.calibration_data(examples)
        self.calibration = Calibration.fit(data.scores, data.gold, with_nil=with_nil, features=data.features)
        if folds >= 2:
            self.calibration_cv = cross_validate(data, folds, with_nil=with_nil, fitted=self.calibration)
            if self.context_model is not None:  # does the context model help on these mentions?
                plain = CalibrationData(data.scores, [_without_context(f) for f in data.features], data.gold, data.groups)
                self.calibration_cv["cross_validated_acc_without_context"] = \
                    cross_validate(plain, folds, with_nil=with_nil)["cross_validated_acc"]
        if gate:
            if self.calibration.nil_score is not None:
                self.calibration.gate_score = gate_score(data)
            self.calibration.gate = fit_gate(data, self.calibration, nil=with_nil, folds=folds)
        return self.calibration

    def _calibration_data_out_of_kb(self, examples: List[Example], share: float, seed: int) -> CalibrationData:
        """`calibration_data` with `share` of the examples' gold entities taken out of the KB
        (their mentions become NIL examples); the KB, name trie and dense indexes are restored."""
        self._require()
        kb = self.kb
        ids = sorted({kb.get_id(kb.row_of(s.kb_id_)) for _, s in self._gold_mentions(examples) if s.kb_id_ in kb})
        removed = random.Random(seed).sample(ids, round(share * len(ids)))
        self.calibration_out_of_kb = removed
        if not removed:
            return self.calibration_data(examples)
        trie, dense, dense_extra = self.trie, self.dense, self.dense_extra
        folder = Path(tempfile.mkdtemp(prefix="entlink_out_of_kb_"))
        try:
            self.set_kb(kb.without(removed, folder / "kb"))
            return self.calibration_data(examples)
        finally:
            built = [self.trie, self.dense, self.dense_extra]
            self._use(kb, trie)
            self.dense, self.dense_extra = dense, dense_extra
            self._query_vectors = {}
            for held in built:  # the reduced KB's name trie and indexes: not needed any more
                if held is not None and held not in (trie, dense, dense_extra):
                    shutil.rmtree(held.path, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)

    def _gold_mentions(self, examples: Iterable[Example]) -> List[Tuple[int, Span]]:
        """(document index, span) of the reference entities the linker learns and is calibrated
        on: its labels, with one KB id (no composite "a|b")."""
        labels = set(self.cfg.get("labels") or [])
        return [(d, ent) for d, eg in enumerate(examples) for ent in eg.reference.ents
                if (not labels or ent.label_ in labels) and ent.kb_id_ and "|" not in ent.kb_id_]

    def calibration_data(self, examples: Iterable[Example]) -> CalibrationData:
        """Model scores, features and the gold candidate of every gold mention of `examples`."""
        self._require()
        nil = self.cfg.get("nil_id", "NIL")
        mentions = self._gold_mentions(examples)
        docs = [d for d, _ in mentions]
        spans = [s for _, s in mentions]
        ranked = self.rank_spans(spans, gate=False)
        vectors = self.mention_vectors(spans, force=True)
        data = CalibrationData(groups=docs)
        for m, (s, r) in enumerate(zip(spans, ranked)):
            ids = [self.kb.get_id(row) for row, _ in r]
            data.scores.append([sc for _, sc in r])
            data.features.append(self.features([row for row, _ in r], s.text, expanded=self._expanded_text(s),
                                               vector=None if vectors is None else vectors[m], span=s))
            data.gold.append(ids.index(s.kb_id_) if s.kb_id_ in ids and s.kb_id_ != nil else None)
        return data

    def fit_context_model(self, examples: Iterable[Example], *, window: int = 30, buckets: int = 1 << 20,
                          epochs: int = 2, learn_rate: float = 0.001, progress: bool = False) -> ContextModel:
        """Learn the context model (calibration feature 9) from annotated training `examples`,
        then keep their frequency counts (`set_counts`); refit the calibration afterwards.

        The model learns beside the other calibration features, each half of the documents
        seeing the counts of the other half (as unseen text sees the training text's), so
        that it learns what the frequency priors do not already say."""
        from tqdm import tqdm

        self._require()
        examples = list(examples)
        mentions = self._gold_mentions(examples)
        self.context_model = None  # feature 9 stays 0 while the samples are collected
        samples: List[ContextSample] = []
        for part in (0, 1):
            self.set_counts(eg for d, eg in enumerate(examples) if d % 2 != part)
            spans = [span for d, span in mentions if d % 2 == part]
            for span, cands in zip(spans, self.candidate_rows_batch(spans)):
                rows = self.linker.scored_rows(cands) if cands else []
                ids = [self.kb.get_id(r) for r in rows]
                if len(rows) > 1 and span.kb_id_ in ids:
                    samples.append(ContextSample(
                        context_words(span, window), self._extra_name_words(rows, span.text),
                        self.features(rows, span.text, expanded=self._expanded_text(span)), ids.index(span.kb_id_)))
        self.set_counts(examples)
        bar = tqdm(total=epochs * len(samples), desc="context model", unit="mention", disable=not progress)
        try:
            self.context_model = ContextModel.fit(samples, buckets=buckets, window=window, epochs=epochs,
                                                  learn_rate=learn_rate, progress=bar.update)
        finally:
            bar.close()
        return self.context_model

    # --- serialization ------------------------------------------------------------------
    def _serializers(self) -> Dict[str, Callable]:
        serialize: Dict[str, Callable] = {"cfg": self._cfg_writer(calibration=self.calibration.to_dict())}
        if self.seq2seq is not None:
            serialize["model"] = lambda p: self.seq2seq.save(p)
        if self.kb is not None:
            serialize["kb"] = lambda p: self.kb.to_disk(p)
        if self.trie is not None:
            serialize["trie"] = lambda p: self.trie.to_disk(p)
        if self.dense is not None:
            serialize["dense"] = lambda p: self.dense.to_disk(p)
        if self.dense_extra is not None:
            serialize["dense_extra"] = lambda p: self.dense_extra.to_disk(p)
        if self.entity_counts:
            serialize["counts"] = lambda p: srsly.write_json(p, self.entity_counts)
        if self.mention_counts:
            serialize["mention_counts"] = lambda p: srsly.write_json(p, self.mention_counts)
        if self.context_model is not None:
            serialize["context"] = lambda p: self.context_model.to_disk(p)
        return serialize

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "GenreLinker":
        path = util.ensure_path(path)
        extras = self._read_cfg(path, extras=("calibration",))
        self.calibration = Calibration.from_dict(extras["calibration"])
        self._set_settings()
        a = self.model.attrs
        if (path / "model").exists() and "model" not in exclude:
            self.seq2seq = Seq2Seq.from_saved(path / "model", max_context_tokens=a["max_context_tokens"],
                                              max_name_tokens=a["max_name_tokens"], precision=self.precision)
            self._forget_optimizer()
        if (path / "kb").exists() and "kb" not in exclude:
            kb = KnowledgeBase.from_disk(path / "kb")
            if (path / "trie").exists() and "trie" not in exclude:
                self._use(kb, NameTrie(path / "trie"))
            else:
                self.set_kb(kb)
        elif self.kb is not None and self.seq2seq is not None:
            self.set_kb(self.kb)  # new weights, same KB: rebuild the trie for their tokenizer
        if (path / "counts").exists() and "counts" not in exclude:
            self.entity_counts = {str(k): int(v) for k, v in srsly.read_json(path / "counts").items()}
        if (path / "mention_counts").exists() and "mention_counts" not in exclude:
            self.mention_counts = {str(m): {str(k): int(v) for k, v in ids.items()}
                                   for m, ids in srsly.read_json(path / "mention_counts").items()}
        if "context" not in exclude:  # a pipeline saved without one has none
            self.context_model = ContextModel.from_disk(path / "context") if (path / "context").exists() else None
        if (path / "dense").exists() and "dense" not in exclude:
            self.dense = DenseIndex(path / "dense", precision=self.precision)
            self.dense.set_ef_search(self.cfg["dense_ann"]["ef_search"])  # the loading config's, not the build's
            self._query_vectors = {}
            if self._wants_dense():
                self.dense.encoder  # noqa: B018 - load it now, so that it is placed with the seq2seq model
        if (path / "dense_extra").exists() and "dense_extra" not in exclude:
            self.dense_extra = DenseIndex(path / "dense_extra", precision=self.precision)
            self.dense_extra.set_ef_search(self.cfg["dense_ann"]["ef_search"])
            if self._wants_dense_extra():
                self.dense_extra.encoder  # noqa: B018 - as the first index's
        self._place()
        return self
