"""KB source readers: every format (plain and .gz), and DataError(file, line) on bad rows.

All data here is invented; nothing is copied from the real MEDIC file.
"""

import gzip
import json
from pathlib import Path

import pytest

from spacy_entlink.errors import DataError
from spacy_entlink.kb import FORMATS, EntityRecord, KnowledgeBase, read_source
from spacy_entlink.kb.sources import guess_format

from . import snapshot

MEDIC_HEADER = (
    "# An invented vocabulary in the CTD MEDIC layout\n"
    "#\n"
    "# Fields:\n"
    "# DiseaseName\tDiseaseID\tAltDiseaseIDs\tDefinition\tParentIDs\tTreeNumbers\tParentTreeNumbers\tSynonyms\tSlimMappings\n"
    "#\n"
)
# name, id, alt ids, definition, synonyms
ENTITIES = [
    ("Gut Grumble Syndrome", "MESH:D900001", "OMIM:900001|DO:DOID:9001", "An invented disorder of the gut.",
     "Grumbling Gut|Gut Rumble|Gut Grumble Syndromes"),
    ("Acute Lymphoblastic Zorbitis", "MESH:C900002", "", "", "ALL|Zorbitis, Acute Lymphoblastic"),
    ("Blue Toe Disease", "MESH:D900003", "OMIM:900003", "Toes turn blue.", "Toe Blueness|Blue Toes"),
    ("Zorbitis", "MESH:D900004", "", "", ""),
    ("Crohn's Zorbitis", "OMIM:900005", "", "", "Zorbitis of Crohn"),
    ("Sjögren Zorbitis", "MESH:D900006", "", 'A "quoted", invented one.', "α-Zorbitis|Zorbitis, Sjögren"),
]
MEDIC_LINES = 5 + len(ENTITIES)  # header lines + entity lines


def medic_line(name, eid, alt, definition, synonyms, n_fields=9):
    fields = [name, eid, alt, definition, "MESH:D000001", "C01.001", "C01", synonyms, "Invented"]
    return "\t".join(fields[:n_fields]) + "\n"


def medic_text(header=True, n_fields=9):
    return (MEDIC_HEADER if header else "") + "".join(medic_line(*e, n_fields=n_fields) for e in ENTITIES)


def jsonl_text():
    lines = []
    for i, (name, eid, alt, definition, syn) in enumerate(ENTITIES):
        obj = {"id": eid, "name": name, "description": definition, "type": "Disease"}
        # aliases as a list on even lines, as a "|" string on odd ones; same for alt ids
        obj["aliases"] = syn.split("|") if i % 2 == 0 and syn else syn
        obj["alt_ids"] = alt.split("|") if i % 2 == 0 and alt else alt
        lines.append(json.dumps(obj, ensure_ascii=i % 2 == 0))
        if i == 1:
            lines.append("")  # blank lines are skipped
    return "\n".join(lines) + "\n"


def csv_text():
    out = ["id,name,aliases,description,type,prior,alt_ids"]
    for name, eid, alt, definition, syn in ENTITIES:
        q = lambda s: '"' + s.replace('"', '""') + '"' if ("," in s or '"' in s) else s  # noqa: E731
        out.append(",".join([eid, q(name), q(syn), q(definition), "Disease", "", alt]))
    return "\r\n".join(out) + "\r\n"


def obo_text():
    out = ["format-version: 1.2", "ontology: invented", "", "[Typedef]", "id: part_of", "name: part of", ""]
    for i, (name, eid, alt, definition, syn) in enumerate(ENTITIES):
        out += ["[Term]", f"id: {eid}", f"name: {name}", "namespace: Disease"]
        if definition:
            out.append('def: "' + definition.replace('"', '\\"') + '" [invented:1]')
        for k, a in enumerate(s for s in syn.split("|") if s):
            scope = "EXACT" if k % 2 == 0 else "RELATED"
            out.append(f'synonym: "{a}" {scope} []' + (" ! a comment" if i == 0 else ""))
        out.append(f'synonym: "narrower {name}" NARROW []')  # other concepts: not aliases
        out += [f"alt_id: {a}" for a in alt.split("|") if a]
        out += ["is_a: MESH:D000001 ! parent", ""]
    out += ["[Term]", "id: MESH:D999999", "name: Withdrawn Zorbitis", "is_obsolete: true", ""]
    return "\n".join(out)


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf8", newline="") as f:
            f.write(text)
    else:
        path.write_bytes(text.encode("utf8"))
    return path


