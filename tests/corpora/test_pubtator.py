"""PubTator reader on small invented documents."""

from typing import List, Optional

import pytest

from spacy_entlink.corpora import GOLD_SPANS_KEY, normalize_ids, read_pubtator
from spacy_entlink.errors import DataError

TITLE = "Zorbamide causes acute flimitis."
ABSTRACT = ("Patients given zorbamide (ZB)-induced flimitis, and quixol gave grent and flox injury; "
            "one had a Plomb syndrome.")
TEXT = TITLE + " " + ABSTRACT


def mention(sub: str, label: str, ids: str, pmid: str = "1001", text: str = TEXT, nth: int = 0,
            extra: Optional[str] = None) -> str:
    start = -1
    for _ in range(nth + 1):
        start = text.index(sub, start + 1)
    fields = [pmid, str(start), str(start + len(sub)), sub, label, ids] + ([extra] if extra else [])
    return "\t".join(fields)


def document(lines: List[str], pmid: str = "1001", title: str = TITLE, abstract: Optional[str] = ABSTRACT) -> str:
    head = [f"{pmid}|t|{title}"] + ([f"{pmid}|a|{abstract}"] if abstract is not None else [])
    return "\n".join(head + lines) + "\n"


MENTIONS = [
    mention("Zorbamide", "Chemical", "D000001"),
    mention("acute flimitis", "Disease", "D000010"),
    mention("flimitis", "Disease", "D000010"),  # nested in "acute flimitis"
    mention("zorbamide", "Chemical", "D000001"),
    mention("ZB", "Chemical", "D000001"),  # inside the token "ZB)-induced"
    mention("flimitis", "Disease", "D000010", nth=1),
    mention("quixol", "Chemical", "-1"),
    mention("grent and flox injury", "Disease", "D000002|-1", extra="grent injury|flox injury"),
    mention("Plomb syndrome", "Disease", "D000003|D000004"),
    "1001\tCID\tD000001\tD000010",
    "1001\tCID\tD000001\tD000002",
]


@pytest.fixture
def pubtator_file(write):
    second = document([mention("Lirex", "Chemical", "C000123", pmid="1002", text="Lirex and mood.")],
                      pmid="1002", title="Lirex and mood.", abstract=None)
    return write("tiny.PubTator.txt", document(MENTIONS) + "\n" + second)


def test_reads_documents_text_and_ids(pubtator_file, nlp):
    stats = {}
    docs = list(read_pubtator(pubtator_file, nlp, stats=stats))
    assert len(docs) == 2
    doc = docs[0]
    assert doc.text == TEXT
    assert doc.user_data["entlink_doc_id"] == "1001"
    assert docs[1].text == "Lirex and mood."  # no abstract line: the title alone
    assert docs[1].user_data["entlink_doc_id"] == "1002"
    assert [(e.text, e.label_, e.kb_id_) for e in docs[1].ents] == [("Lirex", "Chemical", "MESH:C000123")]
    assert stats["docs"] == 2
    assert stats["gold_spans"] == 10
    assert stats["relations"] == 2


def test_ids_minus_one_and_composite(pubtator_file, nlp):
    doc = next(read_pubtator(pubtator_file, nlp))
    ids = {e.text: e.kb_id_ for e in doc.ents}
    assert ids["Zorbamide"] == "MESH:D000001"
    assert ids["quixol"] == ""  # -1: kept, unlinked
    assert ids["grent and flox injury"] == "MESH:D000002"  # the -1 part dropped
    assert ids["Plomb syndrome"] == "MESH:D000003|MESH:D000004"


def test_normalize_ids():
    assert normalize_ids("D1|D2") == "MESH:D1|MESH:D2"
    assert normalize_ids("-1") == ""
    assert normalize_ids("-1|-1") == ""
    assert normalize_ids("D1+D2") == "MESH:D1|MESH:D2"
    assert normalize_ids("OMIM:123|D1") == "OMIM:123|MESH:D1"
    assert normalize_ids("D1|D1") == "MESH:D1"
    assert normalize_ids("D1", id_prefix="") == "D1"


