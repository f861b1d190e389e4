"""The compiled scan (`matching/_scan.c`, issue 19) against the pure-Python reference: the same
words, word offsets, breaks and exact matches on any text, for the demo KB and random KBs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import example, given
from hypothesis import strategies as st

from spacy_entlink.errors import KBFormatError
from spacy_entlink.kb import EntityRecord, KnowledgeBase, read_source
from spacy_entlink.kb import word_index
from spacy_entlink.kb.word_index import scan_text
from spacy_entlink.matching.exact import ExactMatcher, word_breaks
from spacy_entlink.pipeline.dictionary import doc_layout

from ..fuzz import fuzz_settings

pytestmark = pytest.mark.skipif(not word_index.available(), reason="the _scan extension is not built")

ASSETS = Path(__file__).parents[2] / "assets"
NAMES = sorted({r.name for r in read_source(ASSETS / "demo_kb.jsonl")}
               | {a for r in read_source(ASSETS / "demo_kb.jsonl") for a in r.aliases})
ANY_CHAR = st.characters(blacklist_categories=("Cs",))
NLP = spacy.blank("en")
PIECES = ["'s", "’s", "'S", " (", ") ", ". ", ", ", "1,2", "1.5", "1 . 5", "\n", "\t", "\u00a0", "\u200b", "\u00ad",
          "\u0301", "α", "β-", "ß", "ﬁ", "İ", "ǅ", "Ⅻ", "①", "²", "٣", "NSAIDs", "ALLs", "allergies", "abscesses",
          "diseases", "corpus", "\x00", "😀", "שלום", " | ", '"', ";", "x" * 70]


def reference(kb, text: str, max_words: int = 12):
    norm = kb.normalizer.normalize(text)
    breaks = word_breaks(norm)
    found = ExactMatcher(kb, max_words)(norm, breaks)
    return norm.words, norm.word_starts, norm.word_ends, [bool(b) for b in breaks], \
        [(m.start, m.end, m.alias_row) for m in found]


def compiled(kb, text: str, max_words: int = 12):
    words, starts, ends, breaks, ids, found = scan_text(kb.word_index, kb.normalizer, text, max_words)
    assert ids == [kb.word_index.word_id(w) for w in words]
    assert [i >= 0 for i in ids] == [kb.has_word(w) for w in words]
    return words, starts, ends, [bool(b) for b in breaks], [tuple(m) for m in found]


def name_variants(names):
    name = st.sampled_from(names)
    return st.one_of(name, name.map(str.upper), name.map(str.title), name.map(lambda n: n.replace(" ", "  ")),
                     name.map(lambda n: n.replace(" ", "-")), name.map(lambda n: n + "s"))


def texts(names):
    piece = st.one_of(name_variants(names), st.sampled_from(PIECES), st.text(ANY_CHAR, max_size=8))
    sep = st.sampled_from([" ", " ", "", "\n", ", ", ". ", " (", ") ", "-", "/", "'"])
    return st.one_of(st.text(ANY_CHAR, max_size=60),
                     st.lists(st.tuples(piece, sep), max_size=14).map(lambda ps: "".join(p + s for p, s in ps)))


@fuzz_settings(300)
@example(text="Crohn's disease, T2DM and NSAIDs; acute lymphoblastic leukaemia (ALL) 1,2-dichloroethane 1 . 5")
@example(text="")
@example(text="\u0301x é\u0301 ﬁbrosis α-tocopherol ① ALLs İstanbul")
@given(text=texts(NAMES))
def test_the_scan_equals_the_python_reference_on_the_demo_kb(demo_kb, text):
    assert compiled(demo_kb, text) == reference(demo_kb, text)
    for max_words in (1, 2):
        assert compiled(demo_kb, text, max_words) == reference(demo_kb, text, max_words)


word = st.text(st.sampled_from("abcdeAB1é'-"), min_size=1, max_size=6)
names = st.lists(st.lists(word, min_size=1, max_size=4).map(" ".join), min_size=1, max_size=12, unique=True)


def random_kb(tmp_path_factory, kb_names):
    """A KB of the drawn names that have a letter or digit (None if none has), and its names."""
    records = [EntityRecord(id=f"R:{i}", name=n, line=i + 1) for i, n in enumerate(kb_names)
               if any(c.isalnum() for c in n)]
    if not records:
        return None, []
    kb = KnowledgeBase.build(records, tmp_path_factory.mktemp("rand") / "kb", fuzzy_index=False)
    return kb, [r.name for r in records]


@fuzz_settings(40)
@given(data=st.data(), kb_names=names)
def test_the_scan_equals_the_python_reference_on_random_kbs(tmp_path_factory, data, kb_names):
    kb, kb_texts = random_kb(tmp_path_factory, kb_names)
    if kb is None:
        return
    assert kb.word_index is not None
    for _ in range(5):
        text = data.draw(texts(kb_texts))
        assert compiled(kb, text) == reference(kb, text)


def test_every_alias_key_is_found_where_it_stands(demo_kb):
    for row in range(demo_kb.n_aliases):
        key = demo_kb.alias_key(row)
        *_, found = compiled(demo_kb, f"before {key} after")
        assert (1, 1 + len(key.split(" ")), row) in found


def test_the_component_uses_the_scan_and_finds_what_python_finds(demo_kb, monkeypatch):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary").set_kb(demo_kb)
    text = "Patients with T2DM or juvenile diabetes had a heart attack after adriamycin; ALL (acute lymphoblastic leukemia)."
    fast = nlp(text)
    calls = []
    real = word_index.scan_text
    monkeypatch.setattr("spacy_entlink.matching.exact.scan_text", lambda *a: calls.append(1) or real(*a))
    nlp(text)
    assert calls  # the compiled path ran
    monkeypatch.setattr(demo_kb, "word_index", None)
    slow = nlp(text)
    assert [(e.start, e.end, e.label_, e.kb_id_) for e in fast.ents] == \
        [(e.start, e.end, e.label_, e.kb_id_) for e in slow.ents] != []
    key = "entlink_candidates"
    assert [(s.start, s.end, s.kb_id_, s._.entlink_candidates) for s in fast.spans[key]] == \
        [(s.start, s.end, s.kb_id_, s._.entlink_candidates) for s in slow.spans[key]]


@fuzz_settings(100)
@example(text="")
@example(text="  two  spaces \n\n and\ttabs ")
@given(text=st.text(ANY_CHAR, max_size=80))
def test_doc_text_equals_spacy_doc_text(text):
    doc = NLP.make_doc(text)
    assert doc_layout(doc)[0] == doc.text == text
    assert doc_layout(doc)[1:] == ([t.idx for t in doc], [t.idx + len(t.text) for t in doc])


def test_the_index_survives_to_disk_and_an_old_kb_falls_back(demo_kb, tmp_path):
    demo_kb.to_disk(tmp_path / "copy")
    copy = KnowledgeBase.from_disk(tmp_path / "copy")
    text = "juvenile diabetes and heart attack"
    assert compiled(copy, text) == compiled(demo_kb, text)
    meta = json.loads((tmp_path / "copy" / "meta.json").read_text())
    meta.pop("word_index")  # as written before the index existed
    (tmp_path / "copy" / "meta.json").write_text(json.dumps(meta))
    old = KnowledgeBase.from_disk(tmp_path / "copy")
    assert old.word_index is None
    norm, breaks, found, _ = ExactMatcher(old).scan(text)
    assert [(m.start, m.end, m.alias_row) for m in found] == compiled(demo_kb, text)[-1] != []


def damaged_copy(kb_path, folder, names, damage: str, *, seed: int, low=None) -> None:
    """Copy the KB at `kb_path` to `folder` with the arrays `names` truncated, overwritten with
    random values (from `low`, default half the dtype's minimum), cast to float32 or removed."""
    shutil.copytree(kb_path, folder)
    rng = np.random.default_rng(seed)
    for name in names:
        path = folder / name
        arr = np.load(path)
        if damage == "truncate":
            arr = arr[: len(arr) // 2]
        elif damage == "garbage":
            info = np.iinfo(arr.dtype)
            arr = rng.integers(info.min // 2 if low is None else low, info.max // 2, len(arr), dtype=arr.dtype)
        elif damage == "dtype":
            arr = arr.astype(np.float32)
        if damage == "missing":
            path.unlink()
        else:
            np.save(path, arr)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "dtype", "missing"])
def test_a_damaged_index_is_refused_or_harmless_never_a_crash(demo_kb, tmp_path, damage):
    damaged_copy(demo_kb.path, tmp_path / "kb", word_index.FILES, damage, seed=0)
    try:
        kb = KnowledgeBase.from_disk(tmp_path / "kb")
    except KBFormatError as err:
        assert "damaged" in str(err) or "wi_" in str(err)
        return
    if kb.word_index is not None:  # any answer, but no crash
        scan_text(kb.word_index, kb.normalizer, "juvenile diabetes and heart attack " * 3, 12)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "dtype"])
