"""Writing a KnowledgeBase folder from entity records (see `base.py` for the layout)."""

import json
import math
import time
from pathlib import Path
from typing import Dict, Iterable, List

import marisa_trie
import numpy as np
from tqdm import tqdm

from ..errors import DataError
from ..text import NormalizerConfig, get_normalizer
from .grams import build_gram_index
from .strings import write_strings


def _check_record(rec, seen: Dict[str, int]) -> None:
    where = (rec.source, rec.line)
    if not isinstance(rec.id, str) or not rec.id.strip():
        raise DataError(*where, "entity without an id")
    if rec.id != rec.id.strip() or "\t" in rec.id or "\n" in rec.id:
        raise DataError(*where, f"entity id {rec.id!r} has surrounding whitespace, a tab or a newline")
    if not isinstance(rec.name, str) or not rec.name.strip():
        raise DataError(*where, f"entity {rec.id!r} has no name")
    if rec.id in seen:
        first = seen[rec.id]
        raise DataError(*where, f"duplicate entity id {rec.id!r} (first seen at line {first})")
    try:
        prior = float(rec.prior or 0.0)
    except (TypeError, ValueError):
        raise DataError(*where, f"prior {rec.prior!r} of entity {rec.id!r} is not a number") from None
    if math.isnan(prior) or math.isinf(prior):
        raise DataError(*where, f"prior {rec.prior!r} of entity {rec.id!r} is not finite")
    rec.prior = prior
    seen[rec.id] = rec.line if rec.line is not None else -1


def write_kb(
    records: Iterable,
    path: Path,
    normalizer: NormalizerConfig,
    fuzzy_index: bool = True,
    progress: bool = False,
    name: str = "",
) -> None:
    """Read all records, normalise their names and write the KB files to `path`."""
    t0 = time.time()
    path.mkdir(parents=True, exist_ok=True)
    (path / "meta.json").unlink(missing_ok=True)  # an interrupted rebuild must not look finished
    norm = get_normalizer(normalizer)
    seen: Dict[str, int] = {}
    ids: List[str] = []
    names: List[str] = []
    descs: List[str] = []
    types: List[str] = []
    priors: List[float] = []
    aliases: List[List[str]] = []
    alt: List[tuple] = []
    bar = tqdm(records, desc="reading entities", unit=" ent", disable=not progress, mininterval=0.5)
    for rec in bar:
        _check_record(rec, seen)
        ids.append(rec.id)
        names.append(rec.name.strip())
        descs.append(rec.description or "")
        types.append(rec.type or "")
        priors.append(rec.prior)
        own = []
        have = {rec.name.strip()}
        for a in rec.aliases or ():
            a = a.strip() if isinstance(a, str) else ""
            if a and a not in have:
                have.add(a)
                own.append(a)
        aliases.append(own)
        for a in rec.alt_ids or ():
            if a and a != rec.id:
                alt.append((a, len(ids) - 1))
    n = len(ids)
    if n == 0:
        raise DataError(None, None, "no entities to build a knowledge base from")

    # Entity rows are the key ids of the id trie, so an id maps to its row with no table.
    id_trie = marisa_trie.Trie(ids)
    order = np.empty(n, dtype=np.int64)  # order[row] = index in input
    for i, eid in enumerate(ids):
        order[id_trie[eid]] = i
    id_trie.save(str(path / "ids.marisa"))
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)

    type_names = sorted(set(types))
    type_code = {t: i for i, t in enumerate(type_names)}
    np.save(path / "types.npy", np.array([type_code[types[i]] for i in order], dtype=np.uint16))
    prior_arr = np.array(priors, dtype=np.float32)
    np.save(path / "priors.npy", prior_arr[order])
    write_strings(path, "names", (names[i] for i in order))
    write_strings(path, "desc", (descs[i] for i in order))
    ent_alias_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(aliases[i]) for i in order], out=ent_alias_ptr[1:])
    np.save(path / "ent_alias_ptr.npy", ent_alias_ptr)
    write_strings(path, "aliases", (a for i in order for a in aliases[i]))

    # Alternative ids (only those that are not primary ids themselves).
    alt = [(a, r) for a, r in alt if a not in id_trie]
    alt_trie = marisa_trie.Trie([a for a, _ in alt])
    alt_rows = np.zeros(len(alt_trie), dtype=np.uint32)
    for a, i in alt:
        alt_rows[alt_trie[a]] = inv[i]
    alt_trie.save(str(path / "alt_ids.marisa"))
    np.save(path / "alt_rows.npy", alt_rows)

    # Normalised alias keys -> entity rows.
    key_list: List[str] = []
    key_row: List[int] = []
    key_canon: List[bool] = []
    bar = tqdm(total=n, desc="normalising names", unit=" ent", disable=not progress, mininterval=0.5)
    for i in range(n):
        row = int(inv[i])
        done = set()
        for j, surface in enumerate([names[i]] + aliases[i]):
            k = norm.normalize_key(surface)
            if not k or k in done:
                continue
            done.add(k)
            key_list.append(k)
            key_row.append(row)
            key_canon.append(j == 0)
        bar.update(1)
    bar.close()
    if progress:
        print(f"building tries over {len(key_list):,} alias keys", flush=True)
    key_trie = marisa_trie.Trie(key_list)
    key_trie.save(str(path / "keys.marisa"))
    kid = np.fromiter((key_trie[k] for k in key_list), dtype=np.int64, count=len(key_list))
    rows = np.asarray(key_row, dtype=np.int64)
    canon = np.asarray(key_canon, dtype=bool)
    # Sort by alias, then canonical names first, then higher prior, then row.
    srt = np.lexsort((rows, -prior_arr[order][rows], ~canon, kid))
    np.save(path / "key_ent.npy", rows[srt].astype(np.uint32))
    np.save(path / "key_canon.npy", canon[srt].astype(np.uint8))
    ptr = np.zeros(len(key_trie) + 1, dtype=np.int64)
    np.cumsum(np.bincount(kid, minlength=len(key_trie)), out=ptr[1:])
    np.save(path / "key_ptr.npy", ptr)
    del kid, rows, canon, srt

    words = marisa_trie.Trie({w for k in key_trie.iterkeys() for w in k.split(" ")})
    words.save(str(path / "words.marisa"))

    if fuzzy_index:
        if progress:
            print("building the trigram index for fuzzy matching", flush=True)
        build_gram_index([key_trie.restore_key(r) for r in range(len(key_trie))], path)

    meta = {
        "format": "spacy-entlink-kb",
        "version": 1,
        "name": name,
        "n_entities": n,
        "n_alias_keys": len(key_trie),
        "n_aliases": int(ent_alias_ptr[-1]),
        "n_alt_ids": len(alt_trie),
        "types": type_names,
        "normalizer": normalizer.to_dict(),
        "fuzzy_index": bool(fuzzy_index),
        "build_seconds": round(time.time() - t0, 2),
    }
    # meta.json is written last: a folder without it is an unfinished build.
    (path / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf8")