def test_overlapping_mentions_keep_longest_in_ents_and_all_in_span_group(pubtator_file, nlp):
    stats = {}
    doc = next(read_pubtator(pubtator_file, nlp, stats=stats))
    ent_texts = [e.text for e in doc.ents]
    assert "acute flimitis" in ent_texts
    assert ent_texts.count("flimitis") == 1  # the nested one is left out, the later one kept
    gold = [(s.text, s.label_) for s in doc.spans[GOLD_SPANS_KEY]]
    assert ("flimitis", "Disease") in gold and ("acute flimitis", "Disease") in gold
    assert len(doc.spans[GOLD_SPANS_KEY]) == 9
    assert stats["overlapping"] == 1


def test_misaligned_mention_is_expanded_and_counted(pubtator_file, nlp, caplog):
    stats = {}
    with caplog.at_level("WARNING", logger="spacy_entlink.corpora"):
        doc = list(read_pubtator(pubtator_file, nlp, stats=stats))[0]
    assert stats["misaligned"] == 1
    expanded = [s for s in doc.spans[GOLD_SPANS_KEY] if "ZB" in s.text]
    assert len(expanded) == 1 and expanded[0].text != "ZB" and expanded[0].kb_id_ == "MESH:D000001"
    assert "did not align" in caplog.text


def test_cid_relations_are_document_level_between_ids(pubtator_file, nlp):
    doc = next(read_pubtator(pubtator_file, nlp))
    rels = doc._.entlink_relations
    assert [(r.head, r.label, r.tail, r.score) for r in rels] == [
        ("MESH:D000001", "CID", "MESH:D000010", 1.0),
        ("MESH:D000001", "CID", "MESH:D000002", 1.0),
    ]


def test_types_filter_and_prefix(pubtator_file, nlp):
    stats = {}
    doc = next(read_pubtator(pubtator_file, nlp, types=["Disease"], id_prefix="", stats=stats))
    assert {e.label_ for e in doc.ents} == {"Disease"}
    assert {s.label_ for s in doc.spans[GOLD_SPANS_KEY]} == {"Disease"}
    assert "D000003|D000004" in {e.kb_id_ for e in doc.ents}
    assert len(doc._.entlink_relations) == 2  # concept-level relations are kept
    assert stats["filtered"] == 4


def test_crlf_and_no_trailing_blank_line(write, nlp):
    content = document([mention("Zorbamide", "Chemical", "D000001")]).replace("\n", "\r\n").rstrip()
    docs = list(read_pubtator(write("crlf.txt", content), nlp))
    assert len(docs) == 1 and docs[0].text == TEXT
    assert [e.text for e in docs[0].ents] == ["Zorbamide"]


def _bad(lines: List[str]) -> str:
    return document(lines)


@pytest.mark.parametrize(
    "content, line, fragment",
    [
        (_bad(["1001\t0\t9\tZorbamide"]), 3, "fields"),
        (_bad(["1001\t0\t9\tZorbamide\tChemical\tD1\tx\ty"]), 3, "fields"),
        (_bad(["1001\tzero\t9\tZorbamide\tChemical\tD1"]), 3, "not an integer"),
        (_bad(["1001\t0\t9000\tZorbamide\tChemical\tD1"]), 3, "out of range"),
        (_bad(["1001\t9\t0\tZorbamide\tChemical\tD1"]), 3, "out of range"),
        (_bad([mention("Zorbamide", "Chemical", "D1"), "1001\t1\t10\tZorbamide\tChemical\tD1"]), 4, "differs"),
        (_bad(["1002\t0\t9\tZorbamide\tChemical\tD1"]), 3, "PMID"),
        (_bad(["1001\tCID\t-1\tD000010"]), 3, "two ids"),
        ("1001\t0\t9\tZorbamide\tChemical\tD1\n", 1, "before any title"),
        ("1001|a|An abstract first.\n", 1, "before any title"),
        (document([mention("Zorbamide", "Chemical", "D1"), "1001|a|Late abstract."], abstract=None), 3, "after its"),
    ],
)
def test_malformed_lines_raise_data_error_with_file_and_line(write, nlp, content, line, fragment):
    path = write("broken.PubTator.txt", content)
    with pytest.raises(DataError) as info:
        list(read_pubtator(path, nlp))
    message = str(info.value)
    assert "broken.PubTator.txt" in message
    assert f"line {line}" in message
    assert fragment in message
    assert info.value.line == line


def test_missing_file_raises_data_error(tmp_path, nlp):
    with pytest.raises(DataError, match="not found"):
        list(read_pubtator(tmp_path / "nope.txt", nlp))