def test_a_damaged_length_directory_is_refused_or_harmless(demo_kb, tmp_path, damage):
    from spacy_entlink.kb import grams as grams_module

    damaged_copy(demo_kb.path, tmp_path / "kb", grams_module.DIRECTORY, damage, seed=1, low=0)
    if damage != "garbage":
        with pytest.raises(KBFormatError, match="length directory"):
            KnowledgeBase.from_disk(tmp_path / "kb")
        return
    kb = KnowledgeBase.from_disk(tmp_path / "kb")  # any answer, but no crash
    for key in ["juvenile diabetis", "hart atack", "tocopherol alpha", "x" * 40]:
        for d in (1, 2, 3):
            kb.fuzzy_search(key, d, limit=10)


def test_build_refuses_keys_outside_the_vocabulary():
    from spacy_entlink.matching import _scan

    with pytest.raises(ValueError, match="not in the vocabulary"):
        _scan.build(["a"], ["a b"])
    with pytest.raises(ValueError, match="duplicate"):
        _scan.build(["a", "a"], ["a"])
    tables = _scan.build(["a", "b"], ["a", "a b", "b"])
    index = _scan.WordIndex(*[np.frombuffer(t, dtype=d) for t, d in zip(tables, word_index.DTYPES)])
    assert index.word_id("b") == 1 and index.word_id("c") == -1


