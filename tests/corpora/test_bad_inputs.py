"""Regression tests for the bad corpus files of issue 17: each is refused with a DataError
naming the file and line (never a traceback, never an accepted file that silently lost or
changed a mention), or converted with a warning. Cases in docs/reliability.md."""

import json
import logging
import subprocess
import sys

import pytest
from spacy.tokens import DocBin

from spacy_entlink.corpora import convert
from spacy_entlink.corpora.convert import read_docs
from spacy_entlink.errors import DataError, EntlinkError

DOC = "1|t|Foo bar\n1|a|baz qux\n"


def _error(tmp_path, name, content, fmt, **kw) -> DataError:
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf8")
    import spacy

    with pytest.raises(DataError) as info:
        list(read_docs(path, fmt, spacy.blank("en"), **kw))
    assert str(info.value).startswith(str(path)), str(info.value)
    return info.value


@pytest.mark.parametrize(
    "name,content,fmt,line,fragment",
    [
        ("empty.txt", "", "pubtator", None, "no documents"),
        ("blank.txt", "\n\n", "pubtator", None, "no documents"),
        ("empty.tsv", "", "aida", None, "no documents"),
        ("docstart.tsv", "-DOCSTART- (1)\n\n", "aida", None, "no documents"),
        ("empty.jsonl", "", "prodigy", None, "no tasks"),
        ("empty.json", "[]", "conll04", None, "no sentences"),
        ("empty.conll", "-DOCSTART- -X- O O\n\n", "conll2003", None, "no documents"),
        ("ws.txt", DOC + "1\t3\t4\t \tDisease\tD1\n", "pubtator", 3, "covers only whitespace"),
        ("u.txt", DOC + "1\t0\t1_0\tFoo bar ba\tDisease\tD1\n", "pubtator", 3, "end offset '1_0'"),
        ("plus.txt", DOC + "1\t+0\t3\tFoo\tDisease\tD1\n", "pubtator", 3, "start offset '+0'"),
        ("arabic.txt", DOC + "1\t0\t\u0663\tFoo\tDisease\tD1\n", "pubtator", 3, "end offset"),
        ("dup.txt", DOC + "\n2|t|X\n2|a|y\n\n1|t|Again\n1|a|z\n", "pubtator", 7, "second document with PMID '1' (first at line 1)"),
        ("ws.jsonl", json.dumps({"text": "Foo  bar", "spans": [{"start": 3, "end": 5, "label": "X"}]}) + "\n",
         "prodigy", 1, "covers only whitespace"),
        ("wsrel.jsonl", json.dumps({"text": "Foo bar", "spans": [], "relations": [
            {"label": "R", "head_span": {"start": 3, "end": 4}, "child_span": {"start": 0, "end": 3}}]}) + "\n",
         "prodigy", 1, "covers only whitespace"),
        ("sur.jsonl", '{"text": "Foo \\ud800 bar", "spans": []}\n', "prodigy", 1, "'text' contains a lone surrogate"),
        ("surlabel.jsonl", '{"text": "Foo", "spans": [{"start": 0, "end": 3, "label": "\\udbff"}]}\n', "prodigy", 1,
         "'spans'[0]['label']"),
        ("deep.jsonl", '{"text": "Foo", "meta": ' + "[" * 50_000 + "]" * 50_000 + "}\n", "prodigy", 1, "nested too deeply"),
        ("latin1.json", b'[\n{"tokens": ["A"], "tags": ["O"]},\n{"tokens": ["Caf\xe9"], "tags": ["O"]}]', "conll04", 3,
         "not valid UTF-8 (byte 0xe9)"),
        ("sur.json", '[{"tokens": ["A\\ud800"], "tags": ["O"], "relations": []}]', "conll04", None, "lone surrogate"),
        ("wstok.json", '[{"tokens": ["A", " "], "tags": ["O", "O"], "relations": []}]', "conll04", None, "whitespace"),
        ("dupid.json", '[{"tokens": ["A"], "tags": ["O"], "orig_id": 7}, {"tokens": ["B"], "tags": ["O"], "orig_id": 7}]',
         "conll04", None, "sentence 1: a second document with orig_id '7'"),
        ("dupdoc.tsv", "-DOCSTART- (5)\nA\n\n-DOCSTART- (5)\nB\n", "aida", 4, "second document with document id '5'"),
        ("wstok.tsv", "-DOCSTART- (5)\nA\n \tB\tx\tX\n", "aida", 3, "whitespace-only token"),
    ],
)
def test_bad_corpus_files_are_refused(tmp_path, name, content, fmt, line, fragment):
    err = _error(tmp_path, name, content, fmt)
    assert err.line == line, str(err)
    assert fragment in str(err)


def test_prodigy_duplicate_task_ids_are_kept_and_counted(tmp_path, caplog):
    import spacy

    task = {"text": "Foo bar", "spans": [], "meta": {"id": "a"}}
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(task) + "\n" + json.dumps(task) + "\n")
    stats = {}
    with caplog.at_level(logging.WARNING, logger="spacy_entlink.corpora"):
        docs = list(read_docs(path, "prodigy", spacy.blank("en"), stats=stats))
    assert len(docs) == 2 and stats["duplicate_ids"] == 1
    assert "line 2: task id 'a' was first seen at line 1" in caplog.text


def test_a_document_over_max_length_is_converted_and_reported(tmp_path, caplog):
    import spacy

    nlp = spacy.blank("en")
    nlp.max_length = 1000
    title = "word " * 300
    path = tmp_path / "long.txt"
    path.write_text(f"1|t|{title}\n1|a|Foo\n1\t{len(title) + 1}\t{len(title) + 4}\tFoo\tDisease\tD1\n\n2|t|Short\n")
    stats = {}
    with caplog.at_level(logging.WARNING, logger="spacy_entlink.corpora"):
        docs = list(read_docs(path, "pubtator", nlp, stats=stats))
    assert [len(d.text) for d in docs] == [len(title) + 4, 5]
    assert [e.text for e in docs[0].ents] == ["Foo"]
    assert stats["over_max_length"] == 1 and "over nlp.max_length (1000)" in caplog.text


def test_failed_convert_leaves_the_previous_output(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(DOC + "1\t0\t3\tFoo\tDisease\tD1\n")
    out = tmp_path / "out.spacy"
    convert(good, out, "pubtator", progress=False)
    before = out.read_bytes()
    bad = tmp_path / "bad.txt"
    bad.write_text(DOC + "\n2|t|X\n2\t0\t9\tX\tDisease\tD1\n")
    with pytest.raises(DataError, match="out of range"):
        convert(bad, out, "pubtator", progress=False)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    import spacy

    assert len(list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))) == 1


def test_unwritable_convert_output_fails_before_reading(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EntlinkError, match=r"output .*: cannot write there \(.* is a file, not a folder\)"):
        convert(tmp_path / "does-not-matter.txt", blocker / "x.spacy", "pubtator", progress=False)
    out = subprocess.run([sys.executable, "-m", "spacy_entlink", "convert", str(tmp_path / "missing.txt"),
                          str(blocker / "x.spacy"), "--format", "pubtator"], capture_output=True, text=True)
    assert out.returncode == 1 and "cannot write there" in out.stderr and "Traceback" not in out.stderr
