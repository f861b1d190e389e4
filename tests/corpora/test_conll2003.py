"""CoNLL-2003 reader on small invented documents."""

import pytest

from spacy_entlink.corpora import read_conll2003
from spacy_entlink.errors import DataError

DOCSTART = "-DOCSTART- -X- O O"

DOC_A = """Kalo NNP I-NP I-PER
Benn NNP I-NP I-PER
Ruta NNP I-NP B-PER
met VBD I-VP O
Oskia NNP I-NP I-LOC
Fenland NNP I-NP I-ORG
. . O O

Vell NNP I-NP I-PER
left VBD I-VP O
. . O O
"""

DOC_B = """Trin NNP I-NP I-LOC
Haven NNP I-NP I-LOC

Haven NNP I-NP I-LOC
wins VBZ I-VP O
"""


def test_iob1_entities_and_docstart_at_end(write, nlp):
    path = write("tiny.conll", DOC_A + "\n" + DOCSTART + "\n\n" + DOC_B + "\n" + DOCSTART + "\n")
    stats = {}
    docs = list(read_conll2003(path, nlp, stats=stats))
    assert len(docs) == 2  # no empty doc after the final -DOCSTART-
    a, b = docs
    assert [(e.text, e.label_) for e in a.ents] == [
        ("Kalo Benn", "PER"), ("Ruta", "PER"), ("Oskia", "LOC"), ("Fenland", "ORG"), ("Vell", "PER")]
    assert [s.text for s in a.sents] == ["Kalo Benn Ruta met Oskia Fenland .", "Vell left ."]
    assert a.user_data["entlink_doc_id"] == "1" and b.user_data["entlink_doc_id"] == "2"
    # an entity never crosses a sentence break, even with I- on both sides
    assert [(e.text, e.label_) for e in b.ents] == [("Trin Haven", "LOC"), ("Haven", "LOC")]
    assert stats["docs"] == 2 and stats["entities"] == 7 and stats["sentences"] == 4


def test_docstart_first_and_iob2(write, nlp):
    iob2 = DOC_B.replace("Trin NNP I-NP I-LOC", "Trin NNP I-NP B-LOC")
    path = write("first.conll", DOCSTART + "\n\n" + DOC_A + "\n" + DOCSTART + "\n\n" + iob2)
    docs = list(read_conll2003(path, nlp))
    assert len(docs) == 2
    assert [e.text for e in docs[1].ents] == ["Trin Haven", "Haven"]


def test_file_without_docstart_is_one_document(write, nlp):
    docs = list(read_conll2003(write("plain.conll", DOC_A), nlp))
    assert len(docs) == 1 and len(docs[0]) == 10


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("Kalo NNP I-PER", "columns"),
        ("Kalo NNP I-NP I-PER extra", "columns"),
        ("Kalo NNP I-NP X-PER", "invalid NER tag"),
        ("Kalo NNP I-NP PER", "invalid NER tag"),
        ("Kalo NNP I-NP I-", "invalid NER tag"),
    ],
)
def test_bad_lines_raise_data_error_with_file_and_line(write, nlp, bad, fragment):
    path = write("broken.conll", DOC_A + "\n" + bad + "\n")
    with pytest.raises(DataError) as info:
        list(read_conll2003(path, nlp))
    message = str(info.value)
    assert "broken.conll, line 13" in message
    assert fragment in message
