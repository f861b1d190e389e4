"""`entlink_relations`: retriever-reader relation extraction (ReLiK-style).

Each document is cut into overlapping windows that fit the reader. For each window the
candidate relation types are every type (a label set no larger than the reader's markers) or
the retriever's top-k; the reader reads the window and the candidates in one pass and scores
every (head, tail, candidate) at once. Entities come from `doc.ents` (`entities = "doc"`) or
from the reader's own span classifier (`entities = "predict"`, which also writes `doc.ents`).
Results go to `doc._.entlink_relations` as `Relation(head Span, label, tail Span, score)`, or,
with `aggregate = "kb_id"`, as document-level relations between the spans' KB ids, as BC5CDR's
chemical-induced-disease relations are annotated: scored by the best mention pair, or by an
aggregator over all the pairs fitted on held-out documents (`fit_aggregator`).
"""

import copy
import random
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from spacy import util
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..errors import ConfigError, EntlinkError, check_choice
from ..extensions import Relation, install_extensions
from ..kb import KnowledgeBase
from ..kb.registry import KBSource, resolve_kb
from ..models.hf import check_precision
from ..relations.aggregate import (Aggregator, MentionStats, RelationCounts, collect_evidence, document_features,
                                   pooled_probability)
from ..relations.labels import RelationType, load_relation_types
from ..relations.reader import PAIR_LOSSES, ReaderInput, RelationReader, evaluating
from ..relations.retriever import Retriever
from ..relations.windows import Window, make_windows
from .torch_pipe import TorchPipe

ANCESTOR_DEPTH = 32  # levels of the KB hierarchy the aggregator's hierarchy features look up

DEFAULT_MODEL = """
[model]
@architectures = "spacy_entlink.RelationReader.v1"
name = ""
retriever = ""
max_candidates = 8
max_span_width = 10
hidden = 256
max_text_tokens = 256
"""

DEFAULT_CONFIG = {
    "model": Config().from_str(DEFAULT_MODEL)["model"],
    "relation_types": "conll04",
    "entities": "doc",
    "entity_labels": [],
    "aggregate": "mention",
    "threshold": 0.5,
    "type_constraints": True,
    "at_least_one": False,
    "window_overlap": 64,
    "batch_size": 8,
    "learning_rate": 5e-5,
    "head_lr_factor": 20.0,
    "grad_clip": 1.0,
    "precision": "auto",
    "train_precision": "float32",
    "scorer": {"@scorers": "spacy_entlink.relation_scorer.v1"},
}

ENTITY_MODES = ("doc", "predict")
THRESHOLD_GRID = tuple(round(float(t), 2) for t in np.arange(0.05, 0.96, 0.05))
CALIBRATION_KEYS = ("aggregator", "thresholds", "threshold", "at_least_one")  # what calibrate-relations fits
L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # aggregator penalties `cross_validate_l2` compares
AGGREGATES = ("mention", "kb_id")


CANDIDATE_TEXTS = ("name+description", "name")


def relation_reader_model(name: str = "", retriever: str = "", max_candidates: int = 8, max_span_width: int = 10,
                          hidden: int = 256, max_text_tokens: int = 256,
                          candidate_text: str = "name+description", typed_spans: bool = False,
                          admissible_candidates: bool = False, entity_marker: str = "",
                          pair_loss: str = "mention") -> Model:
    """`spacy_entlink.RelationReader.v1`: the reader (and retriever) of `entlink_relations`.

    `name`: the reader's Hugging Face encoder (empty: the embedded all-MiniLM-L6-v2);
    `retriever`: the retriever's encoder (empty: the embedded MiniLM), used only when there
    are more relation types than `max_candidates` (the reader's candidate markers);
    `candidate_text`: what the reader reads after each candidate's marker, "name+description"
    or "name" (a shorter input, so a faster reader; the retriever always embeds both);
    `typed_spans`: the relation heads also read each entity's label (the component's
    `entity_labels`, from the config or the training entities), as typed entity markers do;
    `admissible_candidates`: with entities from `doc.ents` (`entities = "doc"`) and type
    constraints, a window's candidates are only the relation types its entities' labels admit
    (CoNLL04: one type in half the sentences), so its input is shorter and the reader faster;
    the same rule holds in training. With `entities = "predict"` the labels are not known
    before the pass, and every type is read.
    `entity_marker`: a word (e.g. "*") written before and after every entity span of the text
    the encoder reads, so that its layers see where the entities are (entity markers); only
    with `entities = "doc"`, whose spans are known before the pass. Empty: no markers.
    `pair_loss`: "mention" trains every mention pair on its own target; "logsumexp" (with
    `aggregate = "kb_id"`) trains each pair of KB ids in a window as one bag whose logit is the
    log-sum-exp of its mention pairs' logits, so that mention pairs of a related id pair that do
    not state the relation are not pushed up (multi-instance learning, as in BRAN);
    "mention+logsumexp" sums both losses, so that single mention pairs stay scored on their own.
    Weights load when the component is initialised or read from disk.
    """
    if max_candidates < 1 or max_span_width < 1 or hidden < 8 or max_text_tokens < 16:
        raise ConfigError("spacy_entlink.RelationReader.v1: max_candidates and max_span_width must be >= 1, "
                          "hidden >= 8 and max_text_tokens >= 16")
    check_choice("candidate_text", candidate_text, CANDIDATE_TEXTS)
    check_choice("pair_loss", pair_loss, PAIR_LOSSES)
    return Model("entlink_relation_reader", _no_forward,
                 attrs={"name": name or "", "retriever": retriever or "", "max_candidates": int(max_candidates),
                        "max_span_width": int(max_span_width), "hidden": int(hidden),
                        "max_text_tokens": int(max_text_tokens), "candidate_text": candidate_text,
                        "typed_spans": bool(typed_spans), "admissible_candidates": bool(admissible_candidates),
                        "entity_marker": entity_marker or "", "pair_loss": pair_loss})


