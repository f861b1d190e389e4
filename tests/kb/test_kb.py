"""KnowledgeBase: contents, candidate order, alternative ids, disk round trip, pickling, errors."""

import filecmp
import json
import pickle
import shutil

import numpy as np
import pytest

from spacy_entlink.errors import KBFormatError
from spacy_entlink.kb import Candidate, EntityRecord, KnowledgeBase
from spacy_entlink.text import NormalizerConfig, normalize_key

from . import snapshot


def records():
    return [
        EntityRecord("Z:1", "Zorbitis", aliases=["Zorb", "zorbitis", "Zorb", " ", "Zorbitis"], prior=1.0,
                     type="Disease", description="An invented inflammation.", alt_ids=["OMIM:1", "Z:1", "Z:2"]),
        EntityRecord("Z:2", "Zorb", aliases=["Zorbs"], prior=0.5, type="Disease"),
        EntityRecord("Z:3", "Zorb Syndrome", aliases=["ZORB", "Zorb"], prior=5.0, type="Syndrome", alt_ids=["DO:3"]),
        EntityRecord("Z:4", "Zorbo", aliases=["zorb"], prior=5.0, type="Disease"),
        EntityRecord("Z:5", "Zorbal Thing", aliases=["Zorbs"], prior=5.0),
        EntityRecord("Z:6", "Blue-Toe Disease", aliases=["blue toes", "Blue Toe Diseases"], prior=2.0, type="Disease"),
        EntityRecord("Z:7", "???", aliases=["Crohn's Zorbitis"], prior=0.0, type="Disease"),
        EntityRecord("Z:8", "ALL", aliases=["Acute Lymphoblastic Zorbitis"], prior=0.1, type="Disease"),
    ]


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> KnowledgeBase:
    return KnowledgeBase.build(records(), tmp_path_factory.mktemp("kb") / "zorb", name="zorb")


def test_counts_and_meta(kb):
    assert len(kb) == 8
    assert kb.meta["n_entities"] == 8
    assert kb.meta["name"] == "zorb"
    assert kb.meta["n_alt_ids"] == 2  # "Z:1" (own id) and "Z:2" (a primary id) are no alt ids
    assert kb.meta["types"] == ["", "Disease", "Syndrome"] == kb.type_names
    assert kb.meta["n_alias_keys"] == kb.n_aliases
    assert kb.has_fuzzy_index
    assert sorted(kb.ids()) == [f"Z:{i}" for i in range(1, 9)]
    keys = {kb.alias_key(r) for r in range(kb.n_aliases)}
    assert keys == {"zorbitis", "zorb", "zorb syndrome", "ZORB", "zorbo", "zorbal thing", "blue toe disease",
                    "blue toe", "crohn zorbitis", "ALL", "acute lymphoblastic zorbitis"}
    assert kb.meta["n_aliases"] == sum(len(kb.get_aliases(r)) for r in range(len(kb)))


def test_entities_by_id(kb):
    row = kb.row_of("Z:1")
    assert kb.get_id(row) == "Z:1"
    assert kb.get_name(row) == "Zorbitis"
    # Raw aliases: stripped, blanks, exact duplicates and copies of the name dropped, order kept.
    assert kb.get_aliases(row) == ["Zorb", "zorbitis"]
    assert kb.get_description(row) == "An invented inflammation."
    assert kb.get_type(row) == "Disease" and kb.get_prior(row) == 1.0
    assert kb.get_type(kb.row_of("Z:5")) == ""
    rec = kb.entity("Z:3")
    assert (rec.id, rec.name, rec.aliases, rec.type, rec.prior) == ("Z:3", "Zorb Syndrome", ["ZORB", "Zorb"], "Syndrome", 5.0)
    assert sorted(kb.row_of(f"Z:{i}") for i in range(1, 9)) == list(range(8))


def test_alternative_ids_resolve(kb):
    assert kb.row_of("OMIM:1") == kb.row_of("Z:1")
    assert kb.row_of("DO:3") == kb.row_of("Z:3")
    assert "OMIM:1" in kb and "DO:3" in kb and "Z:8" in kb
    assert kb.entity("OMIM:1").id == "Z:1"
    assert kb.entity("DO:3").name == "Zorb Syndrome"
    # An alt id that is another entity's primary id stays that entity's.
    assert kb.get_id(kb.row_of("Z:2")) == "Z:2"
    for unknown in ("OMIM:2", "Z:9", "", "z:1"):
        assert kb.row_of(unknown) is None and unknown not in kb and kb.entity(unknown) is None


