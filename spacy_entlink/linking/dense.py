"""Dense candidates: KB names and aliases embedded with a sentence encoder (default: the
embedded all-MiniLM-L6-v2), searched by cosine similarity for mentions that no alias matched
(e.g. "decreased renal function" -> "Renal Insufficiency").

A folder holds `vectors.npy` (float16, L2-normalised, one row per name) and `rows.npy` (the
KB row of each name), plus `meta.json`.
"""

import json
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from ..errors import KBFormatError
from ..files import copy_files, mmap_array
from ..kb import KnowledgeBase
from ..models.hf import resolve_model_name


class SentenceEncoder:
    """Mean-pooled, L2-normalised embeddings from a Hugging Face encoder."""

    def __init__(self, name: Optional[str] = None, max_length: int = 32):
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_name(name)
        self.name = name or ""
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.max_length = max_length

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        out = []
        order = np.argsort([len(t) for t in texts], kind="stable")
        for i in tqdm(range(0, len(texts), batch_size), desc="embedding names", unit="batch",
                      disable=not progress, mininterval=2):
            part = [texts[j] for j in order[i : i + batch_size]]
            enc = self.tokenizer(part, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            h = self.model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)
            out.append(v.numpy())
        if not out:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        vecs = np.concatenate(out)
        result = np.empty_like(vecs)
        result[order] = vecs
        return result


class DenseIndex:
    """Name embeddings of a KB, searched exactly (one matrix product per batch of mentions)."""

    def __init__(self, path: Union[str, Path], encoder: Optional[SentenceEncoder] = None):
        path = Path(path)
        try:
            self.meta = json.loads((path / "meta.json").read_text(encoding="utf8"))
            self.vectors = mmap_array(path / "vectors.npy")
            self.rows = mmap_array(path / "rows.npy")
        except (OSError, ValueError) as err:
            raise KBFormatError(f"{path}: not a dense name index ({err})") from err
        self.path = path
        self._encoder = encoder
        self._matrix: Optional[np.ndarray] = None

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = SentenceEncoder(self.meta.get("model") or None)
        return self._encoder

    @classmethod
    def build(cls, kb: KnowledgeBase, path: Union[str, Path], encoder: SentenceEncoder, *,
              progress: bool = False) -> "DenseIndex":
        texts: List[str] = []
        rows: List[int] = []
        for row in range(len(kb)):  # rows ascend: `similarities` looks them up by bisection
            for name in dict.fromkeys([kb.get_name(row)] + kb.get_aliases(row)):
                if name:
                    texts.append(name)
                    rows.append(row)
        vectors = encoder.encode(texts, progress=progress).astype(np.float16)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "vectors.npy", vectors)
        np.save(path / "rows.npy", np.asarray(rows, dtype=np.int32))
        (path / "meta.json").write_text(json.dumps({"model": encoder.name, "names": len(texts),
                                                    "entities": len(kb)}), encoding="utf8")
        return cls(path, encoder)

    def to_disk(self, path: Union[str, Path]) -> None:
        copy_files(self.path, path)

    def similarities(self, vector: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """For each KB row, the highest cosine similarity between `vector` (an L2-normalised
        embedding from `encoder`) and the row's names (0 for a row without names)."""
        out = np.zeros(len(rows), dtype=np.float64)
        if not len(rows) or len(self.rows) == 0:
            return out
        q = np.asarray(vector, dtype=np.float32)
        starts = np.searchsorted(self.rows, rows, side="left")
        ends = np.searchsorted(self.rows, rows, side="right")
        for i, (a, b) in enumerate(zip(starts, ends)):
            if b > a:
                out[i] = float((np.asarray(self.vectors[a:b], dtype=np.float32) @ q).max())
        return out

    def search(self, texts: Sequence[str], k: int = 8) -> List[List[int]]:
        """Up to `k` distinct KB rows per text, most similar name first."""
        if not texts or len(self.rows) == 0:
            return [[] for _ in texts]
        q = self.encoder.encode(texts).astype(np.float32)
        if self._matrix is None:
            self._matrix = np.asarray(self.vectors, dtype=np.float32)
        sims = q @ self._matrix.T
        top = np.argsort(-sims, axis=1)[:, : 4 * k]
        out = []
        for idx in top:
            rows = list(dict.fromkeys(int(self.rows[i]) for i in idx))[:k]
            out.append(rows)
        return out
