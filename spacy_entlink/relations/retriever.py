"""The retriever: a bi-encoder that embeds relation types (name + description) and windows
of text, and picks the top-k types of a window from an in-memory matrix index.

Trained with a multi-positive contrastive loss: a window's gold types against the other
windows' gold types of the batch (in-batch negatives) and the highest-scoring wrong types of
the current index (hard negatives). A label set no larger than the reader's number of
candidate markers needs no retrieval: every type is a candidate.
"""

import json
from pathlib import Path
from typing import List, Optional, Sequence, Set, Union

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, KBFormatError
from ..files import read_json_file
from ..models.hf import from_pretrained as hf_load, resolve_model_name


class Retriever(nn.Module):
    def __init__(self, encoder, tokenizer, max_length: int = 256):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.index: Optional[torch.Tensor]  # [n_types, dim], L2-normalised; moves with the module
        self.register_buffer("index", None, persistent=False)

    @classmethod
    def from_pretrained(cls, name: Optional[str] = None, **kwargs) -> "Retriever":
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_name(name)
        try:
            return cls(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), **kwargs)
        except (OSError, ValueError) as err:
            raise ConfigError(f"retriever model {name!r}: cannot load a Hugging Face encoder from {path!r} "
                              f"({err})") from err

    def save(self, path: Union[str, Path]) -> None:
        path = Path(path)
        self.encoder.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        if self.index is not None:
            np.save(path / "index.npy", self.index.cpu().numpy(), allow_pickle=False)
        (path / "retriever.json").write_text(json.dumps({"max_length": self.max_length}), encoding="utf8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Retriever":
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / "retriever.json").exists():
            raise KBFormatError(f"{path} is not a retriever folder (no retriever.json)")
        cfg = read_json_file(path / "retriever.json")
        if not isinstance(cfg, dict) or set(cfg) - {"max_length"}:
            raise KBFormatError(f"{path / 'retriever.json'}: expected an object with the retriever's max_length")
        r = cls(hf_load(AutoModel, path, "retriever", saved=True), hf_load(AutoTokenizer, path, "retriever"), **cfg)
        if (path / "index.npy").exists():
            r.index = torch.from_numpy(np.load(path / "index.npy", allow_pickle=False)).to(r.encoder.device)
        return r.eval()

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean-pooled, L2-normalised embeddings (with gradients when training)."""
        device = next(self.parameters()).device
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(device)
        h = self.encoder(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        return nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)

    @torch.no_grad()
    def build_index(self, type_texts: Sequence[str], batch_size: int = 256) -> None:
        was = self.training
        self.eval()
        parts = [self.embed(type_texts[i : i + batch_size]) for i in range(0, len(type_texts), batch_size)]
        self.index = torch.cat(parts) if parts else None
        self.train(was)

    @torch.no_grad()
    def retrieve(self, texts: Sequence[str], k: int) -> List[List[int]]:
        """The `k` best type indices of each text, best first."""
        if self.index is None:
            raise ConfigError("the retriever has no index: call build_index(types) first")
        was = self.training
        self.eval()
        scores = self.embed(texts) @ self.index.T
        self.train(was)
        k = min(k, scores.shape[1])
        return scores.topk(k, dim=1).indices.tolist()

    def loss(self, texts: Sequence[str], gold: Sequence[Set[int]], type_texts: Sequence[str],
             hard_negatives: int = 8, temperature: float = 0.05) -> Optional[torch.Tensor]:
        """Multi-positive InfoNCE of windows against their gold types, in-batch and hard negatives."""
        rows = [i for i, g in enumerate(gold) if g]
        if not rows:
            return None
        pool = sorted({t for i in rows for t in gold[i]})
        if hard_negatives and self.index is not None:
            for i, top in zip(rows, self.retrieve([texts[i] for i in rows], hard_negatives + len(gold[rows[0]]))):
                pool.extend(t for t in top if t not in gold[i])
        pool = sorted(set(pool))
        position = {t: p for p, t in enumerate(pool)}
        q = self.embed([texts[i] for i in rows])
        d = self.embed([type_texts[t] for t in pool])
        logits = q.float() @ d.float().T / temperature  # float32 also under bfloat16 autocast
        positive = torch.zeros_like(logits, dtype=torch.bool)
        for r, i in enumerate(rows):
            for t in gold[i]:
                positive[r, position[t]] = True
        return (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~positive, float("-inf")), 1)).mean()
