"""A sparse context model: which words around a mention favour which words of a candidate's name.

A mention's candidates often differ by words its text lacks: "Leicestershire" can be the county
or "Leicestershire County Cricket Club", "Germany" the country or the "Germany national football
team". The model scores a candidate by weights of the name's words that are not in the mention,
alone and paired with each content word within `window` tokens of the mention ("innings" with
"cricket", "club"). Each feature is hashed into one of `buckets` weights; the weights are
learned from annotated mentions by a softmax over each mention's candidates, beside the
linker's calibration features, so that they learn what the frequency priors do not already
know. Its score is one more calibration feature of the linker (`GenreLinker.fit_context_model`).
"""

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from spacy.strings import hash_string
from spacy.tokens import Span

from ..errors import ConfigError

VERSION = 1
WORD = re.compile(r"[^\W_]+")  # word pieces; "_" separates (Wikipedia titles)
SAME = "<same>"  # the feature of a candidate whose name has no word the mention lacks
_MIX = np.uint64(0x9E3779B97F4A7C15)


def content_words(text: str, is_stop: Callable[[str], bool]) -> List[str]:
    """Lower-cased word pieces of `text` that are not stop words, in order (repeats kept)."""
    return [w for w in WORD.findall(text.lower()) if not is_stop(w)]


def context_words(span: Span, window: int) -> List[str]:
    """Distinct lower-cased content words within `window` tokens before and after `span`."""
    doc = span.doc
    out: Dict[str, None] = {}
    for token in list(doc[max(0, span.start - window) : span.start]) + list(doc[span.end : span.end + window]):
        if not (token.is_stop or token.is_punct or token.is_space):
            for w in WORD.findall(token.lower_):
                out[w] = None
    return list(out)


def _hashes(prefix: str, words: Sequence[str]) -> np.ndarray:
    return np.fromiter((hash_string(prefix + w) for w in words), dtype=np.uint64, count=len(words))


@dataclass
class ContextSample:
    """One annotated mention: its context words, each candidate's extra name words, the
    candidates' dense (calibration) features and the gold candidate's index."""

    context: List[str]
    names: List[List[str]]
    dense: np.ndarray
    gold: int


