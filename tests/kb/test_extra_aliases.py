import json

import pytest
import spacy
from spacy.tokens import Span

from spacy_entlink.errors import DataError
from spacy_entlink.kb import EntityRecord, KnowledgeBase, read_alias_file
from spacy_entlink.kb.sources import aliases_from_docs


def test_extra_aliases_extend_existing_entities(tmp_path):
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "D1", "aliases": ["grumbling gut", "Gut Grumble"]}) + "\n")
    kb = KnowledgeBase.build([EntityRecord("D1", "Gut Grumble Syndrome")], tmp_path / "kb",
                             extra_aliases=read_alias_file(extra))
    assert kb.get_aliases(kb.row_of("D1")) == ["grumbling gut", "Gut Grumble"]
    assert [c.id for c in kb.get_candidates("Grumbling guts")] == ["D1"]


def test_extra_aliases_for_unknown_id_name_file_and_line(tmp_path):
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"id": "D1", "aliases": ["a"]}\n\n{"id": "D9", "aliases": ["b"]}\n')
    with pytest.raises(DataError) as err:
        KnowledgeBase.build([EntityRecord("D1", "name")], tmp_path / "kb", extra_aliases=read_alias_file(extra))
    assert "extra.jsonl, line 3" in str(err.value) and "D9" in str(err.value)


def test_aliases_from_docs_skips_composite_and_unlinked():
    nlp = spacy.blank("en")
    doc = nlp("Gut rumble and tummy ache and belly ache here.")
    doc.ents = [Span(doc, 0, 2, "Disease", kb_id="D1"), Span(doc, 3, 5, "Disease", kb_id="D1|D2"),
                Span(doc, 6, 8, "Disease")]
    records = aliases_from_docs([doc, doc], min_count=2)
    assert [(r.id, r.aliases) for r in records] == [("D1", ["Gut rumble"])]


def test_aliases_from_docs_as_entities_with_types_name_and_type_filter(tmp_path):
    from spacy_entlink.kb import read_source

    nlp = spacy.blank("en")
    docs = []
    for text in ["Aspirin and ASA and aspirin.", "aspirin helps headache"]:
        doc = nlp(text)
        doc.ents = [Span(doc, t.i, t.i + 1, "Chemical" if t.lower_ in ("aspirin", "asa") else "Disease",
                         kb_id="C1" if t.lower_ in ("aspirin", "asa") else "D1")
                    for t in doc if t.lower_ in ("aspirin", "asa", "headache")]
        docs.append(doc)
    records = aliases_from_docs(docs, types=["Chemical"])
    assert [(r.id, r.name, r.type, r.aliases) for r in records] == [("C1", "aspirin", "Chemical", ["ASA", "Aspirin", "aspirin"])]
    path = tmp_path / "chem.jsonl"
    path.write_text("".join(json.dumps({"id": r.id, "name": r.name, "type": r.type, "aliases": r.aliases}) + "\n" for r in records))
    kb = KnowledgeBase.build(read_source(path, type="Disease"), tmp_path / "kb")
    assert kb.get_type(kb.row_of("C1")) == "Chemical"  # a record's own type beats the default


def test_merge_duplicates_joins_an_ontology_and_a_corpus_that_repeat_ids(tmp_path):
    import subprocess
    import sys

    from spacy_entlink.kb.sources import merge_duplicates

    ontology = tmp_path / "mesh.jsonl"
    ontology.write_text("\n".join(json.dumps(r) for r in [
        {"id": "MESH:D002945", "name": "Cisplatin", "type": "Chemical", "parents": ["MESH:D1"]},
        {"id": "MESH:D1", "name": "Platinum Compounds", "type": "Chemical"},
    ]) + "\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in [
        {"id": "MESH:D002945", "name": "cis-platinum", "aliases": ["CDDP", "Cisplatin"], "type": "Chemical",
         "prior": 2.0, "description": "an anticancer drug", "parents": ["MESH:D1", "MESH:D2"]},
        {"id": "MESH:C9", "name": "only in the corpus", "type": "Chemical"},
    ]) + "\n")
    from spacy_entlink.kb import read_source

    records = merge_duplicates([*read_source(ontology), *read_source(corpus)])
    assert [r.id for r in records] == ["MESH:D002945", "MESH:D1", "MESH:C9"]
    cis = records[0]
    assert (cis.name, cis.aliases, cis.prior, cis.description, cis.parents) == (
        "Cisplatin", ["cis-platinum", "CDDP"], 2.0, "an anticancer drug", ["MESH:D1", "MESH:D2"])
    kb = KnowledgeBase.build(records, tmp_path / "kb")
    assert [c.id for c in kb.get_candidates("CDDP")] == ["MESH:D002945"] and len(kb) == 3
    # without the option a repeated id stays an error naming the file and line; with it the CLI builds
    run = lambda *extra: subprocess.run([sys.executable, "-m", "spacy_entlink", "build-kb", str(ontology), str(corpus),
                                         "--output", str(tmp_path / "kb2"), *extra], capture_output=True, text=True)
    out = run()
    assert out.returncode == 1 and "corpus.jsonl, line 1" in out.stderr and "duplicate entity id" in out.stderr
    out = run("--merge-duplicates")
    assert out.returncode == 0, out.stderr
    assert [c.id for c in KnowledgeBase(tmp_path / "kb2").get_candidates("cis-platinum")] == ["MESH:D002945"]
    clash = tmp_path / "clash.jsonl"
    clash.write_text(json.dumps({"id": "MESH:D1", "name": "platinum", "type": "Disease"}) + "\n")
    with pytest.raises(DataError, match=r"clash.jsonl.*line 1.*'Disease'.*'Chemical'.*mesh.jsonl, line 2"):
        merge_duplicates([*read_source(ontology), *read_source(clash)])