def _no_forward(model: Model, X: Any, is_train: bool):
    raise EntlinkError("the entlink_relations model runs through the component (nlp.pipe), not as a thinc layer")


@Language.factory(
    "entlink_relations",
    assigns=["doc._.entlink_relations"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"rel_micro_f": 1.0, "rel_micro_p": None, "rel_micro_r": None},
)
def make_relations(nlp: Language, name: str, model: Model, relation_types: Any, entities: str,
                   entity_labels: List[str], aggregate: str, threshold: float, type_constraints: bool,
                   at_least_one: bool, window_overlap: int, batch_size: int, learning_rate: float, head_lr_factor: float,
                   grad_clip: float, precision: str, train_precision: str,
                   scorer: Optional[Callable]) -> "RelationExtractor":
    """Create an `entlink_relations` component.

    relation_types: a built-in set ("conll04", "cid"), a JSONL file of
        `{"name", "description", "head_types", "tail_types"}` or a list of such objects.
    entities: "doc" (relate `doc.ents`, e.g. from an upstream NER) or "predict" (the reader
        finds and labels entity spans itself and writes `doc.ents`; `entity_labels` then lists
        the labels, or they are read from the training data at initialisation).
    aggregate: "mention" (relations between spans) or "kb_id" (between the spans' KB ids).
    threshold: default probability threshold (per-label thresholds come from `fit_thresholds`).
    type_constraints: drop pairs whose entity labels a type's head/tail types exclude.
    at_least_one: a document with a candidate pair keeps its most probable relation even below
        the threshold (for corpora whose every document states one, as the training data can
        show; `calibrate-relations` decides it on held-out documents).
    learning_rate, grad_clip: the optimizer of updates without one (`spacy train` uses
        `[training.optimizer]`).
    head_lr_factor: the new layers learn at this many times the optimizer's rate (the
        pretrained encoders at the rate itself), under either optimizer.
    precision: inference precision, "float32", "bfloat16" (autocast) or "auto" (bfloat16 where
        the hardware computes it natively, e.g. CPUs with AMX).
    train_precision: the same choices for the forward passes of `update` (`spacy train`); the
        weights, gradients and optimizer state stay float32.
    """
    return RelationExtractor(nlp.vocab, model, name, relation_types=relation_types, entities=entities,
                             entity_labels=entity_labels, aggregate=aggregate, threshold=threshold,
                             type_constraints=type_constraints, at_least_one=at_least_one,
                             window_overlap=window_overlap,
                             batch_size=batch_size, learning_rate=learning_rate, head_lr_factor=head_lr_factor,
                             grad_clip=grad_clip, precision=precision, train_precision=train_precision,
                             scorer=scorer)


Key = Tuple[int, int]  # doc token offsets of a span
Arg = Tuple[int, int, str, str]  # an entity argument: doc token start, end, label, kb_id


