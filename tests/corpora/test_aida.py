"""AIDA-YAGO2 TSV reader and candidates on small invented documents."""

import json

import pytest

from spacy_entlink.corpora import CANDIDATE_COUNTS_KEY, GOLD_SPANS_KEY, read_aida
from spacy_entlink.errors import DataError


def m(token, tag, text, title):
    return "\t".join([token, tag, text, title])


TSV_LINES = [
    "-DOCSTART- (7)",
    m("Velmont", "B", "Velmont Republic", "Velmont_Republic"),
    "",
    m("Republic", "I", "Velmont Republic", "Velmont_Republic"),  # mention across a sentence break
    "wins",
    ".",
    "",
    m("Jora", "B", "Jora", "--NME--"),
    "met",
    m("Osk", "B", "Osk Tarni", "Osk_Tarni_(singer)"),
    m("Tarni", "I", "Osk Tarni", "Osk_Tarni_(singer)"),
    m("Lorn", "B", "Lorn", "Lorn"),
    "",
    "-DOCSTART- (8 Quell news)",
    m("Quell", "B", "Quell's", "Quell"),
    m("'s", "I", "Quell's", "Quell"),
    "rise",
    "",
]
TSV = "\n".join(TSV_LINES) + "\n"


def cand(doc, mention, start, end, gold, *cands, **changes):
    rec = {"doc": doc, "mention": mention, "start_token": start, "end_token": end, "gold": gold,
           "candidates": [{"title": t, "in_count": n} for t, n in cands]}
    rec.update(changes)
    return json.dumps(rec)


CANDIDATES = [
    cand(7, "Velmont Republic", 0, 2, "Velmont_Republic", ("Velmont_Republic", 50), ("Velmont", 3)),
    cand(7, "Jora", 4, 5, None, ("Jora_River", 9)),
    cand(7, "Osk Tarni", 6, 8, "Osk_Tarni_(singer)", ("Osk_Tarni_(singer)", 12), ("Osk_Tarni_(band)", 12)),
    cand(8, "Quell's", 0, 2, "Quell", ("Quell", 1)),
]


@pytest.fixture
def tsv(write):
    return write("tiny_aida.tsv", TSV)


def test_reads_documents_mentions_and_sentences(tsv, nlp):
    stats = {}
    docs = list(read_aida(tsv, nlp, stats=stats))
    assert [d.user_data["entlink_doc_id"] for d in docs] == ["7", "8"]
    doc = docs[0]
    assert doc.text == "Velmont Republic wins . Jora met Osk Tarni Lorn"
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Velmont Republic", "ENT", "Velmont_Republic"),
        ("Jora", "ENT", ""),  # NIL
        ("Osk Tarni", "ENT", "Osk_Tarni_(singer)"),
        ("Lorn", "ENT", "Lorn"),  # a B right after another mention starts a new one
    ]
    assert len(doc.spans[GOLD_SPANS_KEY]) == 4
    assert [(e.text, e.kb_id_) for e in docs[1].ents] == [("Quell 's", "Quell")]
    assert stats["docs"] == 2 and stats["entities"] == 5 and stats["nil"] == 1


def test_cross_sentence_mention_is_one_entity_and_keeps_sentence_break(tsv, nlp):
    stats = {}
    doc = next(read_aida(tsv, nlp, stats=stats))
    assert doc[0].is_sent_start and doc[1].is_sent_start and not doc[2].is_sent_start
    assert doc.ents[0].start == 0 and doc.ents[0].end == 2
    assert [s.text for s in doc.sents] == ["Velmont", "Republic wins .", "Jora met Osk Tarni Lorn"]
    assert stats["cross_sentence"] == 1


def test_candidates_attach_to_entities(tsv, write, nlp):
    path = write("cands.jsonl", "\n".join(CANDIDATES) + "\n")
    stats = {}
    docs = list(read_aida(tsv, nlp, candidates=path, stats=stats))
    doc = docs[0]
    ents = {e.text: e for e in doc.ents}
    assert ents["Velmont Republic"]._.entlink_candidates == ["Velmont_Republic", "Velmont"]
    assert ents["Osk Tarni"]._.entlink_candidates == ["Osk_Tarni_(singer)", "Osk_Tarni_(band)"]
    assert ents["Lorn"]._.entlink_candidates is None  # no JSONL line for it
    counts = doc.user_data[CANDIDATE_COUNTS_KEY]
    assert counts == {"0:16": [50, 3], "24:28": [9], "33:42": [12, 12]}
    # the span group sees the same extension values (they are keyed by character offsets)
    assert doc.spans[GOLD_SPANS_KEY][0]._.entlink_candidates == ["Velmont_Republic", "Velmont"]
    assert docs[1].ents[0]._.entlink_candidates == ["Quell"]
    assert stats["with_candidates"] == 4


@pytest.mark.parametrize(
    "lines, line, fragment",
    [
        ([CANDIDATES[0], cand(7, "Jora", 4, 6, None, ("Jora_River", 9))], 2, "is not a mention"),
        ([CANDIDATES[0], cand(7, "Jora", 4, 5, "Jora_River", ("Jora_River", 9))], 2, "differs"),
        ([CANDIDATES[0], CANDIDATES[0]], 2, "second line"),
        ([CANDIDATES[0], cand(7, "Jora", 4, 5, None, candidates=[{"title": "X"}])], 2, "candidates"),
        ([CANDIDATES[0], cand(7, "Jora", "4", 5, None)], 2, "integers"),
        ([CANDIDATES[0], "{not json"], 2, "invalid JSON"),
        ([CANDIDATES[0], cand(9, "Quell's", 0, 2, "Quell")], 2, "document 9 is not in"),
        ([CANDIDATES[3], CANDIDATES[0]], 2, "document 7 is not in"),  # out of document order
    ],
)
def test_bad_candidates_raise_data_error_naming_jsonl_line(tsv, write, nlp, lines, line, fragment):
    path = write("bad_cands.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        list(read_aida(tsv, nlp, candidates=path))
    message = str(info.value)
    assert f"bad_cands.jsonl, line {line}" in message
    assert fragment in message


def _replace(index, new):
    lines = list(TSV_LINES)
    lines[index] = new
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "content, line, fragment",
    [
        (_replace(3, m("Republic", "I", "Velmont Rep", "Velmont_Republic")), 4, "continues the mention"),
        (_replace(5, m(".", "I", ".", "Dot")), 6, "outside a mention"),
        (_replace(4, "wins\tB"), 5, "tab-separated column"),
        (_replace(4, m("wins", "X", "wins", "Wins")), 5, "'B' or 'I'"),
        (_replace(7, m("Jora", "B", "Jorah", "--NME--")), 8, "does not match its tokens"),
        ("wins\n" + TSV, 1, "before the first -DOCSTART-"),
    ],
)
def test_bad_tsv_lines_raise_data_error_with_file_and_line(write, nlp, content, line, fragment):
    path = write("broken_aida.tsv", content)
    with pytest.raises(DataError) as info:
        list(read_aida(path, nlp))
    message = str(info.value)
    assert f"broken_aida.tsv, line {line}" in message
    assert fragment in message
