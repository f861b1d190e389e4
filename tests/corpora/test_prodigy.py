"""Prodigy JSONL reader on small invented tasks."""

import json

import pytest

from spacy_entlink.corpora import GOLD_SPANS_KEY, read_prodigy
from spacy_entlink.errors import DataError

TEXT = "Dr Anna Vell joined Orvik Labs in Tessel."


def span(sub, label, kb_id=None, text=TEXT):
    start = text.index(sub)
    rec = {"start": start, "end": start + len(sub), "label": label}
    if kb_id is not None:
        rec["kb_id"] = kb_id
    return rec


ACCEPTED = {
    "text": TEXT,
    "spans": [span("Anna Vell", "PER", "Q1"), span("Vell", "PER"), span("Orvik Labs", "ORG", "Q2"),
              span("Tessel", "LOC", "Q3")],
    "relations": [
        {"head_span": span("Anna Vell", "PER"), "child_span": span("Orvik Labs", "ORG"), "label": "Work_For"},
        {"head_span": span("Orvik Labs", "ORG"), "child_span": span("Tessel", "LOC"), "label": "Based_In"},
    ],
    "answer": "accept",
    "meta": {"id": "task-1"},
}
NO_ANSWER = {"text": "Tessel is cold.", "spans": [span("Tessel", "LOC", text="Tessel is cold.")], "_input_hash": 99}
REJECTED = {"text": "Orvik Labs closed.", "spans": [], "answer": "reject"}
IGNORED = {"text": "Nothing here.", "answer": "ignore"}
CHOICE = {"text": "Vell spoke.", "spans": [span("Vell", "PER", text="Vell spoke.")],
          "options": [{"id": "Q1"}, {"id": "NIL_otherLink"}], "accept": ["Q1"], "answer": "accept"}
CHOICE_NIL = dict(CHOICE, accept=["NIL_otherLink"])


def jsonl(*tasks):
    return "\n".join(t if isinstance(t, str) else json.dumps(t) for t in tasks) + "\n"


def test_reads_accepted_tasks_and_skips_rejected(write, nlp):
    path = write("tasks.jsonl", jsonl(ACCEPTED, REJECTED, "", NO_ANSWER, IGNORED))
    stats = {}
    docs = list(read_prodigy(path, nlp, stats=stats))
    assert [d.text for d in docs] == [TEXT, "Tessel is cold."]
    assert [d.user_data["entlink_doc_id"] for d in docs] == ["task-1", "99"]
    assert stats["skipped"] == 2 and stats["docs"] == 2


def test_spans_ents_kb_ids_and_overlap(write, nlp):
    doc = next(read_prodigy(write("tasks.jsonl", jsonl(ACCEPTED)), nlp))
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Anna Vell", "PER", "Q1"), ("Orvik Labs", "ORG", "Q2"), ("Tessel", "LOC", "Q3")]
    assert [s.text for s in doc.spans[GOLD_SPANS_KEY]] == ["Anna Vell", "Vell", "Orvik Labs", "Tessel"]


def test_relations(write, nlp):
    doc = next(read_prodigy(write("tasks.jsonl", jsonl(ACCEPTED)), nlp))
    assert [(r.head.text, r.label, r.tail.text) for r in doc._.entlink_relations] == [
        ("Anna Vell", "Work_For", "Orvik Labs"), ("Orvik Labs", "Based_In", "Tessel")]
    assert doc._.entlink_relations[0].head.kb_id_ == "Q1"


def test_choice_layout_gives_kb_id(write, nlp):
    docs = list(read_prodigy(write("el.jsonl", jsonl(CHOICE, CHOICE_NIL)), nlp))
    assert [d.ents[0].kb_id_ for d in docs] == ["Q1", ""]


def test_misaligned_span_is_expanded(write, nlp):
    task = {"text": TEXT, "spans": [{"start": 3, "end": 6, "label": "PER"}]}
    stats = {}
    doc = next(read_prodigy(write("mis.jsonl", jsonl(task)), nlp, stats=stats))
    assert doc.ents[0].text == "Anna" and stats["misaligned"] == 1


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ({"spans": []}, "'text'"),
        ({"text": "Short.", "spans": [{"start": 0, "end": 60, "label": "X"}]}, "out of range"),
        ({"text": "Short.", "spans": [{"start": -1, "end": 3, "label": "X"}]}, "out of range"),
        ({"text": "Short.", "spans": [{"start": "0", "end": 3, "label": "X"}]}, "integers"),
        ({"text": "Short.", "spans": [{"start": 0, "end": 5}]}, "'label'"),
        ({"text": "Short.", "spans": [{"start": 0, "end": 5, "label": "X", "kb_id": 5}]}, "'kb_id'"),
        ({"text": "Short.", "relations": [{"head_span": {"start": 0, "end": 5}, "child_span": {"start": 0, "end": 99},
                                           "label": "R"}]}, "out of range"),
        ({"text": "Short.", "answer": "maybe"}, "unknown answer"),
    ],
)
def test_bad_tasks_raise_data_error_with_file_and_line(write, nlp, bad, fragment):
    path = write("broken.jsonl", jsonl(ACCEPTED, bad))
    with pytest.raises(DataError) as info:
        list(read_prodigy(path, nlp))
    message = str(info.value)
    assert "broken.jsonl, line 2" in message
    assert fragment in message
