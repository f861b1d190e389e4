"""Writing a KnowledgeBase folder from entity records (see `base.py` for the layout)."""

import json
import math
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import marisa_trie
import numpy as np
from tqdm import tqdm

from ..errors import DataError, problem_pattern, text_problem
from ..files import atomic_folder
from ..text import NormalizerConfig, get_normalizer
from .base import resolve_row
from .grams import compiled_postings, write_key_texts, write_postings
from .neighbours import write_word_deletes
from .numbering import number_strings, positions
from .variants import adjective_variants
from .strings import write_strings
from .word_index import WORD_INDEX_VERSION, write_word_index


_CONTROL_OR_SURROGATE = problem_pattern(controls=False)  # tab is allowed: the joiner below
_SURROGATE = problem_pattern()


def _texts_fine(rec) -> bool:
    """A quick screen of one record: True when its id, name, aliases and alternative ids are
    strings without control characters (tab allowed) or lone surrogates, and its description
    and type are empty or strings without lone surrogates, i.e. when the character checks of
    `_check_record` would all pass (one search over the joined strings instead of one per string)."""
    try:
        joined = "\t".join([rec.id, rec.name, *(rec.aliases or ()), *(rec.alt_ids or ())])
    except TypeError:  # a value that is not a string
        return False
    if _CONTROL_OR_SURROGATE.search(joined):
        return False
    for value in (rec.description, rec.type):
        if value and (not isinstance(value, str) or _SURROGATE.search(value)):
            return False
    return True


def _check_record(rec, seen: Dict[str, int]) -> None:
    where = (rec.source, rec.line)
    if not isinstance(rec.id, str) or not rec.id.strip():
        raise DataError(*where, "entity without an id")
    if rec.id != rec.id.strip() or "\t" in rec.id or "\n" in rec.id:
        raise DataError(*where, f"entity id {rec.id!r} has surrounding whitespace, a tab or a newline")
    fine = _texts_fine(rec)
    if not fine:
        bad = text_problem(rec.id, controls=False)
        if bad:
            raise DataError(*where, f"entity id {rec.id!r} contains {bad}")
    if not isinstance(rec.name, str) or not rec.name.strip():
        raise DataError(*where, f"entity {rec.id!r} has no name")
    if not fine:
        _check_names(rec)
        for field in ("description", "type"):
            value = getattr(rec, field)
            bad = text_problem(value) if isinstance(value, str) else f"a {type(value).__name__}, not a string"
            if value and bad:
                raise DataError(*where, f"the {field} of entity {rec.id!r} contains {bad}")
        for alt in rec.alt_ids or ():
            bad = text_problem(alt, controls=False) if isinstance(alt, str) else "not a string"
            if bad:
                raise DataError(*where, f"alternative id {alt!r} of entity {rec.id!r}: {bad}")
    if rec.parents and (not isinstance(rec.parents, (list, tuple)) or not all(isinstance(p, str) for p in rec.parents)):
        raise DataError(*where, f"the parents of entity {rec.id!r} must be a list of entity ids (strings)")
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


def _write_parents(path: Path, parents: List[List[str]], order: np.ndarray, id_trie, alt_trie,
                   alt_rows: np.ndarray) -> Tuple[int, int]:
    """`parents.npy`/`parents_ptr.npy`: each row's broader entities (rows, first-given order,
    no repeats, never itself); returns (links written, parent ids that name no entity)."""
    flat: List[int] = []
    ptr = np.zeros(len(order) + 1, dtype=np.int64)
    unresolved = 0
    for row, i in enumerate(order.tolist()):
        own = []
        for pid in parents[i]:
            r = resolve_row(id_trie, alt_trie, alt_rows, pid)
            if r is None:
                unresolved += 1
            elif r != row and r not in own:
                own.append(int(r))
        flat += own
        ptr[row + 1] = len(flat)
    np.save(path / "parents.npy", np.asarray(flat, dtype=np.uint32))
    np.save(path / "parents_ptr.npy", ptr)
    return len(flat), unresolved