def test_candidates_canonical_name_first_then_prior(kb):
    cands = kb.candidates_for_key("zorb")
    ids = [c.id for c in cands]
    # "Zorb" is Z:2's canonical name (prior 0.5): first. Then by prior: Z:3, Z:4, Z:5 (5.0,
    # ties by row), then Z:1 (1.0).
    assert ids[0] == "Z:2" and cands[0].is_name
    assert ids[-1] == "Z:1"
    assert set(ids[1:4]) == {"Z:3", "Z:4", "Z:5"}
    assert [c.row for c in cands[1:4]] == sorted(c.row for c in cands[1:4])
    assert [c.is_name for c in cands] == [True, False, False, False, False]
    assert all(isinstance(c, Candidate) for c in cands)
    assert cands[1] == Candidate(cands[1].id, kb.get_name(cands[1].row), kb.get_type(cands[1].row), 5.0,
                                 cands[1].row, False)
    # The same through raw mentions (normalised with the KB's normaliser).
    for mention in ("Zorbs", "ZORBs", "zorb", "Zorb"):
        assert kb.get_candidates(mention) == (cands if normalize_key(mention) == "zorb" else kb.get_candidates("ZORB"))
    assert [c.id for c in kb.get_candidates("ZORB")] == ["Z:3"]
    assert [c.id for c in kb.get_candidates("Crohn’s zorbitis")] == ["Z:7"]
    assert [c.id for c in kb.get_candidates("blue toe diseases")] == ["Z:6"]
    assert [c.id for c in kb.get_candidates("Blue toes")] == ["Z:6"]
    assert kb.get_candidates("all") == [] and [c.id for c in kb.get_candidates("ALL")] == ["Z:8"]
    assert kb.get_candidates("???") == [] and kb.candidates_for_key("") == []
    # A name that is also its own alias stays canonical.
    z1 = kb.candidates_for_key("zorbitis")
    assert [(c.id, c.is_name) for c in z1] == [("Z:1", True)]


def test_alias_rows_and_arrays(kb):
    for r in range(kb.n_aliases):
        key = kb.alias_key(r)
        assert kb.alias_row(key) == r
        rows = kb.alias_entities(r)
        assert len(rows) == len(kb.alias_is_name(r)) >= 1
        assert len(set(rows.tolist())) == len(rows)  # an entity once per key
    assert kb.alias_row("nothing here") is None
    assert kb.has_prefix("zorb s") and kb.has_prefix("ZO") and not kb.has_prefix("zz")
    assert kb.has_word("toe") and kb.has_word("lymphoblastic") and not kb.has_word("toes")


def test_load_is_memory_mapped(kb):
    import mmap

    def file_backed(arr) -> bool:
        while arr is not None:
            if isinstance(arr, (np.memmap, mmap.mmap)):
                return True
            arr = getattr(arr, "base", None)
        return False

    opened = KnowledgeBase.from_disk(kb.path)
    assert file_backed(opened.alias_entities(0))
    assert file_backed(opened.alias_is_name(0))
    assert snapshot(opened) == snapshot(kb)


def test_to_disk_from_disk_round_trip(kb, tmp_path):
    kb.to_disk(tmp_path / "copy")
    copy = KnowledgeBase.from_disk(tmp_path / "copy")
    assert copy.path == tmp_path / "copy"
    assert snapshot(copy) == snapshot(kb)
    assert copy.meta == kb.meta
    for name in ("OMIM:1", "DO:3"):
        assert copy.row_of(name) == kb.row_of(name)
    same, diff, errors = filecmp.cmpfiles(kb.path, tmp_path / "copy", [p.name for p in kb.path.iterdir()], shallow=False)
    assert not diff and not errors
    # Saving a KB onto its own folder is a no-op (it must not truncate its own mapped files).
    copy.to_disk(tmp_path / "copy")
    assert snapshot(KnowledgeBase.from_disk(tmp_path / "copy")) == snapshot(kb)


def test_rebuild_gives_identical_files(kb, tmp_path):
    again = KnowledgeBase.build(records(), tmp_path / "again", name="zorb")
    names = sorted(p.name for p in kb.path.iterdir())
    assert names == sorted(p.name for p in again.path.iterdir())
    _, diff, _ = filecmp.cmpfiles(kb.path, again.path, [n for n in names if n != "meta.json"], shallow=False)
    assert diff == []
    # The input order changes rows but not what the KB answers per id.
    shuffled = KnowledgeBase.build(list(reversed(records())), tmp_path / "shuffled")
    for eid in (f"Z:{i}" for i in range(1, 9)):
        a, b = kb.entity(eid), shuffled.entity(eid)
        assert (a.name, a.aliases, a.prior, a.type) == (b.name, b.aliases, b.prior, b.type)
    assert [c.id for c in shuffled.get_candidates("zorb")] == [c.id for c in kb.get_candidates("zorb")]


