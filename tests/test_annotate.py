"""`python -m spacy_entlink annotate`: input formats, resuming after a kill."""

import json
import signal
import subprocess
import sys
import time

import pytest
import spacy

from spacy_entlink.annotate import ReadStats, read_records, resume_point


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


def test_killed_run_resumes_without_losing_or_duplicating(tmp_path):
    pipe = pipeline(tmp_path)
    n = 60000
    src = tmp_path / "in.jsonl"
    with src.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"doc{i}", "text": f"Patient {i} received cisplatin and recovered ."}) + "\n")
            if i == 100:
                f.write("{broken\n")
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "spacy_entlink", "annotate", str(pipe), str(src), str(out), "--batch-size", "50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 200_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the run finished before it could be killed")
    partial = out.read_text().count("\n")
    assert 0 < partial < n
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "already done" in done.stdout and "1 malformed records skipped" in done.stdout
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [f"doc{i}" for i in range(n)]
    last = json.loads(out.read_text().splitlines()[-1])
    assert last["ents"] == [{"start": last["text"].index("cisplatin"), "end": last["text"].index("cisplatin") + 9,
                             "text": "cisplatin", "label": "Chemical"}]
    again = subprocess.run(cmd, capture_output=True, text=True)  # nothing left: no duplicates either
    assert again.returncode == 0 and out.read_text().count("\n") == n
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "zzz", "text": "x"}) + "\n")
    mismatch = subprocess.run(cmd[:5] + [str(other), str(out)], capture_output=True, text=True)
    assert mismatch.returncode == 1 and "do not match the input" in mismatch.stderr


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