def _check_names(rec) -> None:
    """DataError when the name or an alias of `rec` holds a control character, a line break
    (in a CSV source usually an unterminated quote) or a lone surrogate."""
    for what, value in [("name", rec.name)] + [("alias", a) for a in rec.aliases or ()]:
        if not isinstance(value, str):
            raise DataError(rec.source, rec.line, f"{what} {value!r} of entity {rec.id!r} is not a string")
        bad = text_problem(value, controls=False)
        if bad:
            hint = " (an unterminated quote in a CSV file?)" if "line break" in bad else ""
            raise DataError(rec.source, rec.line, f"the {what} {value[:60]!r} of entity {rec.id!r} contains {bad}{hint}")


def _extend_aliases(extra: Iterable, ids: List[str], names: List[str], aliases: List[List[str]]) -> None:
    index_of = {eid: i for i, eid in enumerate(ids)}
    for rec in extra:
        i = index_of.get(rec.id)
        if i is None:
            raise DataError(rec.source, rec.line, f"aliases for an entity id not in the KB: {rec.id!r}")
        _check_names(rec)
        have = {names[i], *aliases[i]}
        for a in rec.aliases:
            a = a.strip()
            if a and a not in have:
                have.add(a)
                aliases[i].append(a)


def _bits(n: int) -> int:
    """Bits needed for the numbers 0..n-1."""
    return max(1, int(n - 1).bit_length())


def _keys_by_id(trie: marisa_trie.Trie) -> List[str]:
    """The keys of `trie` by key id (`restore_key` over the ids: no look-up per key)."""
    return list(map(trie.restore_key, range(len(trie))))


def write_kb(
    records: Iterable,
    path: Path,
    normalizer: NormalizerConfig,
    fuzzy_index: bool = True,
    progress: bool = False,
    name: str = "",
    extra_aliases: Optional[Iterable] = None,
    adjectives: bool = False,
) -> None:
    """Read all records, normalise their names and write the KB files to `path`.

    The files are written to a temporary sibling folder that replaces `path` only once
    complete, so a failed or interrupted build leaves what was at `path` as it was.
    `extra_aliases`: records (id + aliases) whose aliases are added to existing entities.
    `adjectives`: also key every name by its adjectival variant (see `variants.py`).
    """
    with atomic_folder(path, "KB output") as tmp:
        _write_kb_files(records, tmp, normalizer, fuzzy_index, progress, name, extra_aliases, adjectives)


