"""Document-level relations between KB ids from the reader's mention-pair evidence.

A relation between two KB ids (e.g. BC5CDR's chemical-induced disease between MeSH ids) is
supported by every scored pair of a head-id mention and a tail-id mention. The reader's
default takes the best pair's probability. `Aggregator` is a logistic model over features of
all the pairs and of the two ids' mentions in the document: how strong and how many the pairs
are, how often and how early each id is mentioned, and what share of its type's mentions it
has, and, with a KB hierarchy, whether the document relates the same head to a narrower tail
(BC5CDR annotates the most specific disease), and, with counts from annotated training
documents (`RelationCounts`), how often the id pair was related there and how often each id takes
part in a relation when it is mentioned, and how far the pair is below the document's strongest
pair. It is fitted on held-out annotated documents
(`RelationExtractor.fit_aggregator`); features that a document or KB lacks are zero, never an
error. An aggregator fitted with fewer features (an earlier version) gives the same scores: the
features added since get weight 0.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
from spacy.tokens import Doc, Span

from ..errors import ConfigError

FEATURES = (
    "max_logit",  # the best pair's log-odds (the reader's default score)
    "mean_logit",  # the pairs' mean log-odds
    "noisy_or_logit",  # log-odds that at least one pair holds, pairs taken as independent
    "share_above_half",  # share of the pairs above probability 0.5
    "log_pairs",  # log(1 + scored pairs)
    "log_head_mentions",
    "log_tail_mentions",
    "head_type_share",  # the head id's share of the mentions with its label
    "tail_type_share",
    "head_first",  # where the head id is first mentioned (0: first token, 1: last)
    "tail_first",
    "log_distance",  # log(1 + token distance of the closest scored pair)
    "log_head_ids",  # log(1 + distinct ids with the head's label in the document)
    "log_tail_ids",
    "gap_to_best_tail",  # max_logit minus the best max_logit of the head id's pairs (<= 0)
    "gap_to_best_head",  # max_logit minus the best max_logit of the tail id's pairs (<= 0)
    "narrower_tail",  # 1 when the head id has pairs with a tail id narrower than this one (KB hierarchy)
    "narrower_tail_gap",  # the best such pair's max_logit minus this one's (0 without one)
    "narrower_head",  # the same for heads narrower than this one, with this tail id
    "narrower_head_gap",
    "log_pair_related_in_training",  # log(1 + training documents that relate this id pair with this label)
    "head_related_rate",  # (relations of the head id + 0.1) / (training documents mentioning it + 1)
    "tail_related_rate",
    "gap_to_document_best",  # max_logit minus the best max_logit of any id pair with this label in the document (<= 0)
)
Ancestors = Callable[[str], Set[str]]  # a KB id's broader ids (empty: none known)
EPS = 1e-4


@dataclass
class Evidence:
    """The scored mention pairs of one (head id, label, tail id) in one document."""

    probs: List[float] = field(default_factory=list)
    distances: List[int] = field(default_factory=list)


def _logit(p: float) -> float:
    p = min(max(p, EPS), 1.0 - EPS)
    return float(np.log(p / (1.0 - p)))


def pooled_probability(probs: Sequence[float]) -> float:
    """P(relation) of an id pair as a reader trained on bags of its mention pairs scores it:
    the sigmoid of the log-sum-exp of the pairs' log-odds."""
    z = float(np.logaddexp.reduce([_logit(p) for p in probs]))
    return float(1.0 / (1.0 + np.exp(-z)))


def collect_evidence(pairs: Iterable[Tuple[Span, str, Span, float]]) -> Dict[Tuple[str, str, str], Evidence]:
    """Group scored mention pairs (head, label, tail, probability) by (head id, label, tail id),
    for linked heads and tails with distinct ids."""
    out: Dict[Tuple[str, str, str], Evidence] = {}
    for head, label, tail, prob in pairs:
        if not head.kb_id_ or not tail.kb_id_ or head.kb_id_ == tail.kb_id_:
            continue
        ev = out.setdefault((head.kb_id_, label, tail.kb_id_), Evidence())
        ev.probs.append(float(prob))
        ev.distances.append(max(0, max(head.start, tail.start) - min(head.end, tail.end)))
    return out


