"""The name trie: token-id sequences of every KB name and alias, for constrained decoding.

A folder holds (no pickle; every array is memory-mapped on load):

    meta.json       counts, eos id, tokenizer fingerprint
    names.marisa    every distinct token sequence, encoded one character per token id;
                    the marisa key id is the sequence id
    seq_ent_ptr.npy, seq_ent.npy     sequence id -> KB entity rows (CSR)
    ent_seq_ptr.npy, ent_seq.npy     KB entity row -> sequence ids, canonical name first
    node_token.npy  token on the edge into each node (node 0 is the root)
    node_first.npy  index of a node's first child (children are contiguous, sorted by token)
    node_count.npy  number of children
    node_seq.npy    sequence id that ends at a node (-1 for inner nodes)

Nodes are numbered depth by depth over the sorted sequences, so the children of a node are a
contiguous, sorted slice: the allowed next tokens of a decoding state are one array view and
a step is one binary search, whatever the prefix length or the number of completions.
"""

import json
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import marisa_trie
import numpy as np

from ..errors import KBFormatError
from ..files import copy_files, mmap_array

FORMAT = "spacy-entlink-name-trie"
VERSION = 1
_SURROGATE_START = 0xD800
_SURROGATE_SPAN = 0x800
MAX_TOKEN_ID = 0x10FFFF - _SURROGATE_SPAN - 1


def encode_tokens(ids: Iterable[int]) -> str:
    """Token ids as a string, one code point per id, order-preserving (ids < ~1.1M)."""
    out = []
    for i in ids:
        c = int(i) + 1
        if c >= _SURROGATE_START:
            c += _SURROGATE_SPAN
        out.append(chr(c))
    return "".join(out)


def decode_tokens(key: str) -> List[int]:
    out = []
    for ch in key:
        c = ord(ch)
        if c >= _SURROGATE_START + _SURROGATE_SPAN:
            c -= _SURROGATE_SPAN
        out.append(c - 1)
    return out


