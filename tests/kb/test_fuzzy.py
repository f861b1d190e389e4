"""Fuzzy search through the trigram index has exact recall: it returns exactly the alias keys
that a brute-force Levenshtein scan over all keys finds within the edit bound."""

import random
from collections import defaultdict

import marisa_trie
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from spacy_entlink.kb import EntityRecord, KnowledgeBase
from spacy_entlink.kb import grams as grams_module
from spacy_entlink.kb.grams import GramIndex, build_gram_index

from . import synthetic_names

N_ENTITIES = 2500
EXTRA_NAMES = ["Sjögren zorbitis", "болезнь Крона", "克罗恩病", "β-zorb", "zorb", "Zo", "a", "AB", "x y", "Ωmega toe"]


@pytest.fixture(scope="module")
def fuzzy_kb(tmp_path_factory):
    names = synthetic_names(N_ENTITIES * 3, seed=7, vocab_size=800)
    recs = [EntityRecord(f"S:{i}", names[3 * i], aliases=names[3 * i + 1 : 3 * i + 3]) for i in range(N_ENTITIES)]
    recs += [EntityRecord(f"X:{i}", n) for i, n in enumerate(EXTRA_NAMES)]
    kb = KnowledgeBase.build(recs, tmp_path_factory.mktemp("fuzzy") / "kb")
    keys = [kb.alias_key(r) for r in range(kb.n_aliases)]
    assert len(keys) > 5000
    return kb, keys


def brute_force(query, keys, max_edits):
    dist = cdist([query], keys, scorer=Levenshtein.distance, dtype=np.int32)[0]
    return {int(r): int(dist[r]) for r in np.flatnonzero(dist <= max_edits)}


def check(kb, keys, query, max_edits):
    results = kb.fuzzy_search(query, max_edits, limit=10**9)
    got = {row: d for row, d, _ in results}
    assert len(got) == len(results)
    expected = brute_force(query, keys, max_edits)
    assert got == expected, (query, max_edits, sorted(set(expected) ^ set(got))[:5])
    for row, d, sim in results:
        assert sim == pytest.approx(1.0 - d / max(len(query), len(keys[row]), 1))
    assert results == sorted(results, key=lambda t: (t[1], -t[2], t[0]))
    assert kb.fuzzy_search(query, max_edits, limit=3) == results[:3]
    return got


def random_edit(rng: random.Random, s: str, alphabet: str) -> str:
    op = rng.choice("isd") if s else "i"
    i = rng.randrange(len(s) + (op == "i"))
    if op == "i":
        return s[:i] + rng.choice(alphabet) + s[i:]
    if op == "s":
        return s[:i] + rng.choice(alphabet) + s[i + 1 :]
    return s[:i] + s[i + 1 :]


def test_recall_for_random_edits_equals_brute_force(fuzzy_kb):
    kb, keys = fuzzy_kb
    rng = random.Random(1)
    alphabet = "".join(sorted(set("".join(keys)))) + "qjwö"
    for _ in range(250):
        row = rng.randrange(len(keys))
        max_edits = rng.choice([1, 1, 2, 2, 3])
        query = keys[row]
        for _ in range(rng.randint(0, max_edits)):
            query = random_edit(rng, query, alphabet)
        got = check(kb, keys, query, max_edits)
        assert row in got  # the original is always found
        assert got[row] == Levenshtein.distance(query, keys[row])


def test_exact_keys_are_found_at_distance_zero(fuzzy_kb):
    kb, keys = fuzzy_kb
    for row in range(0, len(keys), 97):
        results = kb.fuzzy_search(keys[row], 2, limit=10**9)
        assert results[0][:2] == (row, 0) and results[0][2] == 1.0
    assert kb.fuzzy_search(keys[5], 0) == [(5, 0, 1.0)]
    assert kb.fuzzy_search(keys[5] + "q", 0) == []


@pytest.mark.parametrize("query", ["", "a", "zo", "zorb", "xy", "克罗", "abc", "toe", "chronic", "ZO", "b c"])
@pytest.mark.parametrize("max_edits", [1, 2, 3])
def test_short_queries_equal_brute_force(fuzzy_kb, query, max_edits):
    # Short queries have fewer than 3*max_edits + 1 trigrams: an alias can be within the
    # bound without sharing any trigram ("chronic" / "cirosis"), so the index must not filter
    # by trigrams there.
    kb, keys = fuzzy_kb
    check(kb, keys, query, max_edits)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.text(alphabet="aeioubcdlmnrstxyz Zβö克", max_size=14), st.integers(1, 3))
def test_arbitrary_queries_equal_brute_force(fuzzy_kb, query, max_edits):
    kb, keys = fuzzy_kb
    check(kb, keys, query, max_edits)


# --- the index files themselves ----------------------------------------------------------------


def naive_index(keys):
    """Reference: sorted distinct 63-bit trigram codes and the sorted rows of each."""
    post = defaultdict(set)
    for row, key in enumerate(keys):
        padded = f" {key} "
        for i in range(len(padded) - 2):
            a, b, c = (ord(ch) for ch in padded[i : i + 3])
            post[(a << 42) | (b << 21) | c].add(row)
    grams = sorted(post)
    lists = [sorted(post[g]) for g in grams]
    ptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    return np.array(grams, dtype=np.uint64), ptr, np.array([r for x in lists for r in x], dtype=np.uint32)