def test_pickle_reopens_from_path(kb, tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(kb.path, folder)
    original = KnowledgeBase.from_disk(folder)
    data = pickle.dumps(original)
    assert len(data) < 500  # a path, not the data
    clone = pickle.loads(data)
    assert clone is not original and clone.path == folder
    assert snapshot(clone) == snapshot(original)
    # It really reopens the folder: rebuild other content there and unpickle again.
    KnowledgeBase.build([EntityRecord("N:1", "New Thing")], folder)
    fresh = pickle.loads(data)
    assert len(fresh) == 1 and fresh.get_name(0) == "New Thing"


def test_normalizer_options_are_saved_with_the_kb(tmp_path):
    cfg = NormalizerConfig(acronym_max_len=0, fold_plurals=False)
    kb = KnowledgeBase.build(records(), tmp_path / "plain", normalizer=cfg)
    assert kb.normalizer.config == cfg
    reopened = KnowledgeBase.from_disk(tmp_path / "plain")
    assert reopened.normalizer.config == cfg
    assert {c.id for c in reopened.get_candidates("all")} == {"Z:8"}  # no acronym protection
    assert reopened.get_candidates("zorbs") != reopened.get_candidates("zorb")  # no plural folding


def test_fuzzy_search_needs_the_index(tmp_path):
    kb = KnowledgeBase.build(records(), tmp_path / "nofuzzy", fuzzy_index=False)
    assert not kb.has_fuzzy_index
    assert [c.id for c in kb.get_candidates("Zorbo")] == ["Z:4"]
    with pytest.raises(KBFormatError, match="without a fuzzy index"):
        kb.fuzzy_search("zorbo", 1)


# --- format errors ----------------------------------------------------------------------------


def test_folder_without_meta_json(tmp_path):
    with pytest.raises(KBFormatError, match="no meta.json"):
        KnowledgeBase.from_disk(tmp_path)
    with pytest.raises(KBFormatError, match="is not a spacy-entlink knowledge base"):
        KnowledgeBase(tmp_path / "does-not-exist")


@pytest.mark.parametrize(
    "change,message",
    [
        ({"version": 2}, "version 2"),
        ({"version": "1"}, "version '1'"),
        ({"format": "something-else"}, "unsupported KB format 'something-else'"),
    ],
)
def test_wrong_version_or_format(kb, tmp_path, change, message):
    folder = tmp_path / "kb"
    shutil.copytree(kb.path, folder)
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(change)
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(KBFormatError) as info:
        KnowledgeBase.from_disk(folder)
    assert message in str(info.value) and str(folder / "meta.json") in str(info.value)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\udcff"])
def test_unreadable_meta_json(kb, tmp_path, content):
    folder = tmp_path / "kb"
    shutil.copytree(kb.path, folder)
    (folder / "meta.json").write_bytes(content.encode("utf8", "surrogateescape"))
    with pytest.raises(KBFormatError):
        KnowledgeBase.from_disk(folder)


@pytest.mark.parametrize("missing", ["ids.marisa", "keys.marisa", "key_ent.npy", "names_ptr.npy", "grams.npy"])
def test_missing_or_damaged_files(kb, tmp_path, missing):
    folder = tmp_path / "kb"
    shutil.copytree(kb.path, folder)
    (folder / missing).unlink()
    with pytest.raises(KBFormatError, match="incomplete or damaged"):
        KnowledgeBase.from_disk(folder)
    (folder / missing).write_bytes(b"garbage" * 20)
    with pytest.raises(KBFormatError, match="incomplete or damaged"):
        KnowledgeBase.from_disk(folder)


def test_failed_rebuild_leaves_the_previous_kb_untouched(kb, tmp_path):
    folder = tmp_path / "kb"
    shutil.copytree(kb.path, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def failing():
        yield EntityRecord("A:1", "Something")
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        KnowledgeBase.build(failing(), folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert KnowledgeBase.from_disk(folder).get_candidates("zorbitis")[0].id == "Z:1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]  # no half-written sibling left behind
    rebuilt = KnowledgeBase.build([EntityRecord("A:1", "Something")], folder)  # a good build replaces it
    assert len(rebuilt) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["kb"]


def test_build_kb_cli_over_a_good_kb_with_a_bad_source(kb, tmp_path):
    from spacy_entlink.cli import main

    folder = tmp_path / "good"
    shutil.copytree(kb.path, folder)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "B:1", "name": "fine"}\n{"id": "B:2"\n', encoding="utf8")
    with pytest.raises(SystemExit):
        main(["build-kb", str(bad), "--output", str(folder)])
    assert len(KnowledgeBase.from_disk(folder)) == len(kb)


def test_failed_swap_puts_the_previous_kb_back(kb, tmp_path, monkeypatch):
    from pathlib import Path

    folder = tmp_path / "kb"
    shutil.copytree(kb.path, folder)
    real = Path.rename

    def rename(self, target):
        if self.name.startswith(".kb.writing-"):
            raise OSError("disk full")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError):
        KnowledgeBase.build([EntityRecord("A:1", "Something")], folder)
    assert len(KnowledgeBase.from_disk(folder)) == len(kb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]