def _csr(groups: int, keys: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Pointers and values of `values` grouped by `keys` (stable within a group)."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(groups + 1, dtype=np.int64)
    np.add.at(ptr, keys + 1, 1)
    return np.cumsum(ptr), values[order].astype(np.int32)


class NameTrie:
    """Token sequences of names mapped to KB entity rows, with O(1)-per-step traversal."""

    def __init__(self, path: Union[str, Path]):
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.exists():
            raise KBFormatError(f"{path} is not a name trie (no meta.json); build one with NameTrie.build")
        meta = json.loads(meta_file.read_text(encoding="utf8"))
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise KBFormatError(f"{meta_file}: unsupported name trie format {meta.get('format')!r} "
                                f"version {meta.get('version')!r}")
        self.path = path
        self.meta = meta
        self.eos_token_id: int = int(meta["eos_token_id"])
        try:
            self._names = marisa_trie.Trie().mmap(str(path / "names.marisa"))
            load = lambda name: mmap_array(path / name)  # noqa: E731
            self._seq_ent_ptr = load("seq_ent_ptr.npy")
            self._seq_ent = load("seq_ent.npy")
            self._ent_seq_ptr = load("ent_seq_ptr.npy")
            self._ent_seq = load("ent_seq.npy")
            self.node_token = load("node_token.npy")
            self.node_first = load("node_first.npy")
            self.node_count = load("node_count.npy")
            self.node_seq = load("node_seq.npy")
        except (OSError, ValueError, RuntimeError) as err:
            raise KBFormatError(f"{path}: incomplete or damaged name trie ({err})") from err

    # --- building ------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        sequences: Sequence[Sequence[int]],
        entity_rows: Sequence[int],
        path: Union[str, Path],
        *,
        n_entities: int,
        eos_token_id: int,
        fingerprint: str = "",
    ) -> "NameTrie":
        """Write a trie of `sequences` (each ending with `eos_token_id`) to `path`.

        `entity_rows[i]` is the KB row that `sequences[i]` names; a sequence named by several
        entities maps to all of them, in the order first given (give canonical names first).
        """
        if len(sequences) != len(entity_rows):
            raise ValueError(f"{len(sequences)} sequences but {len(entity_rows)} entity rows")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        keys: List[str] = []
        for i, seq in enumerate(sequences):
            seq = list(seq)
            if not seq or seq[-1] != eos_token_id or eos_token_id in seq[:-1]:
                raise ValueError(f"sequence {i} must end with the eos token {eos_token_id} (and only "
                                 f"there): {seq[:12]}")
            if max(seq) > MAX_TOKEN_ID or min(seq) < 0:
                raise ValueError(f"sequence {i} has a token id outside 0..{MAX_TOKEN_ID}")
            keys.append(encode_tokens(seq))
        trie = marisa_trie.Trie(keys)
        trie.save(str(path / "names.marisa"))
        n_seq = len(trie)
        seq_ids = np.fromiter((trie[k] for k in keys), dtype=np.int64, count=len(keys))
        rows = np.asarray(entity_rows, dtype=np.int64)
        # deduplicate (sequence, entity) pairs, keeping the first occurrence's order
        pair = seq_ids * max(n_entities, 1) + rows
        _, first = np.unique(pair, return_index=True)
        first.sort()
        seq_ids, rows = seq_ids[first], rows[first]
        seq_ent_ptr, seq_ent = _csr(n_seq, seq_ids, rows)
        ent_seq_ptr, ent_seq = _csr(n_entities, rows, seq_ids)
        # nodes, depth by depth over the lexicographically sorted sequences
        sorted_keys = sorted(trie.keys())
        lengths = np.fromiter((len(k) for k in sorted_keys), dtype=np.int64, count=n_seq)
        offsets = np.zeros(n_seq + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for k in sorted_keys for t in decode_tokens(k)), dtype=np.int32,
                           count=int(offsets[-1]))
        sorted_ids = np.fromiter((trie[k] for k in sorted_keys), dtype=np.int64, count=n_seq)
        node_token = [np.zeros(1, dtype=np.int32)]
        parents_all = [np.full(1, -1, dtype=np.int64)]
        node_seq = np.full(1, -1, dtype=np.int64)
        seq_parts = [node_seq]
        n_nodes = 1
        parent_of_row = np.zeros(n_seq, dtype=np.int64)  # node of each row at depth d-1
        for d in range(int(lengths.max()) if n_seq else 0):
            valid = np.flatnonzero(lengths > d)
            col = flat[offsets[valid] + d]
            # Rows with one prefix are contiguous (keys are sorted) and all still valid here
            # (a shorter row ends in eos, which no longer row has at that position), so a row
            # opens a new node unless the row above has the same parent node and token.
            new = np.ones(len(valid), dtype=bool)
            if len(valid) > 1:
                parents = parent_of_row[valid]
                new[1:] = (parents[1:] != parents[:-1]) | (col[1:] != col[:-1])
            ids = n_nodes + np.cumsum(new) - 1
            node_token.append(col[new])
            parents_all.append(parent_of_row[valid][new])
            seq_here = np.full(int(new.sum()), -1, dtype=np.int64)
            ends = lengths[valid] == d + 1
            seq_here[ids[ends] - n_nodes] = sorted_ids[valid[ends]]
            seq_parts.append(seq_here)
            n_nodes += int(new.sum())
            parent_of_row[valid] = ids
        token = np.concatenate(node_token).astype(np.int32)
        parents = np.concatenate(parents_all)
        node_seq = np.concatenate(seq_parts).astype(np.int32)
        first = np.zeros(n_nodes, dtype=np.int32)
        count = np.zeros(n_nodes, dtype=np.int32)
        child = np.arange(1, n_nodes)
        par = parents[1:]
        if len(par):
            uniq, start, cnt = np.unique(par, return_index=True, return_counts=True)
            first[uniq] = child[start]
            count[uniq] = cnt
        for name, arr in (("seq_ent_ptr", seq_ent_ptr), ("seq_ent", seq_ent), ("ent_seq_ptr", ent_seq_ptr),
                          ("ent_seq", ent_seq), ("node_token", token), ("node_first", first),
                          ("node_count", count), ("node_seq", node_seq)):
            np.save(path / f"{name}.npy", arr)
        meta = {"format": FORMAT, "version": VERSION, "sequences": n_seq, "nodes": n_nodes,
                "entities": n_entities, "eos_token_id": int(eos_token_id), "fingerprint": fingerprint}
        (path / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf8")
        return cls(path)

    def to_disk(self, path: Union[str, Path]) -> None:
        """Copy the trie's files to `path` (a no-op when it already lives there)."""
        copy_files(self.path, path)

    # --- lookups -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._names)

    @property
    def n_nodes(self) -> int:
        return int(self.meta["nodes"])

    @property
    def fingerprint(self) -> str:
        return str(self.meta.get("fingerprint", ""))

    def sequence_id(self, tokens: Sequence[int]) -> Optional[int]:
        """Id of a complete token sequence (ending with eos), or None."""
        return self._names.get(encode_tokens(tokens))

    def sequence(self, seq_id: int) -> List[int]:
        return decode_tokens(self._names.restore_key(int(seq_id)))

    def entities_of(self, seq_id: int) -> np.ndarray:
        """KB rows named by a sequence."""
        return self._seq_ent[int(self._seq_ent_ptr[seq_id]) : int(self._seq_ent_ptr[seq_id + 1])]

    def sequences_of(self, entity_row: int) -> np.ndarray:
        """Sequence ids of an entity's names (canonical name first)."""
        if entity_row + 1 >= len(self._ent_seq_ptr):
            return self._ent_seq[:0]
        return self._ent_seq[int(self._ent_seq_ptr[entity_row]) : int(self._ent_seq_ptr[entity_row + 1])]

    def children(self, node: int) -> np.ndarray:
        """Allowed next tokens at `node` (a sorted view; empty at a leaf)."""
        f = int(self.node_first[node])
        return self.node_token[f : f + int(self.node_count[node])]

    def step(self, node: int, token: int) -> int:
        """The child of `node` along `token`, or -1."""
        f = int(self.node_first[node])
        n = int(self.node_count[node])
        if n == 0:
            return -1
        kids = self.node_token[f : f + n]
        i = int(np.searchsorted(kids, token))
        return f + i if i < n and int(kids[i]) == token else -1

    def walk(self, tokens: Sequence[int], node: int = 0) -> int:
        for t in tokens:
            node = self.step(node, int(t))
            if node < 0:
                return -1
        return node

    def sequence_at(self, node: int) -> int:
        """Sequence id that ends at `node`, or -1."""
        return int(self.node_seq[node]) if node >= 0 else -1


class PrefixConstraint:
    """`prefix_allowed_tokens_fn` for Hugging Face `generate`: the tokens that continue a name.

    Decoding states are cached by prefix, so each call does one trie step from its parent's
    state (the prefix minus its last token), never a walk from the root. A prefix that left
    the trie, or one that has finished, gets `fallback` (eos and pad), so the list is never
    empty.
    """

    def __init__(self, trie: NameTrie, *, skip: int = 1, fallback: Sequence[int] = ()):
        self.trie = trie
        self.skip = skip
        self.fallback = sorted({int(t) for t in fallback} | {trie.eos_token_id})
        self._states: Dict[Tuple[int, ...], int] = {(): 0}
        self.calls = 0
        self.steps = 0
        self.seconds = 0.0  # time spent in this function (the trie's share of decoding)

    def state(self, prefix: Tuple[int, ...]) -> int:
        node = self._states.get(prefix)
        if node is None:
            parent = self.state(prefix[:-1])
            node = self.trie.step(parent, prefix[-1]) if parent >= 0 else -1
            self._states[prefix] = node
            self.steps += 1
        return node

    def __call__(self, batch_id: int, input_ids) -> List[int]:
        t = time.perf_counter()
        self.calls += 1
        prefix = tuple(input_ids.tolist()[self.skip :])
        node = self.state(prefix)
        kids = self.trie.children(node) if node >= 0 else ()
        allowed = kids.tolist() if len(kids) else self.fallback
        self.seconds += time.perf_counter() - t
        return allowed
