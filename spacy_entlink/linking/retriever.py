"""A dense retriever trained on the KB itself: synonym contrastive learning of a bi-encoder.

Every name and alias of one entity is a positive of every other (as in SapBERT); the other
entities' names in the batch are negatives, plus hard negatives: for each anchor name, names
of other entities that are nearest to it in the current encoder's space (mined at the start
and every `mine_every` steps). Annotated mentions, when given, are extra anchors whose
positives are their entity's names. Optionally a share of the entities keep one alias out of
training; recall@1 of those held-out aliases against the remaining names is reported while
training (model selection without any annotated text) and written to `holdout.jsonl`.

With `interpolate` below 1, the saved weights are a mix of the trained and the starting
encoder's (WiSE-FT: Wortsman et al., 2022, "Robust fine-tuning of zero-shot models"): training
on KB synonyms alone fits KB-style names, and the mix keeps more of the starting encoder's
robustness to how running text names things.

The trained encoder is an ordinary Hugging Face folder (safetensors): `SentenceEncoder(path)`
and the linker's `dense_model` read it.
"""

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from ..errors import ConfigError
from ..kb import KnowledgeBase
from ..models.hf import check_precision, inference_dtype
from .dense import SentenceEncoder


@dataclass
class RetrieverTraining:
    """Settings of `train_retriever` (see the `train-retriever` command for each)."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 5e-5
    temperature: float = 0.05
    hard_negatives: int = 1
    mine_every: int = 500
    mine_k: int = 8
    warmup: float = 0.05
    holdout: float = 0.0
    mention_share: float = 0.5
    max_length: int = 24
    uninvert: bool = False
    interpolate: float = 1.0
    grad_clip: float = 1.0
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_precision(self.precision, "train-retriever --precision")
        for name in ("steps", "batch_size", "mine_k", "max_length"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train-retriever: {name} must be at least 1, got {getattr(self, name)!r}")
        if self.batch_size < 2:
            raise ConfigError("train-retriever: batch_size must be at least 2 (in-batch negatives)")
        for name in ("holdout", "mention_share", "warmup"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ConfigError(f"train-retriever: {name} must be in [0, 1), got {getattr(self, name)!r}")
        if not 0.0 < float(self.interpolate) <= 1.0:
            raise ConfigError(f"train-retriever: interpolate must be in (0, 1], got {self.interpolate!r}")
        if self.temperature <= 0 or self.lr <= 0:
            raise ConfigError("train-retriever: temperature and lr must be positive")


@dataclass
class NameSet:
    """The KB names used for training: `texts[i]` belongs to KB row `owners[i]`; `by_row`
    lists each row's name indices; `held_out` are (alias, row) pairs kept out of training."""

    texts: List[str] = field(default_factory=list)
    owners: List[int] = field(default_factory=list)
    by_row: Dict[int, List[int]] = field(default_factory=dict)
    held_out: List[Tuple[str, int]] = field(default_factory=list)

    @property
    def multi(self) -> List[int]:
        """Rows with at least two names (they give positive pairs)."""
        return [r for r, idx in self.by_row.items() if len(idx) >= 2]


def uninverted(name: str) -> Optional[str]:
    """A thesaurus entry term written "Head, Modifier" ("Neoplasms, Abdominal") in running-text
    order ("Abdominal Neoplasms"); None for any other name."""
    parts = name.split(", ")
    if len(parts) != 2 or "," in parts[1] or not parts[0] or not parts[1]:
        return None
    return f"{parts[1]} {parts[0]}"


def kb_name_set(kb: KnowledgeBase, *, types: Optional[Sequence[str]] = None, holdout: float = 0.0,
                seed: int = 0, uninvert: bool = False) -> NameSet:
    """The KB's names, one per normalised form per entity; with `holdout`, that share of the
    entities with at least three names keeps one alias (not the canonical name) out; with
    `uninvert`, inverted entry terms also appear in running-text order (see `uninverted`)."""
    rng = random.Random(seed)
    out = NameSet()
    for row in range(len(kb)):
        if types and kb.get_type(row) not in types:
            continue
        seen = set()
        names = []
        for name in [kb.get_name(row)] + kb.get_aliases(row):
            key = kb.normalize(name) if name else ""
            if key and key not in seen:
                seen.add(key)
                names.append(name)
        if holdout and len(names) >= 3 and rng.random() < holdout:
            k = rng.randrange(1, len(names))
            out.held_out.append((names.pop(k), row))
        if uninvert:
            for name in list(names):
                flipped = uninverted(name)
                if flipped and kb.normalize(flipped) not in seen:
                    seen.add(kb.normalize(flipped))
                    names.append(flipped)
        idx = []
        for name in names:
            idx.append(len(out.texts))
            out.texts.append(name)
            out.owners.append(row)
        if idx:
            out.by_row[row] = idx
    return out