class MentionStats:
    """Per-document counts behind the mention features: mentions per id and per label, distinct
    ids per label, and each id's first token."""

    def __init__(self, doc: Doc):
        self.length = max(1, len(doc))
        self.by_id: Dict[str, int] = {}
        self.by_label: Dict[str, int] = {}
        self.label_of: Dict[str, str] = {}
        self.first: Dict[str, int] = {}
        for e in doc.ents:
            if not e.kb_id_:
                continue
            self.by_id[e.kb_id_] = self.by_id.get(e.kb_id_, 0) + 1
            self.by_label[e.label_] = self.by_label.get(e.label_, 0) + 1
            self.label_of.setdefault(e.kb_id_, e.label_)
            self.first[e.kb_id_] = min(self.first.get(e.kb_id_, e.start), e.start)
        self.ids_by_label: Dict[str, int] = {}
        for label in self.label_of.values():
            self.ids_by_label[label] = self.ids_by_label.get(label, 0) + 1

    def mention(self, kb_id: str) -> Tuple[float, float, float, float]:
        """log(1 + mentions), share of its label's mentions, relative first position, and
        log(1 + distinct ids with its label)."""
        n = self.by_id.get(kb_id, 0)
        label = self.label_of.get(kb_id, "")
        share = n / max(1, self.by_label.get(label, 0))
        first = self.first.get(kb_id, 0) / self.length
        return float(np.log1p(n)), float(share), float(first), float(np.log1p(self.ids_by_label.get(label, 0)))


@dataclass
class RelationCounts:
    """What annotated training documents say about KB ids: per document, which (head id, label,
    tail id) are related, which ids are mentioned, and which take part in a relation."""

    related: Dict[str, int] = field(default_factory=dict)  # "head\tlabel\ttail" -> documents
    documents: Dict[str, int] = field(default_factory=dict)  # id -> documents that mention it
    relations: Dict[str, int] = field(default_factory=dict)  # id -> relations it takes part in

    @classmethod
    def from_docs(cls, docs: Iterable[Doc]) -> "RelationCounts":
        out = cls()
        for doc in docs:
            for kb_id in {e.kb_id_ for e in doc.ents if e.kb_id_}:
                out.documents[kb_id] = out.documents.get(kb_id, 0) + 1
            for h, label, t in {(r.head, r.label, r.tail) for r in doc._.entlink_relations
                                if isinstance(r.head, str) and isinstance(r.tail, str)}:
                key = f"{h}\t{label}\t{t}"
                out.related[key] = out.related.get(key, 0) + 1
                for kb_id in (h, t):
                    out.relations[kb_id] = out.relations.get(kb_id, 0) + 1
        return out

    def features(self, head: str, label: str, tail: str) -> Tuple[float, float, float]:
        """log(1 + documents relating the pair), and each id's smoothed relation rate."""
        def rate(kb_id: str) -> float:
            return (self.relations.get(kb_id, 0) + 0.1) / (self.documents.get(kb_id, 0) + 1)

        return float(np.log1p(self.related.get(f"{head}\t{label}\t{tail}", 0))), rate(head), rate(tail)

    def to_dict(self) -> Dict:
        return {"related": self.related, "documents": self.documents, "relations": self.relations}

    @classmethod
    def from_dict(cls, d: Optional[Dict], where: str = "relation counts") -> Optional["RelationCounts"]:
        if not d:
            return None
        try:
            return cls(*({str(k): int(v) for k, v in d[part].items()} for part in ("related", "documents", "relations")))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"{where}: not relation counts ({err!r})") from None


def _narrower(best: Dict[Tuple[str, str, str], float], ancestors: Ancestors) -> Dict[Tuple[str, str, str], Tuple[float, float]]:
    """Per id pair: (1, gap) when the same head and label have a pair with a narrower tail,
    gap = that pair's best logit minus this pair's; likewise for narrower heads."""
    by_head: Dict[Tuple[str, str], List[str]] = {}
    by_tail: Dict[Tuple[str, str], List[str]] = {}
    for h, label, t in best:
        by_head.setdefault((h, label), []).append(t)
        by_tail.setdefault((t, label), []).append(h)
    out = {}
    for (h, label, t), z in best.items():
        tails = [best[(h, label, o)] for o in by_head[(h, label)] if o != t and t in ancestors(o)]
        heads = [best[(o, label, t)] for o in by_tail[(t, label)] if o != h and h in ancestors(o)]
        out[(h, label, t)] = (float(bool(tails)), max(tails) - z if tails else 0.0,
                              float(bool(heads)), max(heads) - z if heads else 0.0)
    return out


