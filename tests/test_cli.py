import json
import subprocess
import sys
from pathlib import Path

import pytest

from spacy_entlink.cli import main

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


def test_split_corpus_by_document(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = [nlp(f"Document number {i} .") for i in range(20)]
    for i, d in enumerate(docs):
        d.ents = [d.char_span(0, 8, label="X", kb_id=f"ID:{i}")]
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "all.spacy")
    main(["split-corpus", str(tmp_path / "all.spacy"), str(tmp_path / "a.spacy"), str(tmp_path / "b.spacy"),
          "--share", "0.25", "--seed", "3"])
    a = [d.text for d in DocBin().from_disk(tmp_path / "a.spacy").get_docs(nlp.vocab)]
    b = list(DocBin().from_disk(tmp_path / "b.spacy").get_docs(nlp.vocab))
    assert len(a) == 15 and len(b) == 5 and not set(a) & {d.text for d in b}
    assert sorted(a + [d.text for d in b]) == sorted(d.text for d in docs)
    assert all(d.ents[0].kb_id_ == f"ID:{d.text.split()[2]}" for d in b)  # entities and ids kept
    main(["split-corpus", str(tmp_path / "all.spacy"), str(tmp_path / "a2.spacy"), str(tmp_path / "b2.spacy"),
          "--share", "0.25", "--seed", "3"])
    assert (tmp_path / "b2.spacy").read_bytes() == (tmp_path / "b.spacy").read_bytes()
    with pytest.raises(SystemExit):
        main(["split-corpus", str(tmp_path / "all.spacy"), str(tmp_path / "a.spacy"), str(tmp_path / "b.spacy"),
              "--share", "1.5"])
