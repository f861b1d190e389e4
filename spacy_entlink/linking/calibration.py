"""Calibration of linker scores into probabilities, with a NIL option.

For one mention with merged candidate scores s_1..s_k (length-normalised log-probabilities)
and prior features f_i (e.g. log(1 + training count), log(1 + KB prior)), the probability of
candidate i and of NIL are

    z_i   = a * s_i + w . f_i
    p_i   = exp(z_i) / (exp(b) + sum_j exp(z_j))
    p_NIL = exp(b)   / (exp(b) + sum_j exp(z_j))

`a` is an inverse temperature, `w` the weights of the priors and `b` the score of a NIL
pseudo-candidate; all are fitted on dev mentions by maximum likelihood (the gold candidate,
or NIL when the gold entity is not among the candidates). Uncalibrated, a = 1, w = 0 and
there is no NIL candidate.

A cascade: with `gate` set, a mention whose most probable candidate reaches `gate` when every
model score is equal (the features alone decide) is not given to the model (`fit_gate`). With
a NIL option, equal model scores do not cancel against NIL's: the cascade then assumes that
every candidate scores `gate_score`, the median of the calibration mentions' best model scores,
and answers from the features only when the best candidate also beats NIL.
"""

import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class Calibration:
    scale: float = 1.0
    nil_score: Optional[float] = None
    fitted_on: int = 0
    prior_weights: Tuple[float, ...] = ()
    gate: Optional[float] = None
    gate_score: Optional[float] = None

    def probabilities(self, scores: Sequence[float], features: Optional[np.ndarray] = None) -> Tuple[np.ndarray, float]:
        """Probabilities of each candidate and of NIL (`features`: one row of priors per candidate)."""
        s = self.scale * np.asarray(scores, dtype=np.float64)
        if self.prior_weights and features is not None and len(s):
            s = s + np.asarray(features, dtype=np.float64)[:, : len(self.prior_weights)] @ np.asarray(self.prior_weights)
        logits = s if self.nil_score is None else np.append(s, self.nil_score)
        if len(logits) == 0:
            return np.zeros(0), 1.0
        z = np.exp(logits - logits.max())
        z /= z.sum()
        if self.nil_score is None:
            return z, 0.0
        return z[:-1], float(z[-1])

    def to_dict(self) -> Dict:
        return {"scale": self.scale, "nil_score": self.nil_score, "fitted_on": self.fitted_on,
                "prior_weights": list(self.prior_weights), "gate": self.gate, "gate_score": self.gate_score}

    @classmethod
    def from_dict(cls, d: Optional[Dict]) -> "Calibration":
        d = d or {}
        return cls(float(d.get("scale", 1.0)), None if d.get("nil_score") is None else float(d["nil_score"]),
                   int(d.get("fitted_on", 0)), tuple(float(w) for w in d.get("prior_weights", ())),
                   None if d.get("gate") is None else float(d["gate"]),
                   None if d.get("gate_score") is None else float(d["gate_score"]))

    @property
    def skip_score(self) -> float:
        """The model score every candidate of a mention the cascade decides is given."""
        return 0.0 if self.nil_score is None or self.gate_score is None else self.gate_score

    def decided_without_model(self, features: Optional[np.ndarray]) -> bool:
        """Whether the features alone (model scores all equal; `gate_score` with a NIL option)
        make one candidate, and only one, at least `gate` probable and more probable than NIL:
        the cascade's test (False without a gate or features, or with a NIL option but no
        `gate_score`)."""
        if (self.gate is None or features is None or not self.prior_weights or len(features) == 0
                or (self.nil_score is not None and self.gate_score is None)):
            return False
        probs, p_nil = self.feature_probabilities(features)
        return _unique_best(probs) is not None and float(probs.max()) >= max(self.gate, p_nil)

    def feature_probabilities(self, features: np.ndarray) -> Tuple[np.ndarray, float]:
        """Candidate and NIL probabilities from the features alone (every model score
        `skip_score`)."""
        return self.probabilities(np.full(len(features), self.skip_score), features)

    @classmethod
    def fit(cls, scores: List[Sequence[float]], gold: List[Optional[int]], *, with_nil: bool = True,
            features: Optional[List[np.ndarray]] = None, steps: int = 200) -> "Calibration":
        """Fit on mentions: `scores[m]` the candidates' scores, `gold[m]` the index of the
        correct one or None when no candidate is correct, `features[m]` the candidates' priors."""
        import torch

        keep = [m for m, s in enumerate(scores) if len(s) > 0]
        if not keep:
            return cls()
        width = max(len(scores[m]) for m in keep)
        mat = torch.zeros((len(keep), width), dtype=torch.float64)
        valid = torch.zeros((len(keep), width), dtype=torch.bool)
        n_feat = int(np.asarray(features[keep[0]]).shape[1]) if features is not None else 0
        feat = torch.zeros((len(keep), width, n_feat), dtype=torch.float64)
        target = torch.empty(len(keep), dtype=torch.long)
        for r, m in enumerate(keep):
            mat[r, : len(scores[m])] = torch.tensor(list(scores[m]), dtype=torch.float64)
            valid[r, : len(scores[m])] = True
            if n_feat:
                feat[r, : len(scores[m])] = torch.as_tensor(np.asarray(features[m], dtype=np.float64))
            target[r] = width if gold[m] is None else int(gold[m])
        log_a = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        w = torch.zeros(n_feat, dtype=torch.float64, requires_grad=True)
        if not with_nil:
            rows = target != width
            mat, target, valid, feat = mat[rows], target[rows], valid[rows], feat[rows]
            if len(target) == 0:
                return cls()
        opt = torch.optim.LBFGS([log_a, b, w], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            # masked entries stay finite until the final where, so no nan reaches the gradients
            s = mat * log_a.clamp(-5, 5).exp()
            if n_feat:
                s = s + feat @ w
            s = s.masked_fill(~valid, float("-inf"))
            nil = b.expand(len(s), 1) if with_nil else torch.full((len(s), 1), float("-inf"), dtype=torch.float64)
            loss = torch.nn.functional.cross_entropy(torch.cat([s, nil], dim=1), target)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            return cls(float(log_a.clamp(-5, 5).exp()), float(b) if with_nil else None, len(keep),
                       tuple(float(x) for x in w))


@dataclass
class CalibrationData:
    """What a calibration is fitted on, one entry per mention: candidate scores, candidate
    features, the gold candidate's index (None: not among them) and a group (document) id."""

    scores: List[List[float]] = field(default_factory=list)
    features: List[np.ndarray] = field(default_factory=list)
    gold: List[Optional[int]] = field(default_factory=list)
    groups: List[int] = field(default_factory=list)

    def accuracy(self, calibration: Calibration, mentions: Sequence[int], *, nil: bool = False) -> float:
        """accuracy@1 of `calibration` over these mentions: its most probable candidate is the
        gold one (with `nil`, also more probable than NIL); empty lists count as wrong."""
        ok = 0
        for m in mentions:
            if not self.scores[m] or self.gold[m] is None:
                continue
            probs, p_nil = calibration.probabilities(self.scores[m], self.features[m])
            best = int(np.argmax(probs))
            ok += best == self.gold[m] and (not nil or probs[best] >= p_nil)
        return ok / max(len(mentions), 1)


def gate_rows(data: CalibrationData, calibration: Calibration, mentions: Optional[Sequence[int]] = None, *,
              nil: bool = False) -> List[Tuple[float, int]]:
    """For each mention with at least two candidates: its features-only top probability under
    `calibration` and whether answering from the features alone wins (+1), loses (-1) or ties
    (0) against the full calibration."""
    rows = []
    for m in (range(len(data.gold)) if mentions is None else mentions):
        scores, feats = data.scores[m], data.features[m]
        if len(scores) < 2 or feats is None or not calibration.prior_weights:
            continue
        q, q_nil = calibration.feature_probabilities(feats)
        if q.max() < q_nil:
            continue  # the cascade never answers NIL: whatever the gate, the model sees this mention
        full, p_nil = calibration.probabilities(scores, feats)
        gold = data.gold[m]
        if gold is None:  # right only as NIL
            right_full, right_feat = nil and p_nil > full.max(), False
        else:
            right_full = int(np.argmax(full)) == gold and (not nil or full.max() >= p_nil)
            # a tie is no answer: rows come ranked by the model, so argmax would break it the model's way
            right_feat = _unique_best(q) == gold
        rows.append((float(q.max()), int(right_feat) - int(right_full)))
    return rows


def gate_score(data: CalibrationData, mentions: Optional[Sequence[int]] = None) -> Optional[float]:
    """The median over mentions with several candidates of their best model score (what the
    cascade assumes the model would give a decided mention's candidates, against NIL)."""
    best = [max(data.scores[m]) for m in (range(len(data.gold)) if mentions is None else mentions)
            if len(data.scores[m]) >= 2]
    return float(np.median(best)) if best else None


def fit_gate(data: CalibrationData, calibration: Calibration, *, nil: bool = False, folds: int = 0,
             seed: int = 0) -> Optional[float]:
    """The lowest gate at which the cascade loses no accuracy@1 on `data`: every mention with
    at least two candidates whose features-only top probability reaches it is answered by the
    features alone, and those answers are together at least as often right as the full
    calibration's on the same mentions. With `folds` >= 2 each mention is judged by a
    calibration fitted on the other folds' documents (as `cross_validate` splits them), so the
    gate is not chosen on the mentions its calibration was fitted on. With a NIL option the
    cascade needs `calibration.gate_score` (set it with `gate_score`; each fold's is taken from
    its own fitting mentions), and a mention whose gold is not among its candidates is lost to
    the features whenever the full calibration says NIL. None (no cascade) when no mention has
    features, or no gate loses nothing."""
    if calibration.nil_score is not None and calibration.gate_score is None:
        return None
    if folds >= 2:
        rows = []
        for held, cal in fold_calibrations(data, folds, with_nil=nil, seed=seed):
            if cal.nil_score is not None:
                cal.gate_score = gate_score(data, sorted(set(range(len(data.gold))) - set(held)))
            rows.extend(gate_rows(data, cal, held, nil=nil))
    else:
        rows = gate_rows(data, calibration, nil=nil)
    if not rows:
        return None
    rows.sort(key=lambda r: -r[0])
    best, gain = None, 0
    for i, (q, diff) in enumerate(rows):
        gain += diff
        last_of_tie = i + 1 == len(rows) or rows[i + 1][0] < q
        if last_of_tie and gain >= 0:
            best = q
    return best


def _unique_best(probs: np.ndarray) -> Optional[int]:
    """Index of the most probable row, None when another row ties it."""
    if len(probs) == 0:
        return None
    best = int(np.argmax(probs))
    top = probs[best]
    return None if np.sum(np.isclose(probs, top, rtol=0, atol=1e-12)) > 1 else best


def fold_calibrations(data: CalibrationData, folds: int, *, with_nil: bool = True, seed: int = 0):
    """(held-out mentions, calibration fitted on the other folds) per fold; folds are groups
    (documents) shuffled with `seed`."""
    groups = sorted(set(data.groups))
    random.Random(seed).shuffle(groups)
    fold_of = {g: i % folds for i, g in enumerate(groups)}
    everything = range(len(data.gold))
    for k in range(folds):
        held = [m for m in everything if fold_of[data.groups[m]] == k]
        rest = [m for m in everything if fold_of[data.groups[m]] != k]
        cal = Calibration.fit([data.scores[m] for m in rest], [data.gold[m] for m in rest], with_nil=with_nil,
                              features=[data.features[m] for m in rest])
        yield held, cal


def cross_validate(data: CalibrationData, folds: int, *, with_nil: bool = True, seed: int = 0,
                   fitted: Optional[Calibration] = None) -> Dict[str, float]:
    """accuracy@1 of calibrations fitted on all but one fold of the groups (documents) and
    applied to the held-out fold, pooled over folds, beside the accuracy of one calibration
    fitted and applied on everything (the optimistic number; `fitted`, if already fitted on
    all of `data`); `*_with_nil`: a mention the calibration calls NIL counts as wrong."""
    everything = list(range(len(data.gold)))
    correct = [0.0, 0.0]
    for held, cal in fold_calibrations(data, folds, with_nil=with_nil, seed=seed):
        for i, nil in enumerate((False, True)):
            correct[i] += data.accuracy(cal, held, nil=nil) * len(held)
    full = fitted or Calibration.fit(data.scores, data.gold, with_nil=with_nil, features=data.features)
    n = max(len(everything), 1)
    return {"folds": folds, "mentions": len(everything),
            "cross_validated_acc": correct[0] / n, "fit_and_apply_acc": data.accuracy(full, everything),
            "cross_validated_acc_with_nil": correct[1] / n,
            "fit_and_apply_acc_with_nil": data.accuracy(full, everything, nil=True)}
