"""The KB build's compiled helpers (`matching/_scan.c`) against their Python references, and a
KB built with them against one built without them, file by file."""

import filecmp
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacy_entlink.kb import KnowledgeBase, grams, numbering, read_source

from ..fuzz import fuzz_settings

ASSETS = Path(__file__).parents[2] / "assets"
needs_extension = pytest.mark.skipif(numbering._scan is None, reason="the _scan extension is not built")


class Sub(str):
    """A str subclass whose hash and equality the compiled table must not call."""

    def __hash__(self):
        raise AssertionError("called")

    def __eq__(self, other):
        raise AssertionError("called")


STRINGS = st.lists(st.one_of(st.sampled_from(["", "a", "b", "ab", "a b", "é", "😀"]), st.text(max_size=6)), max_size=40)


@needs_extension
@fuzz_settings(300)
@given(strings=STRINGS)
def test_number_strings_equals_a_dict(monkeypatch, strings):
    numbers, distinct = numbering.number_strings(strings)
    with monkeypatch.context() as m:
        m.setattr(numbering, "_scan", None)
        want_numbers, want_distinct = numbering.number_strings(strings)
    assert numbers.tolist() == want_numbers.tolist() and distinct == want_distinct
    assert [distinct[i] for i in numbers] == strings
    assert numbering.distinct(strings) == list(dict.fromkeys(strings))


@needs_extension
@fuzz_settings(300)
@given(strings=STRINGS, seed=st.integers(0, 100))
def test_positions_equal_a_dict(monkeypatch, strings, seed):
    haystack = list(dict.fromkeys(strings))
    needles = [random.Random(seed).choice(haystack) for _ in range(len(haystack) * 2)] if haystack else []
    got = numbering.positions(needles, haystack)
    with monkeypatch.context() as m:
        m.setattr(numbering, "_scan", None)
        assert got.tolist() == numbering.positions(needles, haystack).tolist()
    assert [haystack[i] for i in got] == needles
    absent = numbering._scan.positions(["not there"], haystack)
    assert np.frombuffer(absent, dtype=np.int64).tolist() == ([-1] if "not there" not in haystack else [haystack.index("not there")])


@needs_extension
def test_subclasses_are_hashed_as_str():
    numbers, distinct = numbering.number_strings([Sub("x"), "y", Sub("x"), "x"])
    assert numbers.tolist() == [0, 1, 0, 0]
    assert numbering.positions(["y", "x"], [Sub("x"), Sub("y")]).tolist() == [1, 0]
    with pytest.raises(TypeError):
        numbering.number_strings(["x", 1])


@needs_extension
def test_a_kb_built_without_the_extension_has_the_same_files(tmp_path, monkeypatch):
    records = list(read_source(ASSETS / "demo_kb.jsonl"))
    KnowledgeBase.build(records, tmp_path / "compiled")
    monkeypatch.setattr(numbering, "_scan", None)
    monkeypatch.setattr(grams, "_scan", None)
    KnowledgeBase.build(records, tmp_path / "python")
    python_files = sorted(p.name for p in (tmp_path / "python").iterdir() if p.name != "meta.json")
    assert "gram_post.npy" in python_files and "keys.marisa" in python_files
    same, differ, missing = filecmp.cmpfiles(tmp_path / "compiled", tmp_path / "python", python_files, shallow=False)
    assert differ == [] and missing == [] and same == python_files
