"""`python -m spacy_entlink annotate`: input formats, resuming after a kill."""

import json
import signal
import subprocess
import sys
import time

import pytest
import spacy

from spacy_entlink.annotate import ReadStats, _skip_done, read_records, resume_point
from spacy_entlink.errors import EntlinkError


def pipeline(tmp_path):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "Chemical", "pattern": "cisplatin", "id": "D002945"}])
    nlp.to_disk(tmp_path / "pipe")
    return tmp_path / "pipe"


def test_pubtator_records_and_malformed_lines(tmp_path):
    src = tmp_path / "x.PubTator.txt"
    src.write_text("1|t|Title one\n1|a|Abstract one\n1\t0\t5\tTitle\tDisease\tD1\n\n"
                   "garbage line\n2|t|Only a title\n\n3|t|T3\n3|a|A3\n")
    stats = ReadStats()
    recs = list(read_records(src, "auto", stats))
    assert recs == [("1", "Title one Abstract one"), ("3", "T3 A3")]
    assert len(stats.malformed) == 2 and "line 5" in stats.malformed[0] and "lacks its abstract" in stats.malformed[1]
    text = tmp_path / "plain.txt"
    text.write_text("first\n\nthird\n")
    assert list(read_records(text)) == [("1", "first"), ("2", ""), ("3", "third")]  # empty documents kept


def test_resume_point_cuts_a_partial_line(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "1", "ents": []}\n{"id": "2", "ents": []}\n{"id": "3", "en')
    assert resume_point(out) == (2, "2")
    assert out.read_text().endswith('"2", "ents": []}\n')


def test_resuming_with_another_input_is_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "doc0", "ents": []}\n{"id": "doc1", "ents": []}\n')
    with pytest.raises(EntlinkError, match="do not match the input"):
        _skip_done(iter([("doc0", "x"), ("zzz", "y")]), out, resume=True)
    with pytest.raises(EntlinkError, match="do not match the input"):
        _skip_done(iter([("doc0", "x")]), out, resume=True)  # the input is shorter than the output
    rest, skip = _skip_done(iter([("doc0", "x"), ("doc1", "y"), ("doc2", "z")]), out, resume=True)
    assert skip == 2 and list(rest) == [("doc2", "z")]