def load_index(path):
    """grams, ptr, postings as rows (each list sorted by row), key lengths; checks on the way
    that the postings hold gram ids (keys numbered by length, then row) in ascending order."""
    grams, ptr, post, key_len = (np.load(path / f) for f in ("grams.npy", "gram_ptr.npy", "gram_post.npy", "key_len.npy"))
    rows, lens = np.load(path / "gram_rows.npy"), np.load(path / "gram_len.npy")
    assert rows.tolist() == sorted(range(len(key_len)), key=lambda r: (int(key_len[r]), r))
    assert lens.tolist() == key_len[rows].tolist()
    lists = [post[a:b] for a, b in zip(ptr[:-1], ptr[1:])]
    assert all((np.diff(lst.astype(np.int64)) > 0).all() for lst in lists)
    as_rows = np.concatenate([np.sort(rows[lst]) for lst in lists] or [np.zeros(0, np.uint32)]).astype(np.uint32)
    return grams, ptr, as_rows, key_len


def random_keys(rng, n, lo, hi, max_len=12):
    """Random keys whose characters come from code points lo..hi (no surrogates)."""
    def char():
        while True:
            cp = rng.randint(lo, hi)
            if not 0xD800 <= cp <= 0xDFFF:
                return chr(cp)
    return sorted({"".join(char() for _ in range(rng.randint(1, max_len))) for _ in range(n)})


BUILDERS = [pytest.param(True, id="compiled"), pytest.param(False, id="numpy")]


@pytest.mark.parametrize("compiled", BUILDERS)
@pytest.mark.parametrize("chunk", [1_000_000, 7])
def test_index_matches_naive_reference_small_alphabet(tmp_path, chunk, compiled):
    if compiled and grams_module._scan is None:
        pytest.skip("the compiled extension is not built")
    keys = synthetic_names(400, seed=3) + ["a", "ab", "x y", "zzz zzz zzz", "a a a a"]
    keys = list(dict.fromkeys(keys))
    build_gram_index(keys, tmp_path, chunk=chunk, compiled=compiled)
    grams, ptr, post, key_len = load_index(tmp_path)
    ref = naive_index(keys)
    assert np.array_equal(grams, ref[0]) and np.array_equal(ptr, ref[1]) and np.array_equal(post, ref[2])
    assert key_len.tolist() == [len(k) for k in keys]


@pytest.mark.parametrize("compiled", BUILDERS)
def test_index_with_a_huge_alphabet_takes_the_wide_path(tmp_path, compiled):
    # > 2**17 distinct characters and 2**12 rows: dense trigram ids plus rows do not fit in
    # 64 bits, so the numpy builder must number trigrams by searchsorted instead (and the
    # compiled one's hash table must grow many times).
    if compiled and grams_module._scan is None:
        pytest.skip("the compiled extension is not built")
    rng = random.Random(5)
    keys = random_keys(rng, 3000, 0x3400, 0x10FFFF, max_len=110)
    n_chars = len(set("".join(keys)))
    assert n_chars > 2**17 and len(keys) > 2**11
    build_gram_index(keys, tmp_path, chunk=1000, compiled=compiled)
    grams, ptr, post, _ = load_index(tmp_path)
    ref = naive_index(keys)
    assert np.array_equal(grams, ref[0]) and np.array_equal(ptr, ref[1]) and np.array_equal(post, ref[2])


_KEY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@pytest.mark.skipif(grams_module._scan is None, reason="the compiled extension is not built")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(_KEY_TEXT, max_size=60, unique=True))
def test_compiled_and_numpy_builders_write_identical_files(tmp_path_factory, keys):
    """Any keys (no surrogates, as the KB build refuses those): the two builders' files agree
    byte for byte, including no keys at all."""
    files = ("grams.npy", "gram_ptr.npy", "gram_post.npy", "key_len.npy", "gram_rows.npy", "gram_len.npy",
             "gram_dir_ptr.npy", "gram_dir_len.npy", "gram_dir_off.npy")
    out = {}
    for compiled in (True, False):
        path = tmp_path_factory.mktemp("grams")
        build_gram_index(keys, path, chunk=7, compiled=compiled)
        out[compiled] = [np.load(path / f) for f in files]
    for name, a, b in zip(files, out[True], out[False]):
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_gram_index_search_on_unicode_keys(tmp_path):
    rng = random.Random(11)
    trie = marisa_trie.Trie(random_keys(rng, 1500, 0x3B1, 0x3C9, max_len=9) + random_keys(rng, 1500, 0x61, 0x7A, max_len=9))
    keys = [trie.restore_key(r) for r in range(len(trie))]  # rows are trie ids
    build_gram_index(keys, tmp_path)
    index = GramIndex.load(tmp_path)
    for _ in range(150):
        row = rng.randrange(len(keys))
        query = keys[row]
        for _ in range(rng.randint(0, 2)):
            query = random_edit(rng, query, "αβγδabcxyz")
        for max_edits in (1, 2):
            got = {r: d for r, d, _ in index.search(query, max_edits, trie, limit=10**9)}
            assert got == brute_force(query, keys, max_edits)