def mine_hard_negatives(vectors: torch.Tensor, owners: torch.Tensor, k: int, *, chunk: int = 1024,
                        progress: bool = False) -> torch.Tensor:
    """For each name, the indices of the `k` nearest names owned by other entities (-1 where
    there are fewer)."""
    n = len(vectors)
    out = torch.full((n, k), -1, dtype=torch.long)
    extra = min(n, k + 16)
    for a in tqdm(range(0, n, chunk), desc="mining hard negatives", unit="chunk", disable=not progress,
                  mininterval=5):
        sims = vectors[a : a + chunk] @ vectors.T
        same = owners[a : a + chunk, None] == owners[None, :]
        sims.masked_fill_(same, float("-inf"))
        top = sims.topk(extra, dim=1)
        for i, (vals, idx) in enumerate(zip(top.values, top.indices)):
            keep = idx[torch.isfinite(vals)][:k]
            out[a + i, : len(keep)] = keep
    return out


def holdout_recall(encoder: SentenceEncoder, names: NameSet, vectors: Optional[np.ndarray] = None) -> float:
    """recall@1 of the held-out aliases against the training names (nearest name's owner)."""
    if not names.held_out:
        return float("nan")
    if vectors is None:
        vectors = encoder.encode(names.texts)
    q = encoder.encode([t for t, _ in names.held_out])
    owners = np.asarray(names.owners)
    hits = 0
    for a in range(0, len(q), 512):
        best = np.argmax(q[a : a + 512] @ vectors.T, axis=1)
        hits += int((owners[best] == np.asarray([r for _, r in names.held_out[a : a + 512]])).sum())
    return hits / len(names.held_out)


def interpolate_weights(model: torch.nn.Module, start: Dict[str, torch.Tensor], weight: float) -> None:
    """Set `model`'s floating-point weights to `weight` × its own + (1 − `weight`) × `start`'s
    (same architecture; integer buffers are kept; tied weights are mixed once)."""
    state = model.state_dict()
    missing = sorted(set(state) ^ set(start))
    if missing:
        raise ConfigError(f"interpolate: the two encoders differ in their weights (e.g. {missing[0]!r})")
    done = set()
    with torch.no_grad():
        for key, value in state.items():
            if value.is_floating_point() and value.data_ptr() not in done:
                done.add(value.data_ptr())
                value.mul_(weight).add_(start[key].to(value.device, value.dtype), alpha=1.0 - weight)


def contrastive_loss(emb: torch.Tensor, labels: torch.Tensor, n_anchors: int, temperature: float) -> torch.Tensor:
    """Multi-positive InfoNCE: for each of the first `n_anchors` embeddings, -log of the
    probability mass on the other embeddings with the same label."""
    sims = (emb[:n_anchors].float() @ emb.float().T) / temperature
    eye = torch.zeros_like(sims, dtype=torch.bool)
    eye[torch.arange(n_anchors), torch.arange(n_anchors)] = True
    sims = sims.masked_fill(eye, float("-inf"))
    pos = (labels[:n_anchors, None] == labels[None, :]) & ~eye
    has_pos = pos.any(dim=1)
    if not bool(has_pos.any()):
        return sims.new_zeros(())
    log_all = torch.logsumexp(sims, dim=1)
    log_pos = torch.logsumexp(sims.masked_fill(~pos, float("-inf")), dim=1)
    return (log_all - log_pos)[has_pos].mean()


@dataclass
class RetrieverResult:
    steps: int = 0
    seconds: float = 0.0
    names: int = 0
    entities: int = 0
    held_out: int = 0
    history: List[Dict] = field(default_factory=list)