@fuzz_settings(300)
@example(key="juvenile diabetes", max_edits=2)
@example(key="hart atack", max_edits=1)
@given(key=st.one_of(name_variants(NAMES).map(str.lower), st.text("abcdeilmnorst ", min_size=1, max_size=30)),
       max_edits=st.integers(1, 3))
def test_the_compiled_shortlist_equals_the_python_one(demo_kb, key, max_edits):
    grams = demo_kb._grams
    key = demo_kb.normalize(key) or key
    assert within(demo_kb, key, max_edits, grams.shortlist(key, max_edits)) == \
        within(demo_kb, key, max_edits, grams.shortlist(key, max_edits, compiled=False))
    assert within(demo_kb, key, max_edits, grams.shortlist(key, max_edits)) == \
        within(demo_kb, key, max_edits, range(demo_kb.n_aliases))  # and no row within the bound is missed


def within(kb, key, max_edits, rows):
    """The rows among `rows` whose key is within `max_edits` edits of `key`."""
    from rapidfuzz.distance import Levenshtein

    return {int(r) for r in rows if Levenshtein.distance(key, kb.alias_key(int(r)), score_cutoff=max_edits) <= max_edits}


def test_the_compiled_shortlist_equals_the_python_one_with_long_lists(tmp_path):
    """Many keys sharing trigrams, so that the count filter runs (more than 64 candidates)."""
    stems = ["cardio", "hepato", "nephro", "neuro", "myelo"]
    records = [EntityRecord(id=f"X:{i}", name=f"{stems[i % 5]}pathy type {i} {stems[(i * 7) % 5]}toxic", line=i + 1)
               for i in range(600)]
    kb = KnowledgeBase.build(records, tmp_path / "kb")
    queries = [f"{stems[i % 5]}pathy typ {i} {stems[(i * 3) % 5]}toxik" for i in range(0, 600, 7)]
    queries += ["cardiopathy type 12 nephrotoxic", "neuropathy", "pathy type", "type 1 2 3 4 5 6 7"]
    for key in queries:
        for d in (1, 2, 3):
            fast = kb._grams.shortlist(kb.normalize(key), d)
            slow = kb._grams.shortlist(kb.normalize(key), d, compiled=False)
            assert within(kb, kb.normalize(key), d, fast) == within(kb, kb.normalize(key), d, slow)
    assert max(len(kb._grams.shortlist(kb.normalize(q), 3, compiled=False)) for q in queries) > 64


