"""Fusion of dictionary spans with entities already in `doc.ents` (for example from `ner`).

Policies (the `fusion` argument of `entlink_dictionary`):
- "ner_only": keep `doc.ents` as they are; the dictionary only adds ids and candidates.
- "keep_ner": keep `doc.ents`; add dictionary spans that overlap none of them.
- "prefer_dictionary": dictionary spans win; entities overlapping none of them stay.
- "union_longest": pool both; resolve overlaps by length, then score, then earlier start.
- "union_score": pool both; resolve overlaps by score, then length, then earlier start.
- "dictionary_only": replace `doc.ents` by the dictionary spans.
- "spans_only": leave `doc.ents` and the tokens' entity tags untouched; only write the candidate
  spans (for a dictionary placed before `ner` that feeds it features, see
  `spacy_entlink.DictFeatureTok2Vec.v1`, and an `entlink_fusion` after it).
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

FUSION_POLICIES = (
    "ner_only", "keep_ner", "prefer_dictionary", "union_longest", "union_score", "dictionary_only", "spans_only",
)


@dataclass(slots=True)
class SpanCandidate:
    """A candidate entity span over tokens [start, end) with its evidence."""

    start: int
    end: int
    label: str
    score: float
    sources: List[str] = field(default_factory=list)
    ids: List[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return "+".join(self.sources)

    def __len__(self) -> int:
        return self.end - self.start


def _greedy(spans: Sequence[SpanCandidate], key: Callable[[SpanCandidate], Tuple]) -> List[SpanCandidate]:
    taken: List[SpanCandidate] = []
    used = bytearray(max((s.end for s in spans), default=0))
    for s in sorted(spans, key=key):
        if any(used[s.start : s.end]):
            continue
        taken.append(s)
        used[s.start : s.end] = b"\x01" * (s.end - s.start)
    taken.sort(key=_start)
    return taken


def _start(s: SpanCandidate) -> int:
    return s.start


def by_length(s: SpanCandidate) -> Tuple:
    return (s.start - s.end, -s.score, s.start)


def by_score(s: SpanCandidate) -> Tuple:
    return (-s.score, s.start - s.end, s.start)


def _free(spans: Sequence[SpanCandidate], blockers: Sequence[SpanCandidate]) -> List[SpanCandidate]:
    used = set()
    for b in blockers:
        used.update(range(b.start, b.end))
    return [s for s in spans if not any(t in used for t in range(s.start, s.end))]


def fuse(policy: str, ner: Sequence[SpanCandidate], dictionary: Sequence[SpanCandidate]) -> List[SpanCandidate]:
    """Non-overlapping entities chosen from NER and dictionary spans by `policy`."""
    if policy in ("ner_only", "spans_only"):
        return sorted(ner, key=lambda s: s.start)
    if policy == "dictionary_only":
        return _greedy(dictionary, by_length)
    if policy == "keep_ner":
        return sorted(list(ner) + _greedy(_free(dictionary, ner), by_length), key=lambda s: s.start)
    if policy == "prefer_dictionary":
        chosen = _greedy(dictionary, by_length)
        return sorted(chosen + _free(ner, chosen), key=lambda s: s.start)
    if policy == "union_longest":
        return _greedy(list(ner) + list(dictionary), by_length)
    if policy == "union_score":
        return _greedy(list(ner) + list(dictionary), by_score)
    raise ValueError(f"unknown fusion policy {policy!r}; choose one of {', '.join(FUSION_POLICIES)}")


def merge_same_boundaries(spans: Sequence[SpanCandidate], *, copy: bool = True) -> Dict[Tuple[int, int], SpanCandidate]:
    """One candidate per (start, end): sources and ids united, best score and its label kept.
    With `copy=False` the first candidate of each (start, end) is updated in place (for
    candidates made for this call only)."""
    out: Dict[Tuple[int, int], SpanCandidate] = {}
    for s in spans:
        key = (s.start, s.end)
        have = out.get(key)
        if have is None:
            out[key] = SpanCandidate(s.start, s.end, s.label, s.score, list(s.sources), list(s.ids)) if copy else s
            continue
        if s.score > have.score:
            have.ids = list(s.ids) + [i for i in have.ids if i not in s.ids]
            have.score, have.label = s.score, s.label
        else:
            have.ids.extend(i for i in s.ids if i not in have.ids)
        have.sources.extend(x for x in s.sources if x not in have.sources)
    return out