def as_tuples(records):
    return [(r.id, r.name, r.aliases, r.description, r.type, r.alt_ids) for r in records]


EXPECTED = [
    (eid, name, [s for s in syn.split("|") if s], definition, "Disease", [a for a in alt.split("|") if a])
    for name, eid, alt, definition, syn in ENTITIES
]


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "fmt,name,text",
    [
        ("medic", "CTD_diseases.tsv", medic_text()),
        ("medic", "no_header.tsv", medic_text(header=False)),
        ("medic", "eight_fields.tsv", medic_text(n_fields=8)),
        ("jsonl", "kb.jsonl", jsonl_text()),
        ("csv", "kb.csv", csv_text()),
        ("obo", "kb.obo", obo_text()),
        ("obo", "kb_without_suffix.txt", obo_text()),
    ],
)
def test_every_format_reads_the_same_entities(tmp_path, fmt, name, text, suffix):
    path = write(tmp_path / (name + suffix), text)
    assert guess_format(path) == fmt
    records = list(read_source(path))
    assert as_tuples(records) == EXPECTED
    assert all(r.source == str(path) for r in records)
    assert list(read_source(path, format=fmt)) == records
    # Line numbers point at the line each record came from.
    lines = path.read_bytes() if suffix == "" else gzip.decompress(path.read_bytes())
    lines = lines.decode("utf8").splitlines()
    for r in records:
        assert r.id in lines[r.line - 1]


def test_medic_records_and_type(tmp_path):
    path = write(tmp_path / "d.tsv", medic_text())
    records = list(read_source(path, type="Pathology"))
    assert {r.type for r in records} == {"Pathology"}
    assert records[0].line == MEDIC_HEADER.count("\n") + 1


def test_popularity_format(tmp_path):
    text = "Usta_River_(Russia)\t12.5\nBlue_Toe\t3\n\nGut_Grumble_(band)\t0.25\n"
    path = write(tmp_path / "popularity.tsv", text)
    assert guess_format(path) == "popularity"
    records = list(read_source(path))
    assert [(r.id, r.name, r.aliases, r.prior, r.line) for r in records] == [
        ("Usta_River_(Russia)", "Usta River (Russia)", ["Usta River"], 12.5, 1),
        ("Blue_Toe", "Blue Toe", [], 3.0, 2),
        ("Gut_Grumble_(band)", "Gut Grumble (band)", ["Gut Grumble"], 0.25, 4),
    ]
    gz = write(tmp_path / "popularity.tsv.gz", text)
    assert as_tuples(read_source(gz)) == as_tuples(records)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_build_from_every_format_gives_the_same_kb(tmp_path, suffix):
    kbs = []
    for fmt, name, text in [("medic", "d.tsv", medic_text()), ("jsonl", "d.jsonl", jsonl_text()),
                            ("csv", "d.csv", csv_text()), ("obo", "d.obo", obo_text())]:
        path = write(tmp_path / (name + suffix), text)
        kbs.append(KnowledgeBase.build(read_source(path), tmp_path / f"kb_{fmt}"))
    snaps = [snapshot(kb) for kb in kbs]
    assert snaps[0] == snaps[1] == snaps[2] == snaps[3]
    kb = kbs[0]
    assert len(kb) == len(ENTITIES)
    assert kb.row_of("OMIM:900001") == kb.row_of("MESH:D900001") is not None
    assert "DO:DOID:9001" in kb and "OMIM:900003" in kb
    assert [c.id for c in kb.get_candidates("grumbling guts")] == ["MESH:D900001"]
    assert [c.id for c in kb.get_candidates("Crohn zorbitis")] == ["OMIM:900005"]
    # "ALL" is an acronym: it does not match the word "all".
    assert [c.id for c in kb.get_candidates("ALL")] == ["MESH:C900002"]
    assert kb.get_candidates("all") == []


# --- errors name the file and the line -----------------------------------------------------


def error_of(path, fmt=None) -> DataError:
    with pytest.raises(DataError) as info:
        list(read_source(path, format=fmt))
    return info.value


