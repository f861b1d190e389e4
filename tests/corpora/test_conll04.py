"""CoNLL04 JSON reader on small invented sentences."""

import json

import pytest

from spacy_entlink.corpora import read_conll04
from spacy_entlink.corpora.conll04 import bilou_spans
from spacy_entlink.errors import DataError


def sentence(orig_id=42, **changes):
    item = {
        "tokens": ["Mara", "Velt", "works", "for", "Qubix", "Corp", "in", "Lorn", "."],
        "tags": ["B-Peop", "L-Peop", "O", "O", "B-Org", "L-Org", "O", "U-Loc", "O"],
        "relations": [{"head": 0, "tail": 1, "type": "Work_For"}, {"head": 1, "tail": 2, "type": "OrgBased_In"}],
        "orig_id": orig_id,
    }
    item.update(changes)
    return item


SECOND = {
    "tokens": ["Tarn", "Ostrel", "Dunmoor", "Bay", "shines", "today"],
    "tags": ["U-Loc", "B-Other", "I-Other", "L-Other", "O", "O"],
    "relations": [],
    "orig_id": 43,
}

TYPES = {
    "entities": {t: {"short": t, "verbose": t} for t in ("Loc", "Org", "Peop", "Other")},
    "relations": {t: {"short": t, "verbose": t, "symmetric": False}
                  for t in ("Work_For", "Kill", "OrgBased_In", "Live_In", "Located_In")},
}


@pytest.fixture
def conll04_file(write):
    return write("tiny_conll04.json", json.dumps([sentence(), SECOND]))


def test_reads_tokens_entities_and_relations(conll04_file, nlp):
    stats = {}
    docs = list(read_conll04(conll04_file, nlp, stats=stats))
    assert len(docs) == 2
    doc = docs[0]
    assert [t.text for t in doc] == sentence()["tokens"]
    assert doc.text == "Mara Velt works for Qubix Corp in Lorn ."
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Mara Velt", "Peop", ""), ("Qubix Corp", "Org", ""), ("Lorn", "Loc", "")]
    rels = doc._.entlink_relations
    assert [(r.head.text, r.label, r.tail.text) for r in rels] == [
        ("Mara Velt", "Work_For", "Qubix Corp"), ("Qubix Corp", "OrgBased_In", "Lorn")]
    assert doc.user_data["entlink_doc_id"] == "42"
    assert len(list(doc.sents)) == 1
    assert [e.text for e in docs[1].ents] == ["Tarn", "Ostrel Dunmoor Bay"]
    assert docs[1]._.entlink_relations == []
    assert stats == {"docs": 2, "entities": 5, "gold_spans": 5, "overlapping": 0, "relations": 2}


def test_types_file_and_list_accept_known_types(conll04_file, write, nlp):
    types_path = write("types.json", json.dumps(TYPES))
    assert len(list(read_conll04(conll04_file, nlp, types=types_path))) == 2
    assert len(list(read_conll04(conll04_file, nlp, types=["Work_For", "OrgBased_In"]))) == 2


def test_bilou_spans():
    assert bilou_spans(["U-A", "B-B", "I-B", "L-B", "O"]) == [(0, 1, "A"), (1, 4, "B")]
    for bad in (["I-A"], ["L-A"], ["B-A"], ["B-A", "L-B"], ["B-A", "O"], ["B-A", "U-A"], ["X-A"], ["U-"]):
        with pytest.raises(ValueError):
            bilou_spans(bad)


@pytest.mark.parametrize(
    "item, types, fragment",
    [
        (sentence(43, tags=["O", "I-Peop", "O", "O", "B-Org", "L-Org", "O", "U-Loc", "O"]), None, "outside an entity"),
        (sentence(43, tags=["B-Peop", "O", "O", "O", "B-Org", "L-Org", "O", "U-Loc", "O"]), None, "needs I-Peop"),
        (sentence(43, tags=["O"]), None, "one tag per token"),
        (sentence(43, relations=[{"head": 0, "tail": 3, "type": "Work_For"}]), None, "out of range"),
        (sentence(43, relations=[{"head": "0", "tail": 1, "type": "Work_For"}]), None, "entity index"),
        (sentence(43, relations=[{"head": 0, "tail": 1, "type": "Marries"}]), ["Work_For", "OrgBased_In"],
         "unknown relation type"),
        (sentence(43, tags=["B-Peop", "L-Peop", "O", "O", "B-Org", "L-Org", "O", "U-City", "O"]), "FILE",
         "unknown entity type"),
        (sentence(43, tokens=[]), None, "tokens"),
    ],
)
def test_bad_sentences_raise_data_error_naming_file_and_sentence(write, nlp, item, types, fragment):
    path = write("broken_conll04.json", json.dumps([sentence(), item]))
    if types == "FILE":
        types = write("types.json", json.dumps(TYPES))
    with pytest.raises(DataError) as info:
        list(read_conll04(path, nlp, types=types))
    message = str(info.value)
    assert "broken_conll04.json" in message
    assert "sentence 1 (orig_id 43)" in message
    assert fragment in message


def test_invalid_json_names_line(write, nlp):
    path = write("bad.json", '[\n{"tokens": ["A"],\n "tags": [O]}\n]')
    with pytest.raises(DataError) as info:
        list(read_conll04(path, nlp))
    assert "bad.json, line 3" in str(info.value)


def test_not_an_array(write, nlp):
    with pytest.raises(DataError, match="array"):
        list(read_conll04(write("obj.json", "{}"), nlp))