@fuzz_settings(200)
@example(key="juvenile diabetis", max_edits=2, limit=10)
@example(key="hart atack", max_edits=1, limit=10)
@example(key="tocopherol alpha", max_edits=3, limit=1)
@given(key=st.one_of(name_variants(NAMES), st.text(ANY_CHAR, min_size=1, max_size=20),
                     st.text("abcdeilmnorst éα", min_size=1, max_size=30)),
       max_edits=st.integers(1, 3), limit=st.integers(1, 30))
def test_the_compiled_fuzzy_search_equals_the_python_one(demo_kb, key, max_edits, limit):
    grams = demo_kb._grams
    assert grams.key_text is not None
    key = demo_kb.normalize(key) or key
    fast = grams.search(key, max_edits, demo_kb._keys, limit)
    assert fast == grams.search(key, max_edits, demo_kb._keys, limit, compiled=False)
    for row, edits, sim in fast:
        assert isinstance(row, int) and isinstance(edits, int) and isinstance(sim, float)


def test_the_compiled_fuzzy_search_on_many_similar_keys(tmp_path):
    stems = ["cardio", "hepato", "nephro", "neuro", "myelo", "ëncephalo"]
    records = [EntityRecord(id=f"X:{i}", name=f"{stems[i % 6]}pathy type {i} {stems[(i * 7) % 6]}toxic", line=i + 1)
               for i in range(600)]
    kb = KnowledgeBase.build(records, tmp_path / "kb")
    for i in range(0, 600, 5):
        key = kb.normalize(f"{stems[i % 6]}pathy typ {i} {stems[(i * 3) % 6]}toxik")
        for d in (1, 2, 3):
            fast = kb._grams.search(key, d, kb._keys, 50)
            assert fast == kb._grams.search(key, d, kb._keys, 50, compiled=False)
    assert kb._grams.search(kb.normalize("cardiopathy typ 12 cardiotoxic"), 3, kb._keys, 5)


def test_a_kb_from_before_gram_ids_is_searched_the_earlier_way(demo_kb, tmp_path):
    """Postings of rows (no gram_rows.npy / gram_len.npy): both paths still agree with the
    gram-id index on every search."""
    shutil.copytree(demo_kb.path, tmp_path / "old")
    folder = tmp_path / "old"
    rows, ptr, post = np.load(folder / "gram_rows.npy"), np.load(folder / "gram_ptr.npy"), np.load(folder / "gram_post.npy")
    old_post = np.concatenate([np.sort(rows[post[a:b]]) for a, b in zip(ptr[:-1], ptr[1:])]).astype(np.uint32)
    np.save(folder / "gram_post.npy", old_post)
    (folder / "gram_rows.npy").unlink()
    (folder / "gram_len.npy").unlink()
    old = KnowledgeBase.from_disk(folder)
    assert old._grams.gram_rows is None
    for row in range(0, demo_kb.n_aliases, 3):
        key = demo_kb.alias_key(row)
        typo = key[:2] + key[3:] if len(key) > 6 else key + "x"
        for d in (1, 2, 3):
            want = demo_kb._grams.search(typo, d, demo_kb._keys, 50)
            assert old._grams.search(typo, d, old._keys, 50) == want
            assert old._grams.search(typo, d, old._keys, 50, compiled=False) == want
            assert old._grams.shortlist(typo, d).tolist() == old._grams.shortlist(typo, d, compiled=False).tolist()
            assert within(old, typo, d, old._grams.shortlist(typo, d)) == within(demo_kb, typo, d, range(demo_kb.n_aliases))