@pytest.mark.parametrize(
    "name,text,line,message",
    [
        ("bad.tsv", medic_text() + "Only\tthree\tfields\n", MEDIC_LINES + 1, "expected 9 tab-separated fields"),
        ("bad.tsv", medic_line(*ENTITIES[0]) + medic_line("X", "D123", "", "", ""), 2, "DiseaseID 'D123'"),
        ("bad.tsv", medic_line(*ENTITIES[0]) + "\n" + medic_line(" ", "MESH:D1", "", "", ""), 3, "DiseaseName is empty"),
        ("bad.jsonl", '{"id": "a", "name": "A"}\n\n{"id": "b", "name": \n', 3, "invalid JSON"),
        ("bad.jsonl", '{"id": "a", "name": "A"}\n[1, 2]\n', 2, "expected a JSON object"),
        ("bad.jsonl", '{"id": "a", "name": "A"}\n{"name": "B"}\n', 2, "missing or empty 'id'"),
        ("bad.jsonl", '{"id": "a", "name": ""}\n', 1, "missing or empty 'name'"),
        ("bad.jsonl", '{"id": "a", "name": "A", "prior": "high"}\n', 1, "'prior' 'high' is not a number"),
        ("bad.jsonl", '{"id": "a", "name": "A", "aliases": [1, 2]}\n', 1, "expected a list of strings"),
        ("bad.jsonl", '{"id": "a", "name": "A", "type": 3}\n', 1, "must be strings"),
        ("bad.csv", "id,label\na,A\n", 1, "the header must name at least the columns id,name"),
        ("bad.csv", "id,name\na,A\nb,B,extra\n", 3, "more fields than the 2 columns"),
        ("bad.csv", "id,name,prior\na,A,1\nb,B,x\n", 3, "'prior' 'x' is not a number"),
        ("bad.csv", "id,name\na,A\n,B\n", 3, "missing or empty 'id'"),
        ("bad_pop.tsv", "A\t1\nB\t2\tthree\n", 2, "expected 'title<TAB>score'"),
        ("bad_pop.tsv", "A\t1\nB\tlots\n", 2, "score 'lots' is not a number"),
        ("bad_pop.tsv", "A\t1\n \t2\n", 2, "empty title"),
        ("bad.obo", "[Term]\nid: X:1\nname: A\n\n[Term]\nname: B\n", 5, "[Term] stanza without an 'id:' line"),
        ("bad.obo", "[Term]\nid: X:1\n\n[Term]\nid: X:2\nname: B\n", 2, "term 'X:1' has no 'name:' line"),
        ("bad.obo", "[Term]\nid: X:1\nname: A\nsynonym: unquoted EXACT []\n", 4, "'synonym:' needs a quoted text"),
        ("bad.obo", "[Term]\nid: X:1\nname: A\nthis line has no tag\n", 4, "expected 'tag: value'"),
        ("bad.obo", "[Term]\nid: X:1\nid: X:2\nname: A\n", 3, "a second 'id:'"),
    ],
)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_malformed_rows_name_file_and_line(tmp_path, name, text, line, message, suffix):
    path = write(tmp_path / (name + suffix), text)
    fmt = "popularity" if name.startswith("bad_pop") else None
    err = error_of(path, fmt)
    assert err.path == str(path)
    assert err.line == line
    assert f"{path}, line {line}: " in str(err)
    assert message in str(err)


def test_obo_type_option_and_synonym_scopes(tmp_path):
    path = write(tmp_path / "d.obo", obo_text())
    records = list(read_source(path, type="Phenotype"))
    assert {r.type for r in records} == {"Phenotype"}  # --type wins over the namespace
    assert "MESH:D999999" not in {r.id for r in records}  # obsolete terms are skipped
    from spacy_entlink.kb.sources import read_obo

    narrow = list(read_obo(path, synonym_scopes=("NARROW",)))
    assert narrow[0].aliases == ["narrower Gut Grumble Syndrome"]