def _write_kb_files(records: Iterable, path: Path, normalizer: NormalizerConfig, fuzzy_index: bool, progress: bool,
                    name: str, extra_aliases: Optional[Iterable], adjectives: bool) -> None:
    t0 = time.time()

    def say(message: str) -> None:
        if progress:
            print(f"[{time.time() - t0:6.1f} s] {message}", flush=True)

    norm = get_normalizer(normalizer)
    seen: Dict[str, int] = {}
    ids: List[str] = []
    names: List[str] = []
    descs: List[str] = []
    types: List[str] = []
    priors: List[float] = []
    aliases: List[List[str]] = []
    alt: List[tuple] = []
    parents: List[List[str]] = []
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
        parents.append(rec.parents or [])
    n = len(ids)
    if n == 0:
        raise DataError(None, None, "no entities to build a knowledge base from")
    if extra_aliases is not None:
        _extend_aliases(extra_aliases, ids, names, aliases)

    # Entity rows are the key ids of the id trie, so an id maps to its row with no table.
    # (Walking the trie once is several times faster than looking up every id in it.)
    id_trie = marisa_trie.Trie(ids)
    order = positions(_keys_by_id(id_trie), ids)  # order[row] = index in input
    id_trie.save(str(path / "ids.marisa"))
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    order_l = order.tolist()

    type_names = sorted(set(types))
    type_code = {t: i for i, t in enumerate(type_names)}
    np.save(path / "types.npy", np.array([type_code[types[i]] for i in order_l], dtype=np.uint16))
    prior_arr = np.array(priors, dtype=np.float32)
    prior_by_row = prior_arr[order]
    np.save(path / "priors.npy", prior_by_row)
    write_strings(path, "names", (names[i] for i in order_l))
    write_strings(path, "desc", (descs[i] for i in order_l))
    n_own = np.fromiter((len(a) for a in aliases), dtype=np.int64, count=n)
    ent_alias_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_own[order], out=ent_alias_ptr[1:])
    np.save(path / "ent_alias_ptr.npy", ent_alias_ptr)
    write_strings(path, "aliases", (a for i in order_l for a in aliases[i]))
    del order_l, descs, types

    # Alternative ids (only those that are not primary ids themselves).
    alt = [(a, r) for a, r in alt if a not in id_trie]
    alt_trie = marisa_trie.Trie([a for a, _ in alt])
    alt_rows = np.zeros(len(alt_trie), dtype=np.uint32)
    for a, i in alt:
        alt_rows[alt_trie[a]] = inv[i]
    alt_trie.save(str(path / "alt_ids.marisa"))
    np.save(path / "alt_rows.npy", alt_rows)
    del alt
    n_parent_links, unresolved = _write_parents(path, parents, order, id_trie, alt_trie, alt_rows)
    if unresolved:
        say(f"{unresolved:,} parent ids name no entity of this KB and were left out")
    del id_trie, parents

    # Normalised alias keys -> entity rows. Every name and alias is normalised once (in
    # chunks of one flat list), keys are numbered in first-seen order (`number_strings`), and
    # the (key, entity) pairs are deduplicated and ordered by packed-uint64 sorts.
    say(f"normalising {n + int(n_own.sum()):,} names and aliases")
    surfaces = names + [a for al in aliases for a in al]
    ent = np.concatenate([np.arange(n, dtype=np.int64), np.repeat(np.arange(n, dtype=np.int64), n_own)])
    is_name = np.zeros(len(surfaces), dtype=bool)
    is_name[:n] = True
    del names, aliases
    if adjectives:
        derived, src = adjective_variants(surfaces)
        surfaces += derived
        ent = np.concatenate([ent, ent[np.asarray(src, dtype=np.int64)]])
        is_name = np.concatenate([is_name, np.zeros(len(derived), dtype=bool)])
    keys: List[str] = []
    with tqdm(total=len(surfaces), desc="normalising names", unit=" name", disable=not progress,
              mininterval=0.5) as bar:
        for start in range(0, len(surfaces), 50_000):
            keys += norm.normalize_keys(surfaces[start : start + 50_000])
            bar.update(min(50_000, len(surfaces) - start))
    del surfaces
    loc, dkeys = number_strings(keys)  # dkeys: the distinct keys, by local number
    del keys
    try:
        empty = dkeys.index("")
    except ValueError:
        empty = None
    if empty is not None:  # names that normalise to nothing ("???") give no key
        del dkeys[empty]
        keep = loc != empty
        loc, ent, is_name = loc[keep], ent[keep], is_name[keep]
        loc[loc > empty] -= 1
    n_keys = len(dkeys)
    say(f"building tries over {n_keys:,} alias keys")

    # One (key, entity) pair per entity and key; the entity's name wins over its aliases.
    ent_bits, key_bits = _bits(n), _bits(n_keys)
    if ent_bits + key_bits + 1 <= 64:
        pair = (loc.astype(np.uint64) << np.uint64(ent_bits + 1)) | (ent.astype(np.uint64) << np.uint64(1)) | (~is_name).astype(np.uint64)
        pair.sort()
        first = np.ones(len(pair), dtype=bool)
        np.not_equal(pair[1:] >> np.uint64(1), pair[:-1] >> np.uint64(1), out=first[1:])
        pair = pair[first]
        loc = (pair >> np.uint64(ent_bits + 1)).astype(np.int64)
        ent = ((pair >> np.uint64(1)) & np.uint64((1 << ent_bits) - 1)).astype(np.int64)
        is_name = (pair & np.uint64(1)) == 0
        del pair, first
    else:  # pragma: no cover - more than 2**63 (key, entity) combinations
        srt = np.lexsort((~is_name, ent, loc))
        loc, ent, is_name = loc[srt], ent[srt], is_name[srt]
        first = np.ones(len(loc), dtype=bool)
        first[1:] = (loc[1:] != loc[:-1]) | (ent[1:] != ent[:-1])
        loc, ent, is_name = loc[first], ent[first], is_name[first]

    # The key trie; its weights (entities per key) match building it from every pair.
    counts = np.bincount(loc, minlength=n_keys)
    key_trie = marisa_trie.Trie(dkeys, weights=counts.tolist())
    key_trie.save(str(path / "keys.marisa"))
    keys_by_tid = _keys_by_id(key_trie)
    loc_of = positions(keys_by_tid, dkeys)
    del dkeys
    loc2tid = np.empty(n_keys, dtype=np.int64)
    loc2tid[loc_of] = np.arange(n_keys, dtype=np.int64)
    del loc_of

    # Sort by alias, then canonical names first, then higher prior, then row.
    kid = loc2tid[loc]
    rows = inv[ent]
    rank_order = np.lexsort((np.arange(n), -prior_by_row))  # rows, best first
    rank = np.empty(n, dtype=np.int64)
    rank[rank_order] = np.arange(n)
    if ent_bits + key_bits + 1 <= 64:
        packed = (kid.astype(np.uint64) << np.uint64(ent_bits + 1)) | ((~is_name).astype(np.uint64) << np.uint64(ent_bits)) | rank[rows].astype(np.uint64)
        packed.sort()
        key_ent = rank_order[(packed & np.uint64((1 << ent_bits) - 1)).astype(np.int64)]
        key_canon = ((packed >> np.uint64(ent_bits)) & np.uint64(1)) == 0
        del packed
    else:  # pragma: no cover
        srt = np.lexsort((rows, -prior_by_row[rows], ~is_name, kid))
        key_ent, key_canon = rows[srt], is_name[srt]
    np.save(path / "key_ent.npy", key_ent.astype(np.uint32))
    np.save(path / "key_canon.npy", key_canon.astype(np.uint8))
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(kid, minlength=n_keys), out=ptr[1:])
    np.save(path / "key_ptr.npy", ptr)
    del kid, rows, loc, ent, is_name, key_ent, key_canon

    vocab = set()
    for start in range(0, n_keys, 200_000):
        vocab.update(" ".join(keys_by_tid[start : start + 200_000]).split(" "))
    words = marisa_trie.Trie(vocab)
    words.save(str(path / "words.marisa"))
    say(f"building the one-edit neighbourhood of {len(vocab):,} words")
    write_word_deletes(words.iterkeys(), path)
    del words
    say(f"building the word index of {n_keys:,} alias keys")
    word_index = write_word_index(vocab, keys_by_tid, path)
    del vocab

    if fuzzy_index:
        say("building the trigram index for fuzzy matching")
        texts = write_key_texts(keys_by_tid, path)
        keys = None if compiled_postings() else keys_by_tid  # the compiled builder reads the texts
        del keys_by_tid
        write_postings(path, *texts, keys)
        del texts, keys
    else:
        del keys_by_tid

    meta = {
        "format": "spacy-entlink-kb",
        "version": 1,
        "name": name,
        "n_entities": n,
        "n_alias_keys": n_keys,
        "n_aliases": int(ent_alias_ptr[-1]),
        "n_alt_ids": len(alt_trie),
        "n_parent_links": n_parent_links,
        "n_parents_unresolved": unresolved,
        "types": type_names,
        "normalizer": normalizer.to_dict(),
        "fuzzy_index": bool(fuzzy_index),
        "adjectives": bool(adjectives),
        "word_index": WORD_INDEX_VERSION if word_index else None,
        "build_seconds": round(time.time() - t0, 2),
    }
    # meta.json is written last: a folder without it is an unfinished build.
    (path / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf8")
    say("done")
