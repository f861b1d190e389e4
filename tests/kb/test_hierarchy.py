"""The KB's hierarchy: parents read from every source format, resolved to rows, ancestors.

All data here is invented.
"""

import json
import shutil

import numpy as np
import pytest

from spacy_entlink.errors import DataError, KBFormatError
from spacy_entlink.kb import EntityRecord, KnowledgeBase, read_source


def build(tmp_path, records, name="kb"):
    return KnowledgeBase.build(records, tmp_path / name, fuzzy_index=False)


def parents_of(kb, eid):
    return [kb.get_id(r) for r in kb.get_parents(kb.row_of(eid))]


def test_parents_resolve_to_rows_through_ids_and_alternative_ids(tmp_path):
    kb = build(tmp_path, [
        EntityRecord("X:1", "Kidney Disease"),
        EntityRecord("X:2", "Nephrosis", parents=["X:1", "X:1", "X:2", "X:404"]),  # repeat, itself, unknown
        EntityRecord("X:3", "Lipoid Nephrosis", parents=["X:2"], alt_ids=["OLD:3"]),
        EntityRecord("X:4", "Lipoid Nephrosis, Childhood", parents=["OLD:3", "X:1"]),
    ])
    assert kb.has_hierarchy
    assert parents_of(kb, "X:1") == []
    assert parents_of(kb, "X:2") == ["X:1"]
    assert parents_of(kb, "X:4") == ["X:3", "X:1"]  # an alternative id names its entity; order kept
    assert kb.meta["n_parent_links"] == 4 and kb.meta["n_parents_unresolved"] == 1
    assert kb.entity("X:4").parents == ["X:3", "X:1"]
    anc = {kb.get_id(r): d for r, d in kb.ancestors(kb.row_of("X:4"), depth=2).items()}
    assert anc == {"X:3": 1, "X:1": 1, "X:2": 2}  # X:1 is one step away, not two
    assert {kb.get_id(r) for r in kb.ancestors(kb.row_of("X:4"), depth=1)} == {"X:3", "X:1"}


def test_without_rebuilds_the_kb_without_some_entities_keeping_the_rest(tmp_path):
    full = KnowledgeBase.build([
        EntityRecord("X:1", "Kidney Disease", aliases=["renal disease"]),
        EntityRecord("X:2", "Nephrosis", parents=["X:1"], alt_ids=["OLD:2"]),
        EntityRecord("X:3", "Lipoid Nephrosis", aliases=["nil disease"], parents=["X:2", "X:1"], alt_ids=["OLD:3"]),
    ], tmp_path / "full", adjectives=True)
    kb = full.without(["X:1"], tmp_path / "small")
    assert len(kb) == 2 and "X:1" not in kb and kb.get_candidates("renal disease") == []
    assert kb.entity("OLD:3") == EntityRecord("X:3", "Lipoid Nephrosis", aliases=["nil disease"], parents=["X:2"])
    assert kb.row_of("OLD:2") == kb.row_of("X:2")  # alternative ids kept
    assert kb.meta["adjectives"] and kb.meta["normalizer"] == full.meta["normalizer"]
    assert kb.has_fuzzy_index == full.has_fuzzy_index


def test_cycles_end(tmp_path):
    kb = build(tmp_path, [EntityRecord("A", "a", parents=["B"]), EntityRecord("B", "b", parents=["C"]),
                          EntityRecord("C", "c", parents=["A"])])
    assert {kb.get_id(r): d for r, d in kb.ancestors(kb.row_of("A"), depth=10).items()} == {"B": 1, "C": 2}


def test_parents_from_each_source_format(tmp_path):
    (tmp_path / "k.jsonl").write_text(
        json.dumps({"id": "J:1", "name": "Top"}) + "\n"
        + json.dumps({"id": "J:2", "name": "Mid", "parents": ["J:1"]}) + "\n"
        + json.dumps({"id": "J:3", "name": "Leaf", "parents": "J:2|J:1"}) + "\n", encoding="utf8")
    (tmp_path / "k.csv").write_text("id,name,parents\nC:1,Top,\nC:2,Leaf,C:1\n", encoding="utf8")
    (tmp_path / "k.obo").write_text(
        "format-version: 1.2\n\n[Term]\nid: O:1\nname: top\n\n[Term]\nid: O:2\nname: leaf\n"
        "is_a: O:1 ! top\nis_a: O:1 {source=\"x\"} ! again\n\n[Typedef]\nid: part_of\nname: part of\n",
        encoding="utf8")
    medic = ["Top Disease\tMESH:D1\t\t\t\t\t\t\t", "Leaf Disease\tMESH:D2\t\t\tMESH:D1|MESH:D404\tC1.1\tC1\tLeafy\t"]
    (tmp_path / "CTD_diseases.tsv").write_text("\n".join(medic) + "\n", encoding="utf8")
    for name, fmt, leaf, expected in [("k.jsonl", "jsonl", "J:3", ["J:2", "J:1"]), ("k.csv", "csv", "C:2", ["C:1"]),
                                      ("k.obo", "obo", "O:2", ["O:1"]),
                                      ("CTD_diseases.tsv", "medic", "MESH:D2", ["MESH:D1"])]:
        kb = build(tmp_path, read_source(tmp_path / name, fmt), name=f"kb_{fmt}")
        assert parents_of(kb, leaf) == expected, fmt
    assert kb.meta["n_parents_unresolved"] == 1  # MEDIC's MESH:D404


def test_parents_must_be_ids(tmp_path):
    with pytest.raises(DataError, match="parents of entity 'A'"):
        build(tmp_path, [EntityRecord("A", "a", parents=[3])])
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": "A", "name": "a", "parents": {"x": 1}}) + "\n",
                                        encoding="utf8")
    with pytest.raises(DataError, match=r"bad\.jsonl.*1"):
        build(tmp_path, read_source(tmp_path / "bad.jsonl", "jsonl"), name="bad")


def test_a_kb_without_the_hierarchy_files_has_none(tmp_path):
    kb = build(tmp_path, [EntityRecord("A", "a"), EntityRecord("B", "b", parents=["A"])])
    old = tmp_path / "old"
    shutil.copytree(kb.path, old)
    (old / "parents.npy").unlink()
    (old / "parents_ptr.npy").unlink()
    old_kb = KnowledgeBase.from_disk(old)
    assert not old_kb.has_hierarchy and old_kb.get_parents(old_kb.row_of("B")) == []
    assert old_kb.ancestors(old_kb.row_of("B")) == {}
    plain = build(tmp_path, [EntityRecord("A", "a")], name="plain")
    assert not plain.has_hierarchy


def test_damaged_hierarchy_files_are_refused(tmp_path):
    kb = build(tmp_path, [EntityRecord("A", "a"), EntityRecord("B", "b", parents=["A"])])
    np.save(kb.path / "parents_ptr.npy", np.zeros(7, dtype=np.int64))
    with pytest.raises(KBFormatError, match="parents_ptr.npy"):
        KnowledgeBase.from_disk(kb.path)
