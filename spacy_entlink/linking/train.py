"""Standalone training of an `entlink_linker` (the `train-linker` command) and accuracy on
gold mentions (shared with the benchmarks)."""

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Span
from spacy.training import Example
from tqdm import tqdm

from ..errors import ConfigError
from .examples import gold_pairs, kb_pairs


def gold_mentions(examples: Iterable[Example], labels: Optional[Sequence[str]] = None) -> List[Tuple[Span, str]]:
    """Reference entities with one gold id (NIL `-1`/`NIL` and composite `a|b` ids left out)."""
    out = []
    for eg in examples:
        for ent in eg.reference.ents:
            if labels and ent.label_ not in labels:
                continue
            gid = ent.kb_id_
            if not gid or gid in ("-1", "NIL") or gid.endswith(":-1") or "|" in gid:
                continue
            out.append((ent, gid))
    return out


def link_gold_mentions(linker, mentions: Sequence[Tuple[Span, str]], *,
                       candidates: Optional[Sequence[Optional[Sequence[int]]]] = None) -> List[List[Tuple[str, float]]]:
    """Top-k `(kb_id, probability)` lists of an `entlink_linker` for gold mention spans (in the
    order of the calibrated probabilities); `candidates` overrides the component's (None per
    mention: the whole name trie)."""
    spans = [s for s, _ in mentions]
    ranked = linker.rank_spans(spans, candidates)
    return [top for top, _ in linker.span_links(spans, ranked)]


def accuracy(ranked: Sequence[Sequence[Tuple[str, float]]], gold: Sequence[str]) -> float:
    if not gold:
        return 0.0
    return sum(1 for r, g in zip(ranked, gold) if r and r[0][0] == g) / len(gold)


@dataclass
class TrainResult:
    steps: int = 0
    seconds: float = 0.0
    best_dev: float = -1.0
    history: List[Dict] = field(default_factory=list)


def train_linker(nlp: Language, name: str, train: List[Example], dev: List[Example], *, output: Path,
                 kb_pairs_per_entity: int = 0, kb_types: Optional[Sequence[str]] = None, epochs: int = 2,
                 max_steps: int = 0, eval_every: int = 500, dev_limit: int = 0, seed: int = 0,
                 warmup: float = 0.05, labels: Optional[Sequence[str]] = None) -> TrainResult:
    """Train the linker `name` of `nlp` on gold pairs of `train` plus self-supervised KB pairs,
    keeping the weights that score best on `dev` (accuracy@1 on gold mentions); the best
    pipeline, calibrated on `dev`, is written to `output`."""
    from thinc.api import warmup_linear

    linker = nlp.get_pipe(name)
    linker._require()
    window = linker.cfg.get("context_window", 48)
    pairs, skipped = gold_pairs(train, linker.kb, window=window, labels=labels)
    linker.set_counts(train)
    n_gold = len(pairs)
    if kb_pairs_per_entity > 0:
        pairs.extend(kb_pairs(linker.kb, per_entity=kb_pairs_per_entity, seed=seed, types=kb_types))
    if not pairs:
        raise ConfigError("train-linker: no training pairs (no gold entity of the training data has a kb_id in the KB, "
                          "and no KB pairs were asked for)")
    print(f"training pairs: {n_gold:,} gold mentions ({skipped:,} without a KB id skipped), "
          f"{len(pairs) - n_gold:,} from the KB")
    dev_mentions = gold_mentions(dev, labels)
    if dev_limit:
        dev_mentions = dev_mentions[:dev_limit]
    bs = linker.settings.batch_size
    per_epoch = (len(pairs) + bs - 1) // bs
    total = max_steps or per_epoch * epochs
    opt = linker.create_optimizer()  # thinc's Adam at the component's learning_rate, warmed up and decayed
    opt.learn_rate = 0.0
    opt.schedules["learn_rate"] = warmup_linear(float(linker.cfg.get("learning_rate", 5e-5)),
                                                max(1, int(warmup * total)), total)
    opt.step_schedules()
    rng = random.Random(seed)
    result = TrainResult()
    t0 = time.perf_counter()

    def evaluate(step: int) -> None:
        if not dev_mentions:
            return
        ranked = link_gold_mentions(linker, dev_mentions)
        acc = accuracy(ranked, [g for _, g in dev_mentions])
        result.history.append({"step": step, "dev_acc": acc, "seconds": round(time.perf_counter() - t0, 1)})
        tqdm.write(f"step {step}: dev accuracy@1 {100 * acc:.2f} ({len(dev_mentions):,} mentions)")
        if acc > result.best_dev:
            result.best_dev = acc
            nlp.to_disk(output)

    bar = tqdm(total=total, desc="train-linker", unit="step", mininterval=5)
    step = 0
    while step < total:
        # batches of similar length, in random order
        order = sorted(rng.sample(pairs, len(pairs)), key=lambda p: len(p.context) // 40)
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        rng.shuffle(batches)
        for batch in batches:
            loss = linker.update_pairs(batch)
            linker.finish_update(opt)
            opt.step_schedules()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if eval_every and step % eval_every == 0:
                evaluate(step)
            if step >= total:
                break
    bar.close()
    if not result.history or result.history[-1]["step"] != step:
        evaluate(step)
    if not dev_mentions:
        nlp.to_disk(output)
    result.steps = step
    result.seconds = time.perf_counter() - t0
    # calibrate the best weights on dev
    if dev:
        best = spacy.load(output)
        cal = best.get_pipe(name).calibrate(dev)
        print(f"calibration on dev: scale {cal.scale:.3f}, NIL score {cal.nil_score}")
        # the loaded weights may be memory-mapped from `output`: write elsewhere, then swap
        tmp = output.with_name(output.name + ".calibrated")
        shutil.rmtree(tmp, ignore_errors=True)
        best.to_disk(tmp)
        del best
        shutil.rmtree(output)
        tmp.rename(output)
    return result