def train_retriever(kb: KnowledgeBase, output: Path, *, model: str = "", settings: Optional[RetrieverTraining] = None,
                    mentions: Optional[Sequence[Tuple[str, int]]] = None, types: Optional[Sequence[str]] = None,
                    encoder: Optional[SentenceEncoder] = None, progress: bool = True) -> RetrieverResult:
    """Train a bi-encoder on the KB's synonyms (and `mentions`: (text, KB row) pairs) and save
    it to `output`; `encoder` overrides `model` (e.g. a tiny test encoder)."""
    s = settings or RetrieverTraining()
    from transformers import get_linear_schedule_with_warmup

    rng = random.Random(s.seed)
    torch.manual_seed(s.seed)
    names = kb_name_set(kb, types=types, holdout=s.holdout, seed=s.seed, uninvert=s.uninvert)
    multi = names.multi
    by_mention: Dict[int, List[str]] = {}
    for text, row in mentions or ():
        if row in names.by_row and text:
            by_mention.setdefault(int(row), []).append(text)
    anchors_rows = sorted(set(multi) | set(by_mention))
    if len(anchors_rows) < 2:
        raise ConfigError(f"train-retriever: the KB at {kb.path} has {len(anchors_rows)} entities with two or more "
                          "names (or annotated mentions); synonym training needs at least two")
    enc = encoder or SentenceEncoder(model or None, max_length=s.max_length, precision=s.precision)
    enc.max_length = s.max_length
    device = enc.device
    dtype = inference_dtype(s.precision, device)
    start = ({k: v.detach().clone() for k, v in enc.model.state_dict().items()}
             if s.interpolate < 1.0 else None)
    params = [p for p in enc.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(s.warmup * s.steps), s.steps)
    owners_t = torch.as_tensor(names.owners, dtype=torch.long)
    result = RetrieverResult(names=len(names.texts), entities=len(names.by_row), held_out=len(names.held_out))
    print(f"train-retriever: {len(names.texts):,} names of {len(names.by_row):,} entities "
          f"({len(multi):,} with synonyms), {sum(map(len, by_mention.values())):,} annotated mentions, "
          f"{len(names.held_out):,} aliases held out; {dtype} on {device}")
    hard: Optional[torch.Tensor] = None
    t0 = time.perf_counter()
    order: List[int] = []
    bs = min(s.batch_size, len(anchors_rows))

    def checkpoint(step: int, loss: float) -> None:
        nonlocal hard
        entry: Dict = {"step": step, "loss": None if math.isnan(loss) else round(loss, 4),
                       "seconds": round(time.perf_counter() - t0, 1)}
        vectors = None
        if s.hard_negatives > 0 and step < s.steps:
            vectors = enc.encode(names.texts, progress=progress)
            hard = mine_hard_negatives(torch.from_numpy(vectors), owners_t, s.mine_k, progress=progress)
        if names.held_out:
            entry["holdout_recall@1"] = round(holdout_recall(enc, names, vectors), 4)
        result.history.append(entry)
        if progress:
            tqdm.write(f"step {step}: " + ", ".join(f"{k} {v}" for k, v in entry.items() if k != "step"))

    checkpoint(0, float("nan"))
    enc.model.train()
    bar = tqdm(total=s.steps, desc="train-retriever", unit="step", mininterval=5, disable=not progress)
    running = 0.0
    for step in range(1, s.steps + 1):
        if len(order) < bs:
            order = rng.sample(anchors_rows, len(anchors_rows)) + order
        rows = [order.pop() for _ in range(bs)]
        texts: List[str] = []
        labels: List[int] = []
        picked: List[int] = []  # name index of each anchor (-1: a mention)
        for r in rows:
            idx = names.by_row[r]
            pos_i = rng.choice(idx)
            if r in by_mention and (len(idx) < 2 or rng.random() < s.mention_share):
                texts.append(rng.choice(by_mention[r]))
                picked.append(-1)
            else:
                a_i = rng.choice([i for i in idx if i != pos_i])
                texts.append(names.texts[a_i])
                picked.append(a_i)
            texts.append(names.texts[pos_i])
            picked.append(pos_i)
            labels.extend([r, r])
        n_anchors = len(texts)
        if hard is not None:
            for i in picked:
                if i < 0:
                    continue
                cands = [int(j) for j in hard[i][: s.mine_k] if j >= 0]
                for j in rng.sample(cands, min(s.hard_negatives, len(cands))):
                    texts.append(names.texts[j])
                    labels.append(names.owners[j])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            emb = enc.embed(texts)
        loss = contrastive_loss(emb, torch.as_tensor(labels, device=device), n_anchors, s.temperature)
        loss.backward()
        if s.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        value = float(loss.detach())
        running = value if step == 1 else 0.98 * running + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}", refresh=False)
        if (s.mine_every and step % s.mine_every == 0) or step == s.steps:
            enc.model.eval()
            checkpoint(step, running)
            enc.model.train()
    bar.close()
    enc.model.eval()
    if start is not None:
        interpolate_weights(enc.model, start, s.interpolate)
        entry = {"step": s.steps, "interpolate": s.interpolate}
        if names.held_out:
            entry["holdout_recall@1"] = round(holdout_recall(enc, names), 4)
        result.history.append(entry)
        if progress:
            tqdm.write(f"interpolated with the starting encoder (trained weight {s.interpolate}): "
                       + ", ".join(f"{k} {v}" for k, v in entry.items() if k not in ("step", "interpolate")))
    result.steps = s.steps
    result.seconds = time.perf_counter() - t0
    output = Path(output)
    enc.save(output, trained_on=str(kb.meta.get("name") or kb.path), training=asdict(s),
             history=result.history, names=result.names, entities=result.entities)
    with open(output / "holdout.jsonl", "w", encoding="utf8") as f:
        for text, row in names.held_out:
            f.write(json.dumps({"text": text, "id": kb.get_id(row)}, ensure_ascii=False) + "\n")
    return result


def read_holdout(path: Path, kb: KnowledgeBase) -> List[Tuple[str, int]]:
    """The (alias, KB row) pairs a retriever kept out of training (`holdout.jsonl`)."""
    out = []
    with open(path, encoding="utf8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                row = kb.row_of(rec["id"])
                if row is not None:
                    out.append((rec["text"], row))
    return out

