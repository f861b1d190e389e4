"""GENRE-style linking: rank KB entities for mentions by the seq2seq model's likelihood of
their names, constrained to the name trie or to the mention's candidates."""

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import torch
from tqdm import tqdm

from ..errors import ConfigError, check_choice
from ..kb import KnowledgeBase
from .examples import Pair
from .name_trie import NameTrie, PrefixConstraint
from .seq2seq import Seq2Seq

CANDIDATE_NAMES = ("canonical", "all")
FALLBACKS = ("trie", "nil")
Ranked = List[Tuple[int, float]]


@dataclass
class LinkerSettings:
    """How mentions are ranked (see the `entlink_linker` factory for the meaning of each)."""

    beam_size: int = 5
    top_k: int = 5
    max_candidates: int = 32
    candidate_names: str = "canonical"
    max_names_per_candidate: int = 4
    fallback: str = "trie"
    batch_size: int = 32

    def __post_init__(self) -> None:
        check_choice("candidate_names", self.candidate_names, CANDIDATE_NAMES)
        check_choice("fallback", self.fallback, FALLBACKS)
        for name in ("beam_size", "top_k", "max_candidates", "batch_size", "max_names_per_candidate"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")


@dataclass
class LinkStats:
    """Where the time of `rank` went (for benchmarks)."""

    mentions: int = 0
    skipped: int = 0
    scored: int = 0
    generated: int = 0
    total_s: float = 0.0
    trie_s: float = 0.0
    model_s: float = 0.0

    def reset(self) -> None:
        self.__init__()


def build_name_trie(seq2seq: Seq2Seq, kb: KnowledgeBase, path: Union[str, Path], *, aliases: bool = True,
                    batch_size: int = 4096, progress: bool = False) -> NameTrie:
    """Tokenise every canonical name (and alias) of `kb` with the model's tokenizer and write
    the name trie to `path`."""
    seqs: List[List[int]] = []
    rows: List[int] = []
    texts: List[str] = []
    owners: List[int] = []

    def flush() -> None:
        for ids, row in zip(seq2seq.target_ids(texts), owners):
            if len(ids) > 1:
                seqs.append(ids)
                rows.append(row)
        texts.clear()
        owners.clear()

    for row in tqdm(range(len(kb)), desc="name trie", unit="entity", disable=not progress, mininterval=2):
        names = [kb.get_name(row)]
        if aliases:
            names.extend(a for a in kb.get_aliases(row) if a)
        seen = set()
        for name in names:
            if name and name not in seen:
                seen.add(name)
                texts.append(name)
                owners.append(row)
        if len(texts) >= batch_size:
            flush()
    flush()
    return NameTrie.build(seqs, rows, path, n_entities=len(kb), eos_token_id=seq2seq.eos_id,
                          fingerprint=seq2seq.fingerprint)


class Linker:
    """A seq2seq model, a KB and its name trie, used together to rank entities for mentions."""

    def __init__(self, seq2seq: Seq2Seq, kb: KnowledgeBase, trie: NameTrie, settings: Optional[LinkerSettings] = None):
        if trie.fingerprint and trie.fingerprint != seq2seq.fingerprint:
            raise ConfigError(
                f"the name trie at {trie.path} was built with another tokenizer ({trie.fingerprint[:60]}…); "
                "rebuild it for this model"
            )
        if int(trie.meta.get("entities", len(kb))) != len(kb):
            raise ConfigError(f"the name trie at {trie.path} has {trie.meta.get('entities')} entities but the KB "
                              f"at {kb.path} has {len(kb)}; rebuild it for this KB")
        self.seq2seq = seq2seq
        self.kb = kb
        self.trie = trie
        self.settings = settings or LinkerSettings()
        self.stats = LinkStats()

    # --- targets ------------------------------------------------------------------------
    def name_targets(self, row: int) -> List[List[int]]:
        """Token sequences scored for a candidate: its canonical name, or all its names."""
        ids = self.trie.sequences_of(row)
        limit = 1 if self.settings.candidate_names == "canonical" else self.settings.max_names_per_candidate
        return [self.trie.sequence(int(s)) for s in ids[:limit]]

    def filter_type(self, rows: Iterable[int], label: Optional[str]) -> List[int]:
        rows = list(rows)
        if not label or label not in self.kb.type_names:
            return rows
        return [r for r in rows if self.kb.get_type(r) == label]

    # --- ranking ------------------------------------------------------------------------
    def scored_rows(self, candidates: Iterable[int]) -> List[int]:
        """The candidates a mention is ranked on: distinct, in order, at most `max_candidates`."""
        return list(dict.fromkeys(int(r) for r in candidates))[: self.settings.max_candidates]

    def rank(self, contexts: Sequence[str], candidates: Sequence[Optional[Sequence[int]]],
             labels: Optional[Sequence[Optional[str]]] = None, skip: Optional[Set[int]] = None,
             skip_score: float = 0.0) -> List[Ranked]:
        """For each mention, KB rows with merged scores (log-sum-exp of the length-normalised
        log-probabilities of their names), best first.

        `candidates[m]` restricts mention m to those KB rows (one candidate: no decoding);
        None (or an empty list with `fallback="trie"`) searches the whole name trie. Mentions
        in `skip` (decided without the model) keep their candidates in order, all scored
        `skip_score`.
        """
        t0 = time.perf_counter()
        labels = list(labels) if labels is not None else [None] * len(contexts)
        out: List[Ranked] = [[] for _ in contexts]
        to_score: List[int] = []
        to_generate: List[int] = []
        cand_rows: Dict[int, List[int]] = {}
        for m, cands in enumerate(candidates):
            if cands is not None and len(cands) == 0:
                if self.settings.fallback == "trie":
                    to_generate.append(m)
                continue
            if cands is None:
                to_generate.append(m)
                continue
            rows = self.scored_rows(cands)
            if len(rows) == 1 or (skip and m in skip):
                out[m] = [(r, skip_score if skip and m in skip else 0.0) for r in rows]
                self.stats.skipped += 1
            else:
                cand_rows[m] = rows
                to_score.append(m)
        bs = self.settings.batch_size
        order = sorted(to_score, key=lambda m: len(contexts[m]))
        for start in range(0, len(order), bs):
            part = order[start : start + bs]
            t = time.perf_counter()
            targets, owners = [], []
            for m in part:
                seqs, own = [], []
                for r in cand_rows[m]:
                    for seq in self.name_targets(r):
                        seqs.append(seq)
                        own.append(r)
                targets.append(seqs)
                owners.append(own)
            self.stats.trie_s += time.perf_counter() - t
            t = time.perf_counter()
            scores = self.seq2seq.score([contexts[m] for m in part], targets)
            self.stats.model_s += time.perf_counter() - t
            for m, own, sc in zip(part, owners, scores):
                out[m] = _merge(own, sc)
            self.stats.scored += len(part)
        order = sorted(to_generate, key=lambda m: len(contexts[m]))
        for start in range(0, len(order), bs):
            part = order[start : start + bs]
            for m, ranked in zip(part, self._generate([contexts[m] for m in part])):
                out[m] = ranked
            self.stats.generated += len(part)
        for m, label in enumerate(labels):
            if label and out[m] and label in self.kb.type_names:
                out[m] = [(r, s) for r, s in out[m] if self.kb.get_type(r) == label] or out[m]
        self.stats.mentions += len(contexts)
        self.stats.total_s += time.perf_counter() - t0
        return out

    def _generate(self, contexts: List[str]) -> List[Ranked]:
        s = self.settings
        constraint = PrefixConstraint(self.trie, skip=1, fallback=[self.seq2seq.pad_id])
        beams = max(s.beam_size, s.top_k)
        t = time.perf_counter()
        found = self.seq2seq.generate(contexts, constraint, num_beams=beams, num_return=min(s.top_k, beams))
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        targets, owners = [], []
        for seqs in found:
            tgt, own = [], []
            for seq in dict.fromkeys(tuple(x) for x in seqs):
                sid = self.trie.sequence_id(seq)
                if sid is None:
                    continue
                for r in self.trie.entities_of(sid):
                    tgt.append(list(seq))
                    own.append(int(r))
            targets.append(tgt)
            owners.append(own)
        trie_s = constraint.seconds + (time.perf_counter() - t)
        self.stats.trie_s += trie_s
        t = time.perf_counter()
        scores = self.seq2seq.score(contexts, targets)
        self.stats.model_s += gen_s - constraint.seconds + (time.perf_counter() - t)
        return [_merge(own, sc) for own, sc in zip(owners, scores)]

    # --- training -----------------------------------------------------------------------
    def loss(self, pairs: Sequence[Pair]) -> Optional[torch.Tensor]:
        """Cross-entropy of the canonical names of `pairs` (None if none has a name)."""
        texts, targets = [], []
        for p in pairs:
            seq_ids = self.trie.sequences_of(p.row)
            if len(seq_ids):
                texts.append(p.context)
                targets.append(self.trie.sequence(int(seq_ids[0])))
        if not texts:
            return None
        return self.seq2seq.loss(texts, targets)


def _merge(owners: Sequence[int], scores: Sequence[float]) -> Ranked:
    by_row: Dict[int, List[float]] = {}
    for r, s in zip(owners, scores):
        by_row.setdefault(r, []).append(float(s))
    merged = [(r, _logsumexp(v)) for r, v in by_row.items()]
    merged.sort(key=lambda x: -x[1])
    return merged


def _logsumexp(values: List[float]) -> float:
    if len(values) == 1:
        return values[0]
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))