def test_the_compiled_fuzzy_search_on_keys_with_hundreds_of_trigrams(tmp_path):
    """Queries with more distinct trigrams than the one-byte counts hold (the count filter is
    skipped for them) and with many shared ones: the same results as the Python search."""
    import random

    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyzàéîõü"
    base = "".join(rng.choice(alphabet) for _ in range(320))
    names = [base[:k] + "".join(rng.choice(alphabet) for _ in range(5)) + base[k + 5:] for k in range(0, 300, 3)]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(250, 400))) for _ in range(100)]
    records = [EntityRecord(id=f"L:{i}", name=n, line=i + 1) for i, n in enumerate(dict.fromkeys(names))]
    kb = KnowledgeBase.build(records, tmp_path / "kb")
    for i in range(0, len(records), 4):
        key = kb.normalize(records[i].name)
        typo = key[:50] + key[51:100] + "q" + key[100:]
        for d in (1, 2, 3):
            fast = kb._grams.search(typo, d, kb._keys, 50)
            assert fast == kb._grams.search(typo, d, kb._keys, 50, compiled=False)
            if d >= 2:
                assert kb.alias_row(key) in {r for r, _, _ in fast}
    assert max(len(set(zip(k, k[1:], k[2:]))) for k in (kb.normalize(r.name) for r in records)) > 300


def test_the_length_directory_cuts_the_lists_as_searching_does(tmp_path):
    """The shortlist and search with the length directory equal those without it (the lists
    then cut by searching their gids), and a KB without the directory files is searched so."""
    from spacy_entlink.kb import grams as grams_module

    stems = ["cardio", "hepato", "nephro", "neuro", "myelo", "ëncephalo"]
    records = [EntityRecord(id=f"X:{i}", name=f"{stems[i % 6]}pathy {'type ' * (i % 3)}{i} {stems[(i * 7) % 6]}toxic",
                            line=i + 1) for i in range(900)]
    kb = KnowledgeBase.build(records, tmp_path / "kb")
    g = kb._grams
    assert g.directory is not None and len(g.directory[1]) > len(g.grams)
    for i in range(0, 900, 7):
        key = kb.normalize(f"{stems[i % 6]}pathy typ {i} {stems[(i * 3) % 6]}toxik")
        q = grams_module.query_grams(key)
        for d in (1, 2, 3):
            args = (g.grams, g.ptr, g.post, g.key_len, q, d, len(key) - d, len(key) + d, g.gram_rows, g.gram_len)
            with_dir, without = grams_module._scan.shortlist(*args, g.directory), grams_module._scan.shortlist(*args, None)
            assert with_dir == without
    shutil.copytree(tmp_path / "kb", tmp_path / "no_dir")
    for name in grams_module.DIRECTORY:
        (tmp_path / "no_dir" / name).unlink()
    old = KnowledgeBase.from_disk(tmp_path / "no_dir")
    assert old._grams.directory is None
    for i in range(0, 900, 11):
        key = kb.normalize(f"{stems[i % 6]}pathy typ {i} {stems[(i * 5) % 6]}toxik")
        assert old._grams.search(key, 3, old._keys, 50) == g.search(key, 3, kb._keys, 50)
