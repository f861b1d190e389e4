"""Capacity: a KB of 10^6 entities and 5x10^6 aliases builds in minutes and bounded memory.

Slow (a few minutes): run with `pytest --runslow tests/kb/test_capacity.py -s` or
ENTLINK_SLOW=1. Build time, peak RSS and load time are printed.
"""

import random
import resource
import sys
import time

import numpy as np
import pytest

from spacy_entlink.kb import EntityRecord, KnowledgeBase

from . import make_names, make_words

N_ENTITIES = 1_000_000
N_ALIASES = 5_000_000
MAX_RSS_GB = 12.0


def peak_rss_gb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kb / (1 << 30) if sys.platform == "darwin" else kb / (1 << 20)


@pytest.mark.slow
def test_build_one_million_entities_five_million_aliases(tmp_path):
    t0 = time.perf_counter()
    rng = np.random.default_rng(2024)
    vocab = make_words(rng, N_ENTITIES // 4)
    names = make_names(rng, N_ENTITIES, vocab)
    aliases = make_names(rng, N_ALIASES, vocab)
    counts = rng.multinomial(N_ALIASES, np.full(N_ENTITIES, 1.0 / N_ENTITIES))
    ptr = np.concatenate([[0], np.cumsum(counts)]).tolist()
    print(f"\ngenerated {N_ENTITIES:,} names + {N_ALIASES:,} aliases in {time.perf_counter() - t0:.1f}s; "
          f"RSS before the build {peak_rss_gb():.2f} GB", flush=True)

    def records():
        for i in range(N_ENTITIES):
            yield EntityRecord(
                id=f"SYN:{i:07d}", name=names[i], aliases=aliases[ptr[i] : ptr[i + 1]],
                prior=float(i % 101), type=("Disease", "Chemical", "Gene")[i % 3],
                alt_ids=[f"ALT:{i}"] if i % 10 == 0 else [],
            )

    t0 = time.perf_counter()
    kb = KnowledgeBase.build(records(), tmp_path / "big")
    build_s = time.perf_counter() - t0
    rss = peak_rss_gb()
    t0 = time.perf_counter()
    kb = KnowledgeBase.from_disk(tmp_path / "big")
    load_s = time.perf_counter() - t0
    size_gb = sum(f.stat().st_size for f in (tmp_path / "big").iterdir()) / (1 << 30)
    print(f"build {build_s:.1f}s, peak RSS {rss:.2f} GB, load {load_s * 1000:.1f} ms, "
          f"{kb.n_aliases:,} alias keys, {size_gb:.2f} GB on disk", flush=True)

    assert len(kb) == N_ENTITIES
    expected_aliases = 0
    for i in range(N_ENTITIES):
        own = set(aliases[ptr[i] : ptr[i + 1]])
        own.discard(names[i])
        expected_aliases += len(own)
    assert kb.meta["n_aliases"] == expected_aliases
    assert kb.meta["n_alt_ids"] == N_ENTITIES // 10
    assert N_ENTITIES // 4 < kb.n_aliases <= N_ENTITIES + N_ALIASES
    assert rss < MAX_RSS_GB
    assert load_s < 5.0  # memory-mapped: opening reads almost nothing

    rnd = random.Random(0)
    t0 = time.perf_counter()
    for i in rnd.sample(range(N_ENTITIES), 50):
        eid = f"SYN:{i:07d}"
        row = kb.row_of(eid)
        assert kb.get_id(row) == eid and kb.get_name(row) == names[i]
        assert kb.get_aliases(row) == [a for a in dict.fromkeys(aliases[ptr[i] : ptr[i + 1]]) if a != names[i]]
        assert kb.get_prior(row) == float(i % 101)
        cands = kb.get_candidates(names[i])
        assert any(c.row == row and c.is_name for c in cands)
        assert [c.is_name for c in cands] == sorted((c.is_name for c in cands), reverse=True)
        if i % 10 == 0:
            assert kb.row_of(f"ALT:{i}") == row
        key = kb.normalize(names[i])
        if len(key) >= 6:
            typo = key[:2] + key[3:]  # one deletion
            assert kb.alias_row(key) in {r for r, _, _ in kb.fuzzy_search(typo, 1, limit=10**6)}
    print(f"50 entity lookups with candidates and fuzzy search: {time.perf_counter() - t0:.2f}s")
