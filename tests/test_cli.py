import json
import subprocess
import sys
from pathlib import Path

ASSETS = Path(__file__).parents[1] / "assets"


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spacy_entlink", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_build_kb_reports_bad_row_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,aliases\nX1,Good name,alias\nX2,,alias\n")
    out = _cli("build-kb", bad, "--output", tmp_path / "kb")
    assert out.returncode == 1
    assert "bad.csv, line 3" in out.stderr
    assert "Traceback" not in out.stderr


def test_build_assemble_annotate_demo(tmp_path):
    out = _cli("build-kb", ASSETS / "demo_kb.jsonl", "--output", tmp_path / "kb")
    assert out.returncode == 0, out.stderr
    assert "40 entities" in out.stdout
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary").set_kb(tmp_path / "kb")
    nlp.to_disk(tmp_path / "pipe")
    out = _cli("annotate", tmp_path / "pipe", ASSETS / "demo_texts.jsonl", tmp_path / "out.jsonl")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    n_texts = sum(1 for line in (ASSETS / "demo_texts.jsonl").read_text().splitlines() if line.strip())
    assert len(lines) == n_texts  # no document dropped, the empty one included
    assert lines[-1]["ents"] == []
    first = {(e["text"], e.get("kb_id")) for e in lines[0]["ents"]}
    assert ("Cisplatin", "DEMO:C001") in first


def test_annotate_reports_bad_lines_and_goes_on(tmp_path):
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"text": "ok Cisplatin"}\n{"txt": "no"}\nnot json\n{"text": "", "id": "e"}\n')
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary").set_kb(_demo_kb(tmp_path))
    nlp.to_disk(tmp_path / "pipe")
    out = _cli("annotate", tmp_path / "pipe", bad, tmp_path / "out.jsonl")
    assert out.returncode == 0, out.stderr
    assert "in.jsonl, line 2" in out.stderr and "in.jsonl, line 3" in out.stderr
    assert "2 malformed records skipped" in out.stdout
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["1", "e"]


def _demo_kb(tmp_path):
    from spacy_entlink.kb import KnowledgeBase, read_source

    return KnowledgeBase.build(read_source(ASSETS / "demo_kb.jsonl"), tmp_path / "kb")
