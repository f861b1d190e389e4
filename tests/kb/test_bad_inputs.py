"""Regression tests for the bad KB sources of issue 17: each is refused with an error naming
the file and line (never a traceback, never a silently changed row), or handled at bounded
cost. The table of cases is in docs/reliability.md; all data here is invented."""

import logging
import subprocess
import sys
import time

import pytest

from spacy_entlink.errors import DataError
from spacy_entlink.kb import EntityRecord, KnowledgeBase, read_source
from spacy_entlink.kb.neighbours import MAX_LEN


def _write(path, text):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf8")
    return path


def _build_error(tmp_path, name, text) -> DataError:
    path = _write(tmp_path / name, text)
    with pytest.raises(DataError) as info:
        KnowledgeBase.build(read_source(path), tmp_path / "kb", progress=False)
    assert str(info.value).startswith(str(path))
    return info.value


@pytest.mark.parametrize(
    "name,text,line,fragment",
    [
        # an unterminated quote used to swallow every later row into one name (X:2 and X:3 lost)
        ("q.csv", 'id,name\nX:1,"Foo\nX:2,Bar\nX:3,Baz\n', 2, "never closed"),
        # ... and when a later quote closes it, the name holds the rows: refused for its line break
        ("q2.csv", 'id,name\nX:1,"Foo\nX:2,Bar\nX:3,Baz,"\n', 2, "unterminated quote in a CSV file?"),
        ("q3.csv", 'id,name\nX:1,"Foo" bar\n', 2, "malformed CSV"),
        ("big.csv", "id,name\nX:0,ok\nX:1," + "a" * 200_000 + "\n", 3, "CSV limit"),
        ("s.jsonl", '{"id": "X:1", "name": "Foo \\ud800"}\n', 1, "lone surrogate U+D800"),
        ("s2.jsonl", '{"id": "X:1", "name": "Foo"}\n{"id": "X:\\udc00", "name": "Bar"}\n', 2, "lone surrogate U+DC00"),
        ("s3.jsonl", '{"id": "X:1", "name": "Foo", "aliases": ["ok", "b\\ud83dd"]}\n', 1, "'aliases'[1]"),
        ("s4.jsonl", '{"id": "X:1", "name": "Foo", "description": "\\udfff"}\n', 1, "'description'"),
        ("deep.jsonl", '{"id": "X:1", "name": "Foo", "aliases": ' + "[" * 100_000 + "]" * 100_000 + "}\n", 1,
         "nested too deeply"),
        ("nul.jsonl", '{"id": "X:\\u00001", "name": "Foo"}\n', 1, "control character U+0000"),
        ("ctl.jsonl", '{"id": "X:1", "name": "Fo\\u0007o"}\n', 1, "control character U+0007"),
        ("nl.jsonl", '{"id": "X:1", "name": "Foo", "aliases": "Bar\\nBaz"}\n', 1, "line break"),
        ("alt.jsonl", '{"id": "X:1", "name": "Foo", "alt_ids": ["Y:\\u0000"]}\n', 1, "alternative id"),
    ],
)
def test_bad_source_rows_are_refused_with_file_and_line(tmp_path, name, text, line, fragment):
    err = _build_error(tmp_path, name, text)
    assert err.line == line, str(err)
    assert fragment in str(err)
    assert not (tmp_path / "kb").exists()


def test_valid_surrogate_pairs_and_tabs_are_kept(tmp_path):
    path = _write(tmp_path / "ok.jsonl", '{"id": "X:1", "name": "Smile \\ud83d\\ude00", "aliases": ["a\\tb"]}\n')
    kb = KnowledgeBase.build(read_source(path), tmp_path / "kb", progress=False)
    assert kb.entity("X:1").name == "Smile \U0001F600"
    assert kb.entity("X:1").aliases == ["a\tb"]


def test_extra_alias_file_is_checked_too(tmp_path):
    src = _write(tmp_path / "kb.jsonl", '{"id": "X:1", "name": "Foo"}\n')
    extra = _write(tmp_path / "extra.jsonl", '{"id": "X:1", "aliases": ["x\\u0001y"]}\n')
    from spacy_entlink.kb.sources import read_alias_file

    with pytest.raises(DataError, match=r"extra\.jsonl, line 1: .*U\+0001"):
        KnowledgeBase.build(read_source(src), tmp_path / "kb", extra_aliases=read_alias_file(extra), progress=False)


def test_nul_lookups_agree_with_membership(tmp_path):
    # marisa's get() stops at NUL: "X:\x001" used to find the row of "X:" while `in` said no
    kb = KnowledgeBase.build([EntityRecord("X:", "Bar"), EntityRecord("X:1", "Foo")], tmp_path / "kb", progress=False)
    for probe in ("X:\x00", "X:\x001", "X:1\x00"):
        assert probe not in kb
        assert kb.row_of(probe) is None and kb.entity(probe) is None
    assert kb.alias_row("foo\x00bar") is None and kb.candidates_for_key("foo\x00") == []
    assert kb.row_of("X:") is not None and kb.entity("X:1").name == "Foo"


def test_a_huge_word_builds_at_linear_cost_and_fuzzy_still_finds_long_words(tmp_path, caplog):
    # the one-deletion table grew with the square of a word's length (10 MB never finished)
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="spacy_entlink.kb"):
        kb = KnowledgeBase.build([EntityRecord("X:1", "a" * 2_000_000), EntityRecord("X:2", "b" * (MAX_LEN + 6))],
                                 tmp_path / "kb", progress=False)
    assert time.perf_counter() - t0 < 30
    assert "longer than" in caplog.text
    assert len(kb) == 2
    # a one-edit neighbour of a long KB word is never skipped by the fuzzy prefilter
    assert kb.near_word("b" * (MAX_LEN + 5) + "c")
    assert not kb.near_word("zzzz")


def test_unwritable_output_is_a_clear_error(tmp_path):
    src = _write(tmp_path / "kb.jsonl", '{"id": "X:1", "name": "Foo"}\n')
    blocker = _write(tmp_path / "file", "")
    out = subprocess.run([sys.executable, "-m", "spacy_entlink", "build-kb", str(src), "--output", str(blocker / "kb")],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert f"KB output {blocker / 'kb'}: cannot write there ({blocker} is a file, not a folder)" in out.stderr
    assert "Traceback" not in out.stderr
