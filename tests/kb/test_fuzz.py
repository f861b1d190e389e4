"""Fuzzing `build-kb` (issue 17): valid sources in every KB format, mutated by hypothesis
(separators, quotes, line breaks, controls, NUL, surrogate escapes, bad bytes, duplicated
and dropped lines). Whatever the input, the build either fails with an `EntlinkError`
naming the file, leaving no KB, or gives a KB in which every record read is found again
by id (and by alternative id), with its name, aliases and candidates; a second build gives
identical files and a reload the same answers. Settings: tests/fuzz.py."""

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacy_entlink.errors import EntlinkError
from spacy_entlink.kb import KnowledgeBase, read_source

from ..fuzz import NASTY, fuzz_settings, mutated_bytes
from .test_sources import csv_text, jsonl_text, medic_text, obo_text

SAMPLES = {
    "medic": (medic_text(), ".tsv"),
    "jsonl": (jsonl_text(), ".jsonl"),
    "csv": (csv_text(), ".csv"),
    "obo": (obo_text(), ".obo"),
    "popularity": ("Usta_River_(Russia)\t0.5\nEuropean_Union\t12\nGermany\t3e2\n", ".tsv"),
}


def _digest(folder):
    out = {}
    for f in sorted(folder.iterdir()):
        data = f.read_bytes()
        if f.name == "meta.json":
            meta = json.loads(data)
            meta.pop("build_seconds")
            data = json.dumps(meta, sort_keys=True).encode()
        out[f.name] = hashlib.sha1(data).hexdigest()
    return out


def _build(path, fmt, out):
    try:
        records = list(read_source(path, fmt))
        return records, KnowledgeBase.build(records, out, progress=False)
    except EntlinkError as err:
        assert str(err).startswith(str(path)), f"the error does not name the file: {err}"
        assert not out.exists(), "a failed build left a KB folder"
        return None, None


def _check(records, kb):
    assert len(kb) == len(records)
    for rec in records:
        assert rec.id in kb
        row = kb.row_of(rec.id)
        assert row is not None and kb.get_id(row) == rec.id
        ent = kb.entity(rec.id)
        assert ent.name == rec.name.strip()
        assert set(ent.aliases) <= {a.strip() for a in rec.aliases}
        if kb.normalize(rec.name):
            assert rec.id in {c.id for c in kb.get_candidates(rec.name)}
        for alt in rec.alt_ids:  # an alternative id finds an entity (the first record that lists it)
            assert alt in kb and kb.row_of(alt) is not None


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_the_samples_build(tmp_path, fmt):
    text, suffix = SAMPLES[fmt]
    path = tmp_path / ("src" + suffix)
    path.write_text(text, encoding="utf8")
    records, kb = _build(path, fmt, tmp_path / "kb")
    assert kb is not None and len(kb) >= 3


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_mutated_kb_sources(tmp_path_factory, fmt):
    text, suffix = SAMPLES[fmt]
    folder = tmp_path_factory.mktemp(f"fuzz_{fmt}")
    counter = iter(range(10**9))

    @fuzz_settings(25)
    @given(data=mutated_bytes(text))
    def run(data):
        n = next(counter)
        path = folder / f"src{n}{suffix}"
        path.write_bytes(data)
        records, kb = _build(path, fmt, folder / f"kb{n}")
        if kb is None:
            return
        _check(records, kb)
        _, again = _build(path, fmt, folder / f"kb{n}_again")
        assert _digest(folder / f"kb{n}") == _digest(folder / f"kb{n}_again")
        reloaded = KnowledgeBase.from_disk(folder / f"kb{n}")
        _check(records, reloaded)

    run()


_PIECE = st.one_of(st.sampled_from(NASTY + ["\ud800", "\udfff", "\t", "\x9f", "\x7f"]), st.text(max_size=5))
_TEXT = st.lists(_PIECE, max_size=4).map("".join)
_VALUE = st.one_of(_TEXT, _TEXT, _TEXT, st.none(), st.integers(0, 3), st.just(["x"]))


@fuzz_settings(300)
@given(id_=_VALUE, name=_VALUE, aliases=st.lists(_VALUE, max_size=3), description=_VALUE, type_=_VALUE,
       alt_ids=st.lists(_VALUE, max_size=2))
def test_record_screen_changes_no_outcome(monkeypatch, id_, name, aliases, description, type_, alt_ids):
    """The joined-string screen of `_check_record` accepts exactly the records the per-string
    checks accept, and a refused record gets the per-string checks' own message."""
    from spacy_entlink.errors import DataError
    from spacy_entlink.kb import EntityRecord
    from spacy_entlink.kb import build as build_module

    def outcome(screen):
        rec = EntityRecord(id=id_, name=name, aliases=list(aliases), description=description, type=type_,
                           alt_ids=list(alt_ids), source="kb.tsv", line=3)
        with monkeypatch.context() as m:
            if not screen:
                m.setattr(build_module, "_texts_fine", lambda rec: False)
            try:
                build_module._check_record(rec, {})
            except DataError as e:
                return str(e)
        return "ok"

    assert outcome(True) == outcome(False)