@pytest.mark.slow
def test_dask_engine_writes_the_same_output_and_resumes(tmp_path):
    pytest.importorskip("dask.distributed")
    pipe = pipeline(tmp_path)
    src = tmp_path / "in.jsonl"
    with src.open("w") as f:
        for i in range(700):
            f.write(json.dumps({"id": f"doc{i}", "text": f"Patient {i} received cisplatin ." if i % 3 else ""}) + "\n")
            if i == 10:
                f.write("{broken\n")
    local, dist = tmp_path / "local.jsonl", tmp_path / "dask.jsonl"
    base = [sys.executable, "-m", "spacy_entlink", "annotate", str(pipe), str(src)]
    out = subprocess.run(base + [str(local)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # a previous run was cut after 123 records and half a line: the dask run must resume it
    lines = local.read_text().splitlines(keepends=True)
    dist.write_text("".join(lines[:123]) + lines[123][:20])
    out = subprocess.run(base + [str(dist), "--engine", "dask", "--n-process", "2", "--chunk-size", "100"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "after 123 already done" in out.stdout and "1 malformed records skipped" in out.stdout
    assert dist.read_text() == local.read_text()


# --- fuzzing (issue 17): any input file, any kill point ------------------------------------------
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spacy_entlink.annotate import annotate  # noqa: E402
from spacy_entlink.io import doc_to_json  # noqa: E402
from spacy_entlink.kb import KnowledgeBase, read_source  # noqa: E402

from .fuzz import fuzz_settings, mutated_bytes  # noqa: E402

ASSETS = Path(__file__).parents[1] / "assets"
SAMPLES = {
    "jsonl": ('{"id": "a1", "text": "Juvenile diabetes after cisplatin."}\n'
              '{"id": 7, "text": "Acute lymphoblastic leukaemia (ALL) relapsed; ALL was rare."}\n'
              '{"text": "heart attack and hypertention"}\n'),
    "text": "Juvenile diabetes after cisplatin.\n\nAcute lymphoblastic leukaemia (ALL) relapsed.\nheart attack\n",
    "pubtator": ("11|t|Juvenile diabetes after cisplatin.\n11|a|A heart attack followed.\n"
                 "11\t0\t17\tJuvenile diabetes\tDisease\tD1\n\n"
                 "12|t|Leukaemia.\n12|a|Acute lymphoblastic leukaemia (ALL) relapsed.\n"),
}


@pytest.fixture(scope="module")
def dictionary_nlp(tmp_path_factory):
    kb = KnowledgeBase.build(read_source(ASSETS / "demo_kb.jsonl"), tmp_path_factory.mktemp("kb") / "demo")
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary", config={"fuzzy": True}).set_kb(kb)
    return nlp


def _check_output(out: Path, recs):
    lines = out.read_text(encoding="utf8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r[0] for r in recs]  # one line per record, in order
    for line, (_, text) in zip(lines, recs):
        obj = json.loads(line)
        assert obj["text"] == text
        for ent in obj["ents"]:
            assert 0 <= ent["start"] < ent["end"] <= len(text) and text[ent["start"]:ent["end"]] == ent["text"]


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@fuzz_settings(30)
@given(data=st.data())
def test_any_input_file_is_read_and_annotated_without_a_crash(dictionary_nlp, fmt, data):
    """Mutated inputs (bad bytes, surrogate escapes, broken JSON, cut lines): every record read
    is valid text, everything else is reported with its line, reading is deterministic, and
    the output has one line per record whose entities lie inside the text."""
    raw = data.draw(mutated_bytes(SAMPLES[fmt]))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"in.{fmt}"
        src.write_bytes(raw)
        stats = ReadStats()
        recs = list(read_records(src, fmt, stats))
        again = ReadStats()
        assert list(read_records(src, fmt, again)) == recs and again.malformed == stats.malformed
        assert stats.records == len(recs)
        for rec_id, text in recs:
            assert isinstance(rec_id, str) and isinstance(text, str)
            text.encode("utf8")  # no lone surrogates
        assert all(str(src) in m and ", line " in m for m in stats.malformed)
        if fmt == "text":  # every line is a record unless it is not UTF-8
            assert len(recs) + len(stats.malformed) == raw.count(b"\n") + (not raw.endswith(b"\n") and bool(raw))
        out = Path(tmp) / "out.jsonl"
        result = annotate(dictionary_nlp, iter(recs), out, to_json=doc_to_json, batch_size=2, progress=False)
        assert result["annotated"] == len(recs)
        _check_output(out, recs)


def test_a_record_over_max_length_keeps_its_line_with_an_error(dictionary_nlp, tmp_path):
    recs = [("1", "heart attack"), ("2", "x" * 50 + " heart attack"), ("3", "cisplatin")]
    out = tmp_path / "out.jsonl"
    result = annotate(dictionary_nlp, iter(recs), out, to_json=doc_to_json, max_length=20, progress=False)
    assert result["annotated"] == 3 and result["too_long"] == 1
    _check_output(out, recs)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["ents"] and lines[2]["ents"]
    assert lines[1]["ents"] == [] and "over the pipeline's max_length of 20" in lines[1]["error"]
    assert "error" not in lines[0]


@pytest.fixture(scope="module")
def reference(dictionary_nlp, tmp_path_factory):
    """A complete output of 40 records and the records."""
    recs = [(f"d{i}", f"Patient {i}: juvenile diabetes {'after cisplatin ' * (i % 3)}; T2DM") for i in range(40)]
    out = tmp_path_factory.mktemp("ref") / "ref.jsonl"
    annotate(dictionary_nlp, iter(recs), out, to_json=doc_to_json, batch_size=4, progress=False)
    return recs, out.read_bytes()


@fuzz_settings(40)
@given(cut=st.floats(0, 1), batch_size=st.integers(1, 9))
def test_resuming_from_any_byte_a_kill_can_leave_gives_the_complete_output(dictionary_nlp, reference, cut, batch_size):
    """A kill leaves a prefix of the output, cut at any byte: resuming completes it exactly,
    neither losing nor duplicating a record."""
    recs, full = reference
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        out.write_bytes(full[:int(cut * len(full))])
        annotate(dictionary_nlp, iter(recs), out, to_json=doc_to_json, batch_size=batch_size, progress=False)
        assert out.read_bytes() == full


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory):
    """A pipeline, an input of 8,000 records (one malformed) and its uninterrupted output."""
    tmp = tmp_path_factory.mktemp("kill")
    pipe = pipeline(tmp)
    src = tmp / "in.jsonl"
    with src.open("w") as f:
        for i in range(8000):
            f.write(json.dumps({"id": f"doc{i}", "text": f"Patient {i} received cisplatin ."}) + "\n")
            if i == 100:
                f.write("{broken\n")
    cmd = [sys.executable, "-m", "spacy_entlink", "annotate", str(pipe), str(src)]
    ref = tmp / "ref.jsonl"
    done = subprocess.run(cmd + [str(ref)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return cmd, ref.read_bytes()


@pytest.mark.slow
@fuzz_settings(4)
@given(kill_at=st.floats(0, 1.1))
def test_sigkill_at_random_points_then_resume(kill_setup, kill_at):
    """The real thing: `annotate` in a subprocess, SIGKILLed once its output reaches a drawn
    share of the full output's bytes (past 1: when it ends by itself), then resumed by the same
    command; the result equals the uninterrupted run, byte for byte."""
    cmd, ref = kill_setup
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        proc = subprocess.Popen(cmd + [str(out), "--batch-size", "37"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while proc.poll() is None and (not out.exists() or out.stat().st_size < kill_at * len(ref)):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = out.read_bytes() if out.exists() else b""
        assert ref.startswith(left[:left.rfind(b"\n") + 1])  # complete lines of the killed run are final
        done = subprocess.run(cmd + [str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "1 malformed records skipped" in done.stdout
        assert out.read_bytes() == ref
        complete = left.count(b"\n")
        assert (f"after {complete:,} already done" in done.stdout) == (complete > 0)