def test_file_level_errors(tmp_path):
    err = error_of(tmp_path / "missing.tsv")
    assert str(tmp_path / "missing.tsv") in str(err) and "file not found" in str(err)
    empty = write(tmp_path / "empty.tsv", "# only a comment\n\n")
    assert "cannot guess the format" in str(error_of(empty))
    with pytest.raises(DataError, match="unknown KB source format 'xml'"):
        read_source(write(tmp_path / "x.tsv", "a\t1\n"), format="xml")
    assert set(FORMATS) == {"medic", "jsonl", "csv", "popularity", "obo"}


def test_duplicate_id_names_both_lines(tmp_path):
    text = medic_text() + medic_line("Another Name", "MESH:D900003", "", "", "")
    path = write(tmp_path / "dup.tsv", text)
    with pytest.raises(DataError) as info:
        KnowledgeBase.build(read_source(path), tmp_path / "kb")
    first = MEDIC_HEADER.count("\n") + 3
    dup = MEDIC_HEADER.count("\n") + len(ENTITIES) + 1
    assert str(info.value).startswith(f"{path}, line {dup}: ")
    assert "duplicate entity id 'MESH:D900003'" in str(info.value)
    assert f"first seen at line {first}" in str(info.value)
    assert not (tmp_path / "kb" / "meta.json").exists()  # a failed build leaves no KB


@pytest.mark.parametrize("prior", ["nan", "inf", "-inf"])
def test_non_finite_prior_is_a_data_error(tmp_path, prior):
    path = write(tmp_path / "p.jsonl", '{"id": "a", "name": "A"}\n{"id": "b", "name": "B", "prior": "%s"}\n' % prior)
    with pytest.raises(DataError, match=r"p\.jsonl, line 2: .*not finite"):
        KnowledgeBase.build(read_source(path), tmp_path / "kb")


def test_record_checks_without_a_file(tmp_path):
    with pytest.raises(DataError, match="no entities"):
        KnowledgeBase.build([], tmp_path / "kb")
    with pytest.raises(DataError, match="has no name"):
        KnowledgeBase.build([EntityRecord("a", "  ")], tmp_path / "kb")
    with pytest.raises(DataError, match="surrounding whitespace"):
        KnowledgeBase.build([EntityRecord(" a", "A")], tmp_path / "kb")
    with pytest.raises(DataError, match="entity without an id"):
        KnowledgeBase.build([EntityRecord("", "A")], tmp_path / "kb")
    with pytest.raises(DataError, match="is not a number"):
        KnowledgeBase.build([EntityRecord("a", "A", prior="x")], tmp_path / "kb")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_invalid_utf8_names_its_line(tmp_path, suffix):
    good = medic_text(header=False).encode("utf8")
    bad = medic_line("Caf\u00e9 Zorbitis", "MESH:D900099", "", "", "").encode("utf8").replace(b"\xc3\xa9", b"\xe9")
    path = tmp_path / ("latin1.tsv" + suffix)
    path.write_bytes(gzip.compress(good + bad) if suffix else good + bad)
    err = error_of(path, "medic")
    assert err.line == len(ENTITIES) + 1
    assert f"{path}, line {len(ENTITIES) + 1}: not valid UTF-8" in str(err)


def test_csv_with_byte_order_mark_and_multiline_field(tmp_path):
    text = ('\ufeffid,name,aliases,description\r\nZ1,"Zorbitis, Acute",AZ,"Acute\r\nand invented"\r\n'
            'Z2,Blue Toe,,\r\n')
    path = write(tmp_path / "excel.csv", text)
    records = list(read_source(path))
    # a record's line is the line it starts on
    assert [(r.id, r.name, r.aliases, r.description, r.line) for r in records] == [
        ("Z1", "Zorbitis, Acute", ["AZ"], "Acute\r\nand invented", 2),
        ("Z2", "Blue Toe", [], "", 4),
    ]
    KnowledgeBase.build(records, tmp_path / "kb")  # a multi-line description is fine


def test_truncated_gzip_is_a_data_error(tmp_path):
    import random

    rnd = random.Random(0)
    text = "".join(f"T{i}_{rnd.getrandbits(64):x}\t{i}\n" for i in range(5000))
    path = tmp_path / "pop.tsv.gz"
    path.write_bytes(gzip.compress(text.encode("utf8"))[:20000])
    err = error_of(path, "popularity")
    assert str(path) in str(err) and "cannot read the file" in str(err)
    assert err.line is not None and 1 < err.line <= 5000