def document_features(evidence: Dict[Tuple[str, str, str], Evidence], stats: MentionStats,
                      ancestors: Optional[Ancestors] = None,
                      counts: Optional[RelationCounts] = None) -> Dict[Tuple[str, str, str], np.ndarray]:
    """The `FEATURES` of every id pair of one document (some compare an id pair with the
    document's other pairs of the same head, tail or label; `ancestors` gives a KB id's broader ids,
    for the hierarchy features, `counts` the training documents' relations; each group is 0
    without them)."""
    best = {key: _logit(max(ev.probs)) for key, ev in evidence.items()}
    best_of_head: Dict[Tuple[str, str], float] = {}
    best_of_tail: Dict[Tuple[str, str], float] = {}
    best_of_label: Dict[str, float] = {}
    for (h, label, t), z in best.items():
        best_of_head[(h, label)] = max(z, best_of_head.get((h, label), -np.inf))
        best_of_tail[(t, label)] = max(z, best_of_tail.get((t, label), -np.inf))
        best_of_label[label] = max(z, best_of_label.get(label, -np.inf))
    narrower = _narrower(best, ancestors) if ancestors is not None else {}
    out = {}
    for (h, label, t), ev in evidence.items():
        p = np.clip(np.asarray(ev.probs, dtype=np.float64), EPS, 1.0 - EPS)
        noisy_or = 1.0 - float(np.exp(np.log1p(-p).sum()))
        h_log, h_share, h_first, h_ids = stats.mention(h)
        t_log, t_share, t_first, t_ids = stats.mention(t)
        z = best[(h, label, t)]
        out[(h, label, t)] = np.array([
            z, float(np.log(p / (1.0 - p)).mean()), _logit(noisy_or), float((p >= 0.5).mean()),
            float(np.log1p(len(p))), h_log, t_log, h_share, t_share, h_first, t_first,
            float(np.log1p(min(ev.distances))), h_ids, t_ids, z - best_of_head[(h, label)], z - best_of_tail[(t, label)],
            *narrower.get((h, label, t), (0.0, 0.0, 0.0, 0.0)),
            *(counts.features(h, label, t) if counts is not None else (0.0, 0.0, 0.0)),
            z - best_of_label[label],
        ])
    return out


@dataclass
class Aggregator:
    """A logistic model over standardised `FEATURES`: P(relation | the pairs' evidence)."""

    weights: Tuple[float, ...]
    bias: float
    mean: Tuple[float, ...]
    scale: Tuple[float, ...]
    fitted_on: int = 0
    positives: int = 0

    def probability(self, x: np.ndarray) -> float:
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias))))

    def to_dict(self) -> Dict:
        return {"features": list(FEATURES), "weights": list(self.weights), "bias": self.bias, "mean": list(self.mean),
                "scale": list(self.scale), "fitted_on": self.fitted_on, "positives": self.positives}

    @classmethod
    def from_dict(cls, d: Optional[Dict], where: str = "aggregator") -> Optional["Aggregator"]:
        if not d:
            return None
        try:
            names = list(d["features"])
            if not names or names != list(FEATURES[: len(names)]):
                raise ConfigError(f"{where}: fitted on features {d['features']}, this version computes {list(FEATURES)}; "
                                  "fit it again (python -m spacy_entlink calibrate-relations)")
            weights, mean, scale = (tuple(float(v) for v in d[key]) for key in ("weights", "mean", "scale"))
            bias, fitted_on, positives = float(d["bias"]), int(d.get("fitted_on", 0)), int(d.get("positives", 0))
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{where}: not a fitted aggregator ({err!r})") from None
        n = len(names)
        if not (len(weights) == len(mean) == len(scale) == n) or min(scale) <= 0:
            raise ConfigError(f"{where}: weights, mean and scale must have {n} values each, scales > 0")
        extra = len(FEATURES) - n  # features added since it was fitted: weight 0
        return cls(weights + (0.0,) * extra, bias, mean + (0.0,) * extra, scale + (1.0,) * extra, fitted_on, positives)

    @classmethod
    def fit(cls, X: Sequence[np.ndarray], y: Sequence[int], l2: float = 1.0, steps: int = 100) -> "Aggregator":
        """Maximum likelihood with an L2 penalty on the standardised weights (Newton steps)."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURES))
        y = np.asarray(y, dtype=np.float64)
        positives = int(y.sum())
        if positives == 0 or positives == len(y):
            raise ConfigError(f"fitting the relation aggregator needs id pairs with and without a gold relation; "
                              f"got {positives} of {len(y)} with one (check the documents' entities, kb_ids and relations)")
        mean, scale = X.mean(0), X.std(0)
        scale[scale < 1e-9] = 1.0
        Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
        penalty = np.full(Z.shape[1], float(l2))
        penalty[-1] = 0.0
        w = np.zeros(Z.shape[1])
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-(Z @ w)))
            grad = Z.T @ (p - y) + penalty * w
            hess = (Z * (p * (1.0 - p))[:, None]).T @ Z + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(tuple(map(float, w[:-1])), float(w[-1]), tuple(map(float, mean)), tuple(map(float, scale)), len(y), positives)