class RelationExtractor(TorchPipe):
    """Finds relations between entities with a retriever and a one-pass reader."""

    def __init__(self, vocab: Vocab, model: Model, name: str = "entlink_relations", *,
                 scorer: Optional[Callable] = None, **cfg: Any):
        install_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        check_choice("entities", cfg.get("entities", "doc"), ENTITY_MODES)
        check_choice("aggregate", cfg.get("aggregate", "mention"), AGGREGATES)
        if model.attrs.get("entity_marker") and cfg.get("entities", "doc") == "predict":
            raise ConfigError(f"{name}: model.entity_marker needs entities = \"doc\" (the reader's own spans are "
                              "found in the same pass, so no markers can be written around them)")
        if model.attrs.get("pair_loss", "mention") != "mention" and cfg.get("aggregate", "mention") != "kb_id":
            raise ConfigError(f"{name}: model.pair_loss = {model.attrs['pair_loss']!r} needs aggregate = \"kb_id\" "
                              "(its bags are the mention pairs of one pair of KB ids)")
        check_precision(cfg.get("precision", "auto"), name)
        check_precision(cfg.get("train_precision", "float32"), name, "train_precision")
        th = float(cfg.get("threshold", 0.5))
        if not 0.0 <= th <= 1.0:
            raise ConfigError(f"{name}: threshold must be between 0 and 1, got {th!r}")
        self.types: List[RelationType] = load_relation_types(cfg.get("relation_types"))
        cfg["relation_types"] = [t.to_dict() for t in self.types]
        self.cfg: Dict[str, Any] = dict(cfg)
        self.cfg.setdefault("thresholds", {})
        self.cfg.setdefault("aggregator", None)
        self.cfg.setdefault("relation_counts", None)
        self.reader: Optional[RelationReader] = None
        self.retriever: Optional[Retriever] = None
        self._rng = random.Random(0)
        self._keep_all_pairs = False  # while fitting the aggregator
        self._fit_on_given = False  # fit with the entities already on the examples' predicted docs
        self.kb: Optional[KnowledgeBase] = None
        self._broader: Dict[str, Set[str]] = {}
        self._counts: Tuple[Any, Optional[RelationCounts]] = (None, None)  # (cfg value, parsed)

    @property
    def aggregator(self) -> Optional[Aggregator]:
        """The fitted id-pair aggregator (`aggregate = "kb_id"`), or None: the best pair's score."""
        return Aggregator.from_dict(self.cfg.get("aggregator"), f"{self.name}: aggregator")

    @property
    def relation_counts(self) -> Optional[RelationCounts]:
        """Counts from annotated training documents for the aggregator (`set_relation_counts`),
        parsed once per value of `cfg["relation_counts"]`, not once per batch."""
        raw = self.cfg.get("relation_counts")
        if self._counts[0] is not raw:
            self._counts = (raw, RelationCounts.from_dict(raw, f"{self.name}: relation_counts"))
        return self._counts[1]

    def set_relation_counts(self, examples: Iterable[Example]) -> RelationCounts:
        """Count the KB-id relations and mentions of annotated training `examples` (the reader's
        training documents, not the held-out ones the aggregator is fitted on); saved in the cfg.
        Refit the aggregator afterwards."""
        counts = RelationCounts.from_docs(eg.reference for eg in examples)
        self.cfg["relation_counts"] = counts.to_dict()
        return counts

    def _aggregating(self) -> bool:
        """Whether every mention pair is kept for an id-pair aggregation (thresholds then apply
        to the aggregated score, not to single pairs)."""
        return self.cfg["aggregate"] == "kb_id" and (self._keep_all_pairs or bool(self.cfg.get("aggregator"))
                                                     or self._pooled())

    def _pooled(self) -> bool:
        """Whether an id pair's own score pools all its mention pairs (a reader trained on bags,
        `pair_loss` "logsumexp" or "mention+logsumexp")."""
        return self.model.attrs.get("pair_loss", "mention") != "mention"

    def _id_pair_score(self, probs: Sequence[float]) -> float:
        """An id pair's score without an aggregator: its best mention pair's probability, or, for
        a reader trained on bags (`_pooled`), the sigmoid of the log-sum-exp of its mention pairs'
        logits, as in training."""
        return pooled_probability(probs) if self._pooled() else max(probs)

    def _threshold(self, label: str) -> float:
        return float(self.cfg["thresholds"].get(label, self.cfg["threshold"]))

    # --- set-up -------------------------------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(t.name for t in self.types)

    @property
    def needs_retriever(self) -> bool:
        return len(self.types) > self.model.attrs["max_candidates"]

    def _load(self, entity_labels: Sequence[str]) -> None:
        a = self.model.attrs
        self.reader = RelationReader.from_pretrained(
            a["name"], entity_labels=list(entity_labels), max_candidates=a["max_candidates"],
            max_span_width=a["max_span_width"], hidden=a["hidden"], max_text_tokens=a["max_text_tokens"],
            typed_spans=a.get("typed_spans", False), entity_marker=a.get("entity_marker", ""),
            pair_loss=a.get("pair_loss", "mention")).eval()
        if self.needs_retriever:
            self.retriever = Retriever.from_pretrained(a["retriever"]).eval()
        self._forget_optimizer()
        self._place()
        if self.retriever is not None:
            self.retriever.build_index([t.text for t in self.types])

    def set_reader(self, reader: RelationReader, retriever: Optional[Retriever] = None) -> "RelationExtractor":
        """Use already built (e.g. tiny, test) models."""
        if self.needs_retriever and retriever is None:
            raise ConfigError(f"{self.name}: {len(self.types)} relation types but {reader.max_candidates} "
                              "candidate markers: a retriever is needed")
        self.reader, self.retriever = reader.eval(), retriever
        self._forget_optimizer()
        self._place()
        if retriever is not None:
            retriever.build_index([t.text for t in self.types])
        return self

    def set_kb(self, kb: Optional[KBSource]) -> "RelationExtractor":
        """The KB whose hierarchy the id-pair aggregator's hierarchy features read (saved with
        the component); None: no hierarchy features."""
        self.kb = None if kb is None else resolve_kb(kb, self.name)
        self._broader = {}
        return self

    def _ancestors(self) -> Optional[Callable[[str], Set[str]]]:
        """A KB id's broader ids in the KB's hierarchy (cached), or None without a hierarchy."""
        kb = self.kb
        if kb is None or not kb.has_hierarchy:
            return None
        cache = self._broader

        def broader(kb_id: str) -> Set[str]:
            out = cache.get(kb_id)
            if out is None:
                row = kb.row_of(kb_id)
                out = set() if row is None else {kb.get_id(r) for r in kb.ancestors(row, depth=ANCESTOR_DEPTH)}
                if len(cache) > 200_000:
                    cache.clear()
                cache[kb_id] = out
            return out

        return broader

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None, kb: Optional[KBSource] = None) -> None:
        """Check the training data's relation labels and load the models (entity labels for
        `entities = "predict"` and for a reader with `typed_spans` come from the config or the
        training data); `kb`: see `set_kb`."""
        if kb is not None:
            self.set_kb(kb)
        labels = list(self.cfg.get("entity_labels") or [])
        if get_examples is not None:
            seen: Set[str] = set()
            for eg in get_examples():
                self._check_labels(eg.reference)
                seen.update(e.label_ for e in eg.reference.ents)
            if self._needs_entity_labels():
                labels = labels or sorted(seen)
        if self._needs_entity_labels() and not labels:
            why = "entities = \"predict\"" if self.cfg["entities"] == "predict" else "a reader with typed_spans"
            raise ConfigError(f"{self.name}: {why} needs entity_labels (or training examples with "
                              "entities to read them from)")
        self.cfg["entity_labels"] = labels
        if self.reader is None or self.reader.entity_labels != labels:
            self._load(labels)

    def _needs_entity_labels(self) -> bool:
        return self.cfg["entities"] == "predict" or bool(self.model.attrs.get("typed_spans"))

    def _check_labels(self, doc: Doc) -> None:
        for rel in doc._.entlink_relations:
            if rel.label not in self.labels:
                doc_id = doc.user_data.get("entlink_doc_id", doc.text[:40])
                raise ConfigError(f"{self.name}: training document {doc_id!r} has relation label {rel.label!r}, "
                                  f"which is not among the relation types {list(self.labels)}; add it to "
                                  "relation_types (a JSONL file or a list of {\"name\", \"description\"})")

    def _require(self) -> RelationReader:
        if self.reader is None:
            raise ConfigError(f"{self.name}: not initialised; call nlp.initialize() or set_reader()")
        return self.reader

    # --- windows and inputs -------------------------------------------------------------
    def _windows(self, doc: Doc, pieces: Optional[List[int]] = None) -> List[Window]:
        """The reader's windows over `doc` (`pieces`: its wordpieces per token, if known)."""
        reader = self._require()
        if pieces is None:
            pieces = self._window_pieces(doc, reader.word_piece_ids([[t.text for t in doc]])[0])
        sents = [t.is_sent_start for t in doc] if doc.has_annotation("SENT_START") else None
        return make_windows(pieces, reader.max_text_tokens, int(self.cfg.get("window_overlap", 64)), sents)

    def _window_pieces(self, doc: Doc, ids: Sequence[Sequence[int]]) -> List[int]:
        """Wordpieces per token to cut `doc` into windows by, the entity markers counted."""
        pieces = [max(len(p), 1) for p in ids]
        mark = self._require().marker_pieces()
        if mark and self.cfg["entities"] == "doc":
            for i in {e.start for e in doc.ents} | {e.end - 1 for e in doc.ents}:
                pieces[i] += mark
        return pieces

    def _candidates(self, texts: Sequence[str], gold: Optional[Sequence[Set[int]]] = None,
                    admissible: Optional[Sequence[List[int]]] = None) -> List[List[int]]:
        """Candidate type indices per window: every type, or the retriever's top k (in
        training: the gold types plus retrieved negatives); only `admissible`'s, where given."""
        k = self.model.attrs["max_candidates"]
        if not self.needs_retriever:
            return [list(range(len(self.types))) for _ in texts] if admissible is None else [list(a) for a in admissible]
        assert self.retriever is not None
        if admissible is None:
            found = self.retriever.retrieve(texts, k)
        else:  # the best k of the admissible types
            ranked = self.retriever.retrieve(texts, len(self.types))
            found = [[c for c in r if c in a][:k] for r, a in zip(ranked, admissible)]
            if gold is not None:
                gold = [g & set(a) for g, a in zip(gold, admissible)]
        if gold is None:
            return found
        out = []
        for cands, g in zip(found, gold):  # the gold types plus the best retrieved negatives,
            negatives = [c for c in cands if c not in g]  # in random order (no position cue)
            chosen = sorted(g)[:k] + negatives[: max(0, k - len(g))]
            self._rng.shuffle(chosen)
            out.append(chosen)
        return out

    def _reader_text(self, type_index: int) -> str:
        """What the reader reads after a candidate's marker (the model's `candidate_text`)."""
        t = self.types[type_index]
        return t.words if self.model.attrs.get("candidate_text") == "name" else t.text

    def _inputs(self, docs: Sequence[Doc], *, gold: bool) -> Tuple[List[ReaderInput], List[Tuple[int, Window, List[Arg], List[int]]]]:
        """Reader inputs of every window of `docs` and, per input, (doc index, window,
        entity arguments as (start, end, label, kb_id) doc token offsets, candidate types)."""
        predict_entities = self.cfg["entities"] == "predict"
        index = {t.name: i for i, t in enumerate(self.types)}
        ent_index = {label: i + 1 for i, label in enumerate(self._require().entity_labels)}
        plans = []
        piece_ids = self._require().word_piece_ids([[t.text for t in doc] for doc in docs])
        for d, doc in enumerate(docs):
            rels = self._gold_relations(doc) if gold else {}
            for w in self._windows(doc, self._window_pieces(doc, piece_ids[d])):
                args = [(e.start, e.end, e.label_, e.kb_id_) for e in doc.ents if e.start >= w.start and e.end <= w.end]
                pairs = {}
                if gold:
                    for i, a in enumerate(args):
                        for j, b in enumerate(args):
                            if i != j:
                                labels = self._gold_labels(rels, a, b)
                                if labels:
                                    pairs[(i, j)] = labels
                text = doc[w.start : w.end].text if w.end > w.start else ""
                plans.append((d, w, args, text, pairs))
        gold_types = [{index[label] for labels in p[4].values() for label in labels} for p in plans]
        admissible = None
        if self._admissible_only():
            admissible = [self._admissible(p[2], range(len(self.types))) for p in plans]
        cands = self._candidates([p[3] for p in plans], gold_types if gold else None, admissible)
        inputs, meta = [], []
        for (d, w, args, _, pairs), cand in zip(plans, cands):
            doc = docs[d]
            x = ReaderInput([t.text for t in doc[w.start : w.end]], [(a[0] - w.start, a[1] - w.start) for a in args],
                            [self._reader_text(c) for c in cand], enumerate_spans=predict_entities,
                            span_labels=[ent_index.get(a[2], 0) for a in args], piece_ids=piece_ids[d][w.start : w.end],
                            span_groups=self._span_groups(args) if gold and self._pooled() else [])
            pos = {c: k for k, c in enumerate(cand)}
            for (i, j), labels in pairs.items():
                for label in labels:
                    if index[label] in pos:
                        x.gold_relations[(i, j, pos[index[label]])] = 1.0
            if gold and predict_entities:
                x.gold_entities = {(a[0] - w.start, a[1] - w.start): ent_index[a[2]] for a in args if a[2] in ent_index}
            inputs.append(x)
            meta.append((d, w, args, cand))
        return inputs, meta

    @staticmethod
    def _span_groups(args: Sequence["Arg"]) -> List[int]:
        """Per argument, its bag for the reader's `pair_loss`: one per KB id (an argument
        without an id is a bag of its own; the loss needs `aggregate = "kb_id"`)."""
        by_id: Dict[str, int] = {}
        return [by_id.setdefault(a[3], len(args) + len(by_id)) if a[3] else i for i, a in enumerate(args)]

    def _gold_relations(self, doc: Doc) -> Dict:
        """Gold relations keyed for lookup: (head key, label, tail key), keys being token
        offsets for span arguments and ids for KB-id arguments."""
        self._check_labels(doc)
        out = {}
        for rel in doc._.entlink_relations:
            out[(_arg_key(rel.head), rel.label, _arg_key(rel.tail))] = rel
        return out

    def _gold_labels(self, rels: Dict, a: "Arg", b: "Arg") -> List[str]:
        if self.cfg["aggregate"] == "kb_id":
            return [label for (h, label, t) in rels if h and h == a[3] and t == b[3]]
        return [label for (h, label, t) in rels if h == (a[0], a[1]) and t == (b[0], b[1])]

    # --- prediction ---------------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[Dict[str, Any]]:
        docs = list(docs)
        reader = self._require()
        inputs, meta = self._inputs(docs, gold=False)
        results: List[Dict[str, Any]] = [{"ents": {}, "rels": {}} for _ in docs]
        bs = int(self.cfg.get("batch_size", 8))
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i].words))
        decode = self.cfg["entities"] == "predict"
        if not decode:  # a window without two entities a relation type may join needs no forward pass
            order = [i for i in order if self._can_relate(meta[i][2], meta[i][3])]
        with evaluating(reader), self.inference_precision(reader.device):
            for start in range(0, len(order), bs):
                part = order[start : start + bs]
                for i, out in zip(part, reader.forward([inputs[i] for i in part], decode_entities=decode)):
                    if decode:
                        meta[i] = self._found_entities(meta[i], out.entities, results)
                    self._collect(meta[i], out.relation_logits, results)
        return results

    def _can_relate(self, args: Sequence[Arg], cand: Sequence[int]) -> bool:
        """Whether some candidate type may join two of `args` (type constraints applied)."""
        return bool(self._admissible(args, cand))

    def _admissible(self, args: Sequence[Arg], cand: Iterable[int]) -> List[int]:
        """The candidate types that may join two of `args` (all of them without type constraints)."""
        if len(args) < 2:
            return []
        if not self.cfg.get("type_constraints", True):
            return list(cand)
        labels = Counter(a[2] for a in args)
        return [c for c in cand if any(self.types[c].allows(h, t) and (h != t or labels[h] > 1)
                                       for h in labels for t in labels)]

    def _admissible_only(self) -> bool:
        """Whether windows read only the types their entity labels admit (`admissible_candidates`)."""
        return bool(self.model.attrs.get("admissible_candidates")) and self.cfg["entities"] == "doc"

    def _note_best(self, result: Dict[str, Any], spans: Sequence[Arg], cand: Sequence[int], probs: np.ndarray) -> None:
        """Keep in `result["best"]` the window's most probable allowed pair if it beats the one kept."""
        allowed = np.ones(probs.shape, dtype=bool)
        allowed[np.arange(len(spans)), np.arange(len(spans)), :] = False
        if self.cfg.get("type_constraints", True):
            names = sorted({a[2] for a in spans})
            of = np.array([names.index(a[2]) for a in spans])
            for k, c in enumerate(cand):
                table = np.array([[self.types[c].allows(h, t) for t in names] for h in names])
                allowed[:, :, k] &= table[of[:, None], of[None, :]]
        if not allowed.any():
            return
        i, j, k = np.unravel_index(int(np.argmax(np.where(allowed, probs, -1.0))), probs.shape)
        old = result.get("best")
        if old is None or old[1] < probs[i, j, k]:
            result["best"] = ((spans[i][:2], self.types[cand[k]].name, spans[j][:2]), float(probs[i, j, k]))

    def _found_entities(self, meta, entities, results) -> Tuple[int, Window, List[Arg], List[int]]:
        """Record a window's decoded entities (overlapping windows: the better score wins);
        they become the window's relation arguments."""
        d, w, _, cand = meta
        names = self._require().entity_labels
        args = []
        for score, (s, e), label in entities:
            key = (w.start + s, w.start + e)
            old = results[d]["ents"].get(key)
            if old is None or old[1] < score:
                results[d]["ents"][key] = (names[label], score)
            args.append((key[0], key[1], names[label], ""))
        return d, w, args, cand

    def _collect(self, meta, logits: torch.Tensor, results) -> None:
        d, w, spans, cand = meta
        if len(spans) < 2 or not cand:
            return
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        if self.cfg.get("at_least_one") and not self._aggregating():
            self._note_best(results[d], spans, cand, probs)
        every_pair = self._aggregating()
        floor = 0.0 if every_pair else min([float(self.cfg["threshold"])] + [float(v) for v in self.cfg["thresholds"].values()])
        for i, j, k in zip(*np.nonzero(probs >= floor)):
            if i == j:
                continue
            rtype = self.types[cand[k]]
            if not every_pair and probs[i, j, k] < self._threshold(rtype.name):
                continue
            head, tail = spans[i], spans[j]
            if self.cfg.get("type_constraints", True) and not rtype.allows(head[2], tail[2]):
                continue
            key = (head[:2], rtype.name, tail[:2])
            old = results[d]["rels"].get(key)
            if old is None or old < probs[i, j, k]:
                results[d]["rels"][key] = float(probs[i, j, k])

    def set_annotations(self, docs: Iterable[Doc], results: List[Dict[str, Any]]) -> None:
        aggregator = self.aggregator if self.cfg["aggregate"] == "kb_id" else None
        ancestors = self._ancestors() if aggregator is not None else None
        counts = self.relation_counts if aggregator is not None else None
        for doc, res in zip(docs, results):
            if self.cfg["entities"] == "predict":  # windows overlap: the more probable entity wins
                taken: Set[int] = set()
                ents = []
                for (s, e), (label, _) in sorted(res["ents"].items(), key=lambda kv: -kv[1][1]):
                    if not taken.intersection(range(s, e)):
                        taken.update(range(s, e))
                        ents.append(Span(doc, s, e, label=label))
                doc.ents = sorted(ents)
            pairs = self._scored_pairs(doc, res)
            best = res.get("best")
            if best is not None and best[0] not in res["rels"]:  # below every threshold: a fallback
                pairs += self._scored_pairs(doc, {"rels": {best[0]: best[1]}})
            scored: Dict[Tuple, float] = {}
            if self.cfg["aggregate"] == "kb_id":
                evidence = collect_evidence(pairs)
                x = document_features(evidence, MentionStats(doc), ancestors, counts) if aggregator is not None else {}
                for key, ev in evidence.items():
                    scored[key] = self._id_pair_score(ev.probs) if aggregator is None else aggregator.probability(x[key])
            else:
                for head, label, tail, score in pairs:
                    scored[(head, label, tail)] = max(score, scored.get((head, label, tail), 0.0))
            rels = {key: score for key, score in scored.items() if score >= self._threshold(key[1])}
            if not rels and scored and self.cfg.get("at_least_one"):
                key = max(scored, key=scored.__getitem__)
                rels[key] = scored[key]
            doc._.entlink_relations = [Relation(h, label, t, s) for (h, label, t), s in
                                       sorted(rels.items(), key=lambda kv: -kv[1])]

    @staticmethod
    def _scored_pairs(doc: Doc, res: Dict[str, Any]) -> List[Tuple[Span, str, Span, float]]:
        """(head, label, tail, probability) of the mention pairs in `res` whose spans are in `doc.ents`."""
        spans = {(e.start, e.end): e for e in doc.ents}
        out = []
        for (h, label, t), score in res["rels"].items():
            head, tail = spans.get(h), spans.get(t)
            if head is not None and tail is not None:  # else an entity dropped when windows were merged
                out.append((head, label, tail, score))
        return out

    # --- training -----------------------------------------------------------------------
    def torch_modules(self) -> Dict[str, torch.nn.Module]:
        out: Dict[str, torch.nn.Module] = {}
        if self.reader is not None:
            out["reader"] = self.reader
        if self.retriever is not None:
            out["retriever"] = self.retriever
        return out

    def lr_scale(self, role: str, parameter: str) -> float:
        """The pretrained encoders learn at the optimizer's rate, the new layers `head_lr_factor` times faster."""
        if role == "retriever" or parameter.startswith("encoder."):
            return 1.0
        return float(self.cfg.get("head_lr_factor", 20.0))

    def _after_step(self) -> None:
        if self.retriever is not None:
            self.retriever.build_index([t.text for t in self.types])

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """Accumulate gradients of the reader (and retriever) loss on the gold entities and
        relations of `examples`; the step is taken in `finish_update`."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        reader = self._require()
        docs = [eg.reference for eg in examples]
        if not docs:
            return losses
        inputs, meta = self._inputs(docs, gold=True)
        if self._admissible_only():  # a window without an admissible type has nothing to learn
            keep = [i for i, x in enumerate(inputs) if x.candidates]
            inputs, meta = [inputs[i] for i in keep], [meta[i] for i in keep]
            if not inputs:
                return losses
        reader.train()
        try:
            bs = int(self.cfg.get("batch_size", 8))
            for start in range(0, len(inputs), bs):
                part = inputs[start : start + bs]
                with self.training_precision(reader.device):
                    loss = reader.loss(part) * len(part) / len(inputs)
                    if self.retriever is not None:
                        texts = [docs[m[0]][m[1].start : m[1].end].text for m in meta[start : start + bs]]
                        gold = [{m[3][c] for (_, _, c) in x.gold_relations}
                                for x, m in zip(part, meta[start : start + bs])]
                        r_loss = self.retriever.loss(texts, gold, [t.text for t in self.types])
                        if r_loss is not None:
                            loss = loss + r_loss * len(part) / len(inputs)
                if loss.requires_grad:  # a part whose windows have < 2 entities and no span targets adds nothing
                    loss.backward()
                losses[self.name] += float(loss.detach())
        finally:
            reader.eval()
        if sgd not in (None, False):
            self.finish_update(sgd)
        return losses

    def add_label(self, label: str) -> int:
        raise NotImplementedError(f"{self.name}: relation types come from relation_types in the config")

    def fit_thresholds(self, examples: Iterable[Example], grid: Sequence[float] = THRESHOLD_GRID,
                       every_pair: Optional[Tuple[List[Doc], List[Dict[str, Any]]]] = None) -> Dict[str, float]:
        """Per-label thresholds that maximise F1 on `examples` (dev), from one prediction pass
        (or `every_pair`, the result of an earlier one, `_every_pair`)."""
        examples = list(examples)
        fitted = self._best_thresholds(examples, self._all_scored(*(every_pair or self._every_pair(examples))), grid)
        self.cfg["thresholds"] = fitted
        return fitted

    def _all_scored(self, docs: Sequence[Doc], results: Sequence[Dict[str, Any]]) -> List[Doc]:
        """Copies of `docs` annotated with every scored relation of `results` (no threshold, no
        `at_least_one`), under the current aggregator."""
        saved = dict(self.cfg["thresholds"]), self.cfg["threshold"], self.cfg.get("at_least_one", False)
        self.cfg["thresholds"], self.cfg["threshold"], self.cfg["at_least_one"] = {}, 0.0, False
        try:
            out = [doc.copy() for doc in docs]
            self.set_annotations(out, results)
        finally:
            self.cfg["thresholds"], self.cfg["threshold"], self.cfg["at_least_one"] = saved
        return out

    def _best_thresholds(self, examples: Sequence[Example], docs: Sequence[Doc], grid: Sequence[float]) -> Dict[str, float]:
        """Per label, the threshold of `grid` that maximises F1 of the scored relations of `docs`
        (annotated without a threshold, `_all_scored`) against `examples`."""
        from ..scoring import relation_keys

        fitted = {}
        for label in self.labels:
            best = (-1.0, float(self.cfg["threshold"]))
            for th in grid:
                tp = fp = fn = 0
                for eg, doc in zip(examples, docs):
                    gold = relation_keys(eg.reference, {label})
                    pred = {key for key, rel in _keys_with_scores(doc, label) if rel >= th}
                    tp += len(gold & pred)
                    fp += len(pred - gold)
                    fn += len(gold - pred)
                f = 2 * tp / max(1, 2 * tp + fp + fn)
                if f > best[0]:
                    best = (f, round(float(th), 4))
            fitted[label] = best[1]
        return fitted

    def _fitting_docs(self, examples: Sequence[Example]) -> List[Doc]:
        """The docs to predict on when fitting: the gold entities (with their ids) on the text,
        or the bare text when the reader finds the entities itself, or (`_fit_on_given`) the
        entities that earlier components put on the examples' predicted docs."""
        if self.cfg["entities"] == "predict" or self._fit_on_given:
            return [eg.predicted.copy() for eg in examples]
        return [_with_ents(eg) for eg in examples]

    def _every_pair(self, examples: Sequence[Example]) -> Tuple[List[Doc], List[Dict[str, Any]]]:
        """The fitting docs and one prediction pass over them that keeps every scored pair (it
        does not depend on the thresholds or the aggregator, so the fitting methods can share it)."""
        docs = self._fitting_docs(examples)
        saved = dict(self.cfg["thresholds"]), self.cfg["threshold"]
        self.cfg["thresholds"], self.cfg["threshold"] = {}, 0.0
        self._keep_all_pairs = self.cfg["aggregate"] == "kb_id"
        try:
            results = self.predict(docs)
        finally:
            self._keep_all_pairs = False
            self.cfg["thresholds"], self.cfg["threshold"] = saved
        return docs, results

    def _aggregator_rows(self, examples: Sequence[Example], docs: Sequence[Doc],
                         results: Sequence[Dict[str, Any]]) -> List[Tuple[List[List[float]], List[int]]]:
        """Per document, the aggregator features of its id pairs and whether each is related."""
        from ..scoring import relation_keys

        out = []
        ancestors, counts = self._ancestors(), self.relation_counts
        for eg, doc, res in zip(examples, docs, results):
            gold = relation_keys(eg.reference)
            evidence = collect_evidence(self._scored_pairs(doc, res))
            X, y = [], []
            for (h, label, t), x in document_features(evidence, MentionStats(doc), ancestors, counts).items():
                X.append(x)
                y.append(int(((h,), label, (t,)) in gold))
            out.append((X, y))
        return out

    def copy_calibration(self, other: "RelationExtractor") -> None:
        """Take `other`'s fitted aggregator, thresholds and at-least-one rule, and its KB (for
        the hierarchy features): e.g. those fitted on held-out documents for a reader of the same
        config, before this one was trained on all the documents. The relation counts stay this
        component's (`set_relation_counts` with its own training documents); without any, it
        takes `other`'s."""
        if other.labels != self.labels:
            raise ConfigError(f"{self.name}: relation types {list(self.labels)} differ from the calibrated "
                              f"component's {list(other.labels)}")
        if other.cfg["aggregate"] != self.cfg["aggregate"]:
            raise ConfigError(f"{self.name}: aggregate = {self.cfg['aggregate']!r}, the calibrated component's "
                              f"is {other.cfg['aggregate']!r}")
        for key in CALIBRATION_KEYS + (() if self.cfg.get("relation_counts") else ("relation_counts",)):
            self.cfg[key] = copy.deepcopy(other.cfg.get(key))
        if other.kb is not None:
            self.set_kb(other.kb)

    def fit_aggregator(self, examples: Iterable[Example], l2: float = 1.0,
                       every_pair: Optional[Tuple[List[Doc], List[Dict[str, Any]]]] = None) -> Aggregator:
        """Fit the id-pair aggregator on held-out annotated `examples` (their entities carry KB
        ids; document-level relations between ids) and use it; thresholds then apply to its
        probability (refit them with `fit_thresholds`). `every_pair`: as in `fit_thresholds`."""
        if self.cfg["aggregate"] != "kb_id":
            raise ConfigError(f"{self.name}: fit_aggregator needs aggregate = \"kb_id\" (relations between KB ids)")
        examples = list(examples)
        rows = self._aggregator_rows(examples, *(every_pair or self._every_pair(examples)))
        aggregator = Aggregator.fit([x for X, _ in rows for x in X], [v for _, y in rows for v in y], l2=l2)
        self.cfg["aggregator"] = aggregator.to_dict()
        return aggregator

    def cross_validate_at_least_one(self, examples: Iterable[Example], *, folds: int = 5, seed: int = 0,
                                    refit_aggregator: bool = True, refit_thresholds: bool = True,
                                    l2: float = 1.0, every_pair: Optional[Tuple[List[Doc], List[Dict[str, Any]]]] = None) -> Tuple[float, float]:
        """Out-of-fold relation F1 on `examples` (held-out annotated documents, in `folds` groups
        of documents) without and with `at_least_one`: per fold, the per-label thresholds (with
        `refit_thresholds`) and the aggregator (with `refit_aggregator` and a fitted aggregator)
        are fitted on the other folds. One prediction pass (or `every_pair`, the result of an
        earlier one); the component's cfg is left as it was."""
        from ..scoring import relation_keys

        examples = list(examples)
        k = min(folds, len(examples))
        if k < 2:
            raise ConfigError(f"{self.name}: cross-validating at_least_one needs at least 2 documents, got {len(examples)}")
        docs, results = every_pair or self._every_pair(examples)
        refit = refit_aggregator and self.cfg["aggregate"] == "kb_id" and bool(self.cfg.get("aggregator"))
        rows = self._aggregator_rows(examples, docs, results) if refit else None
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        fold_of = {i: j % k for j, i in enumerate(order)}
        keys = CALIBRATION_KEYS
        saved = {key: self.cfg.get(key) for key in keys}
        counts = {False: [0, 0, 0], True: [0, 0, 0]}  # tp, fp, fn

        def annotated(i: int) -> Doc:
            doc = docs[i].copy()
            self.set_annotations([doc], [results[i]])
            return doc

        try:
            for f in range(k):
                train = [i for i in order if fold_of[i] != f]
                if refit:
                    self.cfg["aggregator"] = Aggregator.fit([x for i in train for x in rows[i][0]],
                                                            [v for i in train for v in rows[i][1]], l2=l2).to_dict()
                if refit_thresholds:
                    scored = self._all_scored([docs[i] for i in train], [results[i] for i in train])
                    self.cfg["thresholds"] = self._best_thresholds([examples[i] for i in train], scored, THRESHOLD_GRID)
                for rule in (False, True):
                    self.cfg["at_least_one"] = rule
                    for i in order:
                        if fold_of[i] == f:
                            gold, pred = relation_keys(examples[i].reference), relation_keys(annotated(i))
                            c = counts[rule]
                            c[0] += len(gold & pred)
                            c[1] += len(pred - gold)
                            c[2] += len(gold - pred)
        finally:
            self.cfg.update(saved)
        f1 = {rule: 2 * tp / max(1, 2 * tp + fp + fn) for rule, (tp, fp, fn) in counts.items()}
        return f1[False], f1[True]

    def cross_validate_l2(self, examples: Iterable[Example], grid: Sequence[float] = L2_GRID, *, folds: int = 5,
                          splits: int = 3, refit_thresholds: bool = True,
                          every_pair: Optional[Tuple[List[Doc], List[Dict[str, Any]]]] = None) -> Dict[float, Tuple[float, float]]:
        """Per aggregator L2 penalty in `grid`: out-of-fold relation F1 without and with
        `at_least_one` (as `cross_validate_at_least_one`), averaged over `splits` random splits
        into folds. One prediction pass for all of them (or `every_pair`); the cfg is left as it was."""
        if self.cfg["aggregate"] != "kb_id" or not self.cfg.get("aggregator"):
            raise ConfigError(f"{self.name}: cross_validate_l2 needs a fitted id-pair aggregator (fit_aggregator first)")
        if not grid or min(grid) < 0 or splits < 1:
            raise ConfigError(f"{self.name}: cross_validate_l2 needs a grid of penalties >= 0 and splits >= 1")
        examples = list(examples)
        every_pair = every_pair or self._every_pair(examples)
        out = {}
        for l2 in grid:
            runs = [self.cross_validate_at_least_one(examples, folds=folds, seed=seed, l2=l2, every_pair=every_pair,
                                                     refit_thresholds=refit_thresholds) for seed in range(splits)]
            out[float(l2)] = (float(np.mean([r[0] for r in runs])), float(np.mean([r[1] for r in runs])))
        return out

    # --- serialization --------------------------------------------------------------------
    def _serializers(self) -> Dict[str, Callable]:
        serialize: Dict[str, Callable] = {"cfg": self._cfg_writer()}
        if self.reader is not None:
            serialize["reader"] = self.reader.save
        if self.retriever is not None:
            serialize["retriever"] = self.retriever.save
        if self.kb is not None:
            serialize["kb"] = lambda p: self.kb.to_disk(p)
        return serialize

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "RelationExtractor":
        path = util.ensure_path(path)
        self._read_cfg(path)
        self.types = load_relation_types(self.cfg["relation_types"])
        Aggregator.from_dict(self.cfg.get("aggregator"), f"{path / 'cfg'}: aggregator")  # refuse a damaged one now
        raw = self.cfg.get("relation_counts")  # parsed (and a damaged one refused) now, kept for the batches
        self._counts = (raw, RelationCounts.from_dict(raw, f"{path / 'cfg'}: relation_counts"))
        if (path / "reader").exists() and "reader" not in exclude:
            self.reader = RelationReader.load(path / "reader")
        if (path / "retriever").exists() and "retriever" not in exclude:
            self.retriever = Retriever.load(path / "retriever")
        if (path / "kb").exists() and "kb" not in exclude:
            self.set_kb(KnowledgeBase.from_disk(path / "kb"))
        self._forget_optimizer()
        self._place()
        return self


def _arg_key(arg) -> Any:
    return (arg.start, arg.end) if isinstance(arg, Span) else str(arg)


def _with_ents(eg: Example) -> Doc:
    doc = eg.predicted.copy()
    doc.ents = [Span(doc, e.start, e.end, label=e.label_, kb_id=e.kb_id_) for e in eg.reference.ents]
    return doc


def _keys_with_scores(doc: Doc, label: str):
    for rel in doc._.entlink_relations:
        if rel.label != label:
            continue
        args = [(a.start_char, a.end_char, a.label_) if isinstance(a, Span) else (a,) for a in (rel.head, rel.tail)]
        yield (args[0], rel.label, args[1]), rel.score
