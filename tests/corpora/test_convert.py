"""convert(): every format to a .spacy DocBin and back, keeping ents, ids, relations and candidates."""

import json

import pytest
from spacy.tokens import DocBin

from spacy_entlink.corpora import CANDIDATE_COUNTS_KEY, GOLD_SPANS_KEY, convert
from spacy_entlink.errors import ConfigError

from .test_aida import CANDIDATES, TSV
from .test_conll04 import SECOND, TYPES, sentence
from .test_conll2003 import DOC_A, DOC_B, DOCSTART
from .test_prodigy import ACCEPTED, REJECTED, jsonl
from .test_pubtator import MENTIONS, document


def load(path, nlp):
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def test_pubtator_round_trip(write, tmp_path, nlp):
    src = write("in.PubTator.txt", document(MENTIONS))
    out = tmp_path / "sub" / "out.spacy"
    stats = convert(src, out, "pubtator", progress=False)
    assert stats["docs"] == 1 and stats["entities"] == 8 and stats["relations"] == 2 and stats["misaligned"] == 1
    (doc,) = load(out, nlp)
    assert doc.user_data["entlink_doc_id"] == "1001"
    ids = {e.text: e.kb_id_ for e in doc.ents}
    assert ids["Plomb syndrome"] == "MESH:D000003|MESH:D000004" and ids["quixol"] == ""
    assert len(doc.spans[GOLD_SPANS_KEY]) == 9
    assert [(r.head, r.label, r.tail) for r in doc._.entlink_relations][0] == ("MESH:D000001", "CID", "MESH:D000010")


def test_pubtator_types_option(write, tmp_path, nlp):
    src = write("in.PubTator.txt", document(MENTIONS))
    stats = convert(src, tmp_path / "d.spacy", "pubtator", types=["Disease"], progress=False)
    assert stats["entities"] == 4
    assert {e.label_ for e in load(tmp_path / "d.spacy", nlp)[0].ents} == {"Disease"}


def test_conll04_round_trip_keeps_span_relations(write, tmp_path, nlp):
    src = write("c.json", json.dumps([sentence(), SECOND]))
    types = write("types.json", json.dumps(TYPES))
    stats = convert(src, tmp_path / "c.spacy", "conll04", types=[str(types)], progress=False)
    assert stats == {"docs": 2, "entities": 5, "relations": 2, "misaligned": 0, "gold_spans": 5, "overlapping": 0}
    doc = load(tmp_path / "c.spacy", nlp)[0]
    rels = doc._.entlink_relations
    assert [(r.head.text, r.head.label_, r.label, r.tail.text) for r in rels][0] == (
        "Mara Velt", "Peop", "Work_For", "Qubix Corp")
    assert rels[0].head == doc.ents[0]


def test_aida_round_trip_keeps_candidates_and_sentences(write, tmp_path, nlp):
    src = write("a.tsv", TSV)
    cands = write("c.jsonl", "\n".join(CANDIDATES) + "\n")
    stats = convert(src, tmp_path / "a.spacy", "aida", candidates=cands, progress=False)
    assert stats["docs"] == 2 and stats["with_candidates"] == 4 and stats["cross_sentence"] == 1
    doc = load(tmp_path / "a.spacy", nlp)[0]
    assert [(e.text, e.kb_id_) for e in doc.ents][:2] == [("Velmont Republic", "Velmont_Republic"), ("Jora", "")]
    # msgpack (DocBin) gives lists back as tuples
    assert list(doc.ents[0]._.entlink_candidates) == ["Velmont_Republic", "Velmont"]
    assert list(doc.user_data[CANDIDATE_COUNTS_KEY]["0:16"]) == [50, 3]
    assert doc[1].is_sent_start and doc.user_data["entlink_doc_id"] == "7"


def test_conll2003_round_trip(write, tmp_path, nlp):
    src = write("n.conll", DOC_A + "\n" + DOCSTART + "\n\n" + DOC_B + "\n" + DOCSTART + "\n")
    stats = convert(src, tmp_path / "n.spacy", "conll2003", progress=False)
    assert stats["docs"] == 2 and stats["entities"] == 7
    docs = load(tmp_path / "n.spacy", nlp)
    assert len(list(docs[0].sents)) == 2 and docs[0].ents[1].text == "Ruta"


def test_prodigy_round_trip(write, tmp_path, nlp):
    src = write("p.jsonl", jsonl(ACCEPTED, REJECTED))
    stats = convert(src, tmp_path / "p.spacy", "prodigy", progress=False)
    assert stats["docs"] == 1 and stats["skipped"] == 1 and stats["relations"] == 2
    (doc,) = load(tmp_path / "p.spacy", nlp)
    assert [e.kb_id_ for e in doc.ents] == ["Q1", "Q2", "Q3"]
    assert [(r.head.text, r.label, r.tail.text) for r in doc._.entlink_relations][1] == (
        "Orvik Labs", "Based_In", "Tessel")


def test_limit_and_progress_bar(write, tmp_path, nlp, capsys):
    src = write("c.json", json.dumps([sentence(), SECOND]))
    stats = convert(src, tmp_path / "c.spacy", "conll04", limit=1)
    assert stats["docs"] == 1 and len(load(tmp_path / "c.spacy", nlp)) == 1
    assert "Converting c.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "fmt, options, fragment",
    [
        ("brat", {}, "format"),
        ("conll2003", {"types": ["PER"]}, "types"),
        ("pubtator", {"candidates": "x.jsonl"}, "candidates"),
        ("prodigy", {"label": "X"}, "label"),
    ],
)
def test_bad_options_raise_config_error(write, tmp_path, fmt, options, fragment):
    src = write("x.txt", "")
    with pytest.raises(ConfigError, match=fragment):
        convert(src, tmp_path / "x.spacy", fmt, progress=False, **options)


def test_output_directory_is_refused(write, tmp_path):
    with pytest.raises(ConfigError, match="directory"):
        convert(write("x.jsonl", ""), tmp_path, "prodigy", progress=False)