class ContextModel:
    """Hashed weights of (name word) and (context word, name word) features."""

    def __init__(self, weights: np.ndarray, window: int = 30, fitted_on: int = 0):
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.window = int(window)
        self.fitted_on = int(fitted_on)

    @property
    def buckets(self) -> int:
        return len(self.weights)

    # --- features -----------------------------------------------------------------------
    def span_context(self, span: Span) -> List[str]:
        """Distinct content words within `window` tokens before and after `span`."""
        return context_words(span, self.window)

    @staticmethod
    def extra_words(name: str, mention: str, is_stop: Callable[[str], bool]) -> List[str]:
        """The distinct content words of a candidate's `name` that `mention` lacks."""
        have = set(WORD.findall(mention.lower()))
        return list(dict.fromkeys(w for w in content_words(name, is_stop) if w not in have)) or [SAME]

    def feature_ids(self, context: Sequence[str], names: Sequence[Sequence[str]]) -> List[np.ndarray]:
        """The hashed feature ids of each candidate (`names[i]`: its extra name words)."""
        ctx = _hashes("c|", context)
        out = []
        for words in names:
            name = _hashes("n|", words)
            pairs = (ctx[:, None] * _MIX) ^ name[None, :]
            out.append((np.concatenate([name, pairs.ravel()]) % np.uint64(self.buckets)).astype(np.int64))
        return out

    def scores(self, context: Sequence[str], names: Sequence[Sequence[str]]) -> np.ndarray:
        """Each candidate's summed weights."""
        return np.array([float(self.weights[ids].sum()) for ids in self.feature_ids(context, names)], dtype=np.float64)

    # --- training -----------------------------------------------------------------------
    @classmethod
    def fit(cls, samples: Sequence[ContextSample], *, buckets: int = 1 << 20, window: int = 30, epochs: int = 2,
            learn_rate: float = 0.001, batch_size: int = 32, seed: int = 0,
            progress: Optional[Callable[[int], None]] = None) -> "ContextModel":
        """Learn the weights jointly with a linear layer over the samples' dense features (not
        kept: the calibration weighs those), by cross-entropy over each sample's candidates."""
        import torch

        if buckets < 2 or window < 0 or epochs < 1 or learn_rate <= 0:
            raise ConfigError(f"context model: buckets >= 2, window >= 0, epochs >= 1 and learn_rate > 0 "
                              f"(got {buckets}, {window}, {epochs}, {learn_rate})")
        model = cls(np.zeros(buckets, dtype=np.float32), window, 0)
        data = [s for s in samples if len(s.names) > 1 and 0 <= s.gold < len(s.names)]
        if not data:
            raise ConfigError("context model: no annotated mention with several candidates and the gold one among them")
        ids = [model.feature_ids(s.context, s.names) for s in data]
        n_dense = int(np.asarray(data[0].dense).shape[1])
        torch.manual_seed(seed)
        emb = torch.nn.EmbeddingBag(buckets, 1, mode="sum", sparse=True)
        torch.nn.init.zeros_(emb.weight)
        dense = torch.nn.Linear(n_dense, 1, bias=False)
        torch.nn.init.zeros_(dense.weight)
        sparse_opt = torch.optim.SparseAdam(list(emb.parameters()), lr=learn_rate)
        dense_opt = torch.optim.Adam(dense.parameters(), lr=0.02)
        order = list(range(len(data)))
        rng = random.Random(seed)
        for _ in range(epochs):
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                loss = torch.zeros(())
                for m in batch:
                    flat = np.concatenate(ids[m])
                    offsets = np.cumsum([0] + [len(x) for x in ids[m][:-1]])
                    z = emb(torch.from_numpy(flat), torch.from_numpy(offsets)).squeeze(-1)
                    z = z + dense(torch.as_tensor(np.asarray(data[m].dense), dtype=torch.float32)).squeeze(-1)
                    loss = loss + torch.nn.functional.cross_entropy(z[None], torch.tensor([data[m].gold]))
                sparse_opt.zero_grad()
                dense_opt.zero_grad()
                (loss / len(batch)).backward()
                sparse_opt.step()
                dense_opt.step()
                if progress is not None:
                    progress(len(batch))
        model.weights = emb.weight.detach().numpy()[:, 0].astype(np.float32)
        model.fitted_on = len(data)
        return model

    # --- serialization ------------------------------------------------------------------
    def to_disk(self, path: Union[str, Path]) -> None:
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({"weights": self.weights}, str(path / "weights.safetensors"))
        (path / "cfg.json").write_text(json.dumps({"version": VERSION, "window": self.window, "buckets": self.buckets,
                                                   "fitted_on": self.fitted_on}), encoding="utf8")

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "ContextModel":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        try:
            cfg = json.loads((path / "cfg.json").read_text(encoding="utf8"))
            weights = load_file(str(path / "weights.safetensors"))["weights"]
            window, buckets = int(cfg["window"]), int(cfg["buckets"])
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as err:
            raise ConfigError(f"{path}: not a saved context model ({err!r})") from None
        if cfg.get("version") != VERSION or weights.ndim != 1 or len(weights) != buckets or buckets < 2 or window < 0:
            raise ConfigError(f"{path}: a damaged or unknown context model (version {cfg.get('version')}, "
                              f"{weights.shape} weights for {buckets} buckets, window {window})")
        return cls(weights, window, int(cfg.get("fitted_on", 0)))


def stop_word_test(vocab) -> Callable[[str], bool]:
    """The language's stop-word test for plain strings (no lexemes added to `vocab`)."""
    from spacy.attrs import IS_STOP

    getter = vocab.lex_attr_getters.get(IS_STOP)
    return (lambda w: bool(getter(w))) if getter is not None else (lambda w: False)

