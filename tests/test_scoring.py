import spacy
from spacy.tokens import Span
from spacy.training import Example

from spacy_entlink.extensions import Relation
from spacy_entlink.scoring import relation_errors, score_relations


def _doc(nlp, ents, rels):
    doc = nlp("aspirin caused rash and fever after ibuprofen")
    doc.ents = [Span(doc, i, i + 1, label=label, kb_id=kb) for i, label, kb in ents]
    doc._.entlink_relations = [Relation(h, "CID", t) for h, t in rels]
    return doc


def test_relation_errors_split_misses_and_false_positives_by_their_cause():
    nlp = spacy.blank("en")
    gold = _doc(nlp, [(0, "Chemical", "C1"), (2, "Disease", "D1"), (4, "Disease", "D2"), (6, "Chemical", "C2")],
                [("C1", "D1"), ("C1", "D2"), ("C2", "D1"), ("C2", "D2")])
    # found: C1, D1, D2 and a wrong chemical id C9 for "ibuprofen"; C2 is lost
    pred = _doc(nlp, [(0, "Chemical", "C1"), (2, "Disease", "D1"), (4, "Disease", "D2"), (6, "Chemical", "C9")],
                [("C1", "D1"), ("C9", "D1"), ("D2", "C1")])
    errors = relation_errors([Example(pred, gold)])
    assert errors["tp"] == 1  # (C1, D1)
    assert errors["fn"] == 3 and errors["fn_both_ids_found"] == 1  # (C1, D2): both ids found, reader missed it
    assert errors["missed_head_id"] == 2 and errors["missed_tail_id"] == 0 == errors["missed_both_ids"]  # C2 lost
    assert errors["fp"] == 2
    assert errors["fp_id_outside_gold"] == 1  # C9 is no gold id
    assert errors["fp_both_ids_in_gold"] == 1  # (D2, C1): two gold ids joined the wrong way round
    scores = score_relations([Example(pred, gold)])
    assert scores["rel_micro_p"] == errors["tp"] / (errors["tp"] + errors["fp"])
    assert scores["rel_micro_r"] == errors["tp"] / (errors["tp"] + errors["fn"])


def test_relation_errors_ignore_relations_between_spans():
    nlp = spacy.blank("en")
    gold = nlp("Ann met Bob")
    gold.ents = [Span(gold, 0, 1, label="PER"), Span(gold, 2, 3, label="PER")]
    gold._.entlink_relations = [Relation(gold.ents[0], "Knows", gold.ents[1])]
    pred = nlp("Ann met Bob")
    errors = relation_errors([Example(pred, gold)])
    assert errors["fn"] == 0 and errors["tp"] == 0 and errors["fp"] == 0
