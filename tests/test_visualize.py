import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span

from spacy_entlink.extensions import add_relation
from spacy_entlink.io import doc_from_json, doc_to_json
from spacy_entlink.visualize import relation_arcs, render

ROOT = Path(__file__).parents[1]


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot", ROOT / "scripts" / "screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def doc():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    filler = " ".join(["word"] * 30)
    doc = nlp(f"John Smith works for Acme Corp in Boston. Cisplatin was given and {filler} then nephrotoxicity followed.")
    cis = next(t.i for t in doc if t.text == "Cisplatin")
    neph = next(t.i for t in doc if t.text == "nephrotoxicity")
    doc.ents = [Span(doc, 0, 2, label="Peop", kb_id="Q1"), Span(doc, 4, 6, label="Org"), Span(doc, 7, 8, label="Loc"),
                Span(doc, cis, cis + 1, label="Chemical", kb_id="D002945"),
                Span(doc, neph, neph + 1, label="Disease", kb_id="D007674")]
    doc.ents[0]._.entlink_links = [("Q1", 0.9), ("Q2", 0.05)]
    add_relation(doc, doc.ents[0], "Work_For", doc.ents[1], 0.93)
    add_relation(doc, doc.ents[1], "OrgBased_In", doc.ents[2], 0.71)
    add_relation(doc, "D002945", "CID", "D007674", 0.88)
    return doc


def test_render_shows_entities_ids_and_relation_arcs(doc):
    page = render([doc], kb_url_template="https://example.org/{}")
    assert page.startswith("<!DOCTYPE html>")
    for text in ("John Smith", "Acme Corp", "Work_For 0.93", "OrgBased_In 0.71", "CID 0.88", "Q1 0.90, Q2 0.05"):
        assert text in page
    assert 'href="https://example.org/D002945"' in page
    assert page.count("<svg") == 2  # one sentence diagram, one document-level diagram


def test_arcs_shorten_long_gaps_and_join_kb_id_relations(doc):
    data = relation_arcs(doc, [r for r in doc._.entlink_relations if r.label == "CID"], max_gap=6)
    texts = [w["text"] for w in data["words"]]
    assert texts[0] == "Cisplatin" and texts[-1] == "nephrotoxicity"
    assert "…" in texts and len(texts) < 15  # 30 filler words shortened
    (arc,) = data["arcs"]
    assert (arc["start"], arc["end"], arc["dir"]) == (0, len(texts) - 1, "right")
    assert data["words"][0]["tag"] == "Chemical D002945"


def test_render_empty_and_relation_free_docs():
    nlp = spacy.blank("en")
    page = render([nlp(""), nlp("Nothing to see here.")])
    assert "(empty document)" in page and "no relations" in page
    assert "<svg" not in page


def test_json_round_trip_keeps_entities_links_and_relations(doc):
    record = doc_to_json(doc)
    back = doc_from_json(json.loads(json.dumps(record)))
    assert [(e.text, e.label_, e.kb_id_) for e in back.ents] == [(e.text, e.label_, e.kb_id_) for e in doc.ents]
    assert back.ents[0]._.entlink_links == [("Q1", 0.9), ("Q2", 0.05)]
    rels = [(r.head if isinstance(r.head, str) else r.head.text, r.label, r.tail if isinstance(r.tail, str) else r.tail.text)
            for r in back._.entlink_relations]
    assert rels == [("John Smith", "Work_For", "Acme Corp"), ("Acme Corp", "OrgBased_In", "Boston"),
                    ("D002945", "CID", "D007674")]


def test_doc_from_json_names_the_bad_record():
    from spacy_entlink.errors import DataError

    with pytest.raises(DataError, match=r"out.jsonl, line 7: entity .* outside the text"):
        doc_from_json({"text": "short", "ents": [{"start": 2, "end": 40, "label": "X"}]}, path="out.jsonl", line=7)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "spacy_entlink", *map(str, args)], capture_output=True, text=True)


def test_visualize_cli(tmp_path, doc):
    records = tmp_path / "out.jsonl"
    records.write_text(json.dumps({"id": "d1", **doc_to_json(doc)}) + "\n")
    out = _cli("visualize", records, tmp_path / "view.html", "--kb-url", "https://example.org/{}")
    assert out.returncode == 0, out.stderr
    assert "1 documents, 5 entities, 3 relations" in out.stdout
    assert "Work_For" in (tmp_path / "view.html").read_text()
    records.write_text(records.read_text() + "{not json\n")
    out = _cli("visualize", records, tmp_path / "view.html")
    assert out.returncode == 1 and "out.jsonl, line 2" in out.stderr and "Traceback" not in out.stderr
    out = _cli("visualize", records, tmp_path / "view.html", "--kb-url", "https://example.org/")
    assert out.returncode == 1 and "--kb-url" in out.stderr


def test_screenshot_in_headless_chromium(tmp_path, doc):
    shot = _screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("no Chromium (apt-get install chromium)")
    html = tmp_path / "view.html"
    html.write_text(render([doc]))
    shot.screenshot(html, tmp_path / "view.png", 800, 900)
    width, height, values = shot.png_stats(tmp_path / "view.png")
    assert (width, height) == (800, 900) and values > 10
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body></body></html>")
    shot.screenshot(blank, tmp_path / "blank.png", 400, 300)
    assert shot.png_stats(tmp_path / "blank.png")[2] == 1
