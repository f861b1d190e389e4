import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Span

from spacy_entlink.errors import ConfigError

TEXT = "Patients with heart attack got doxorubicin and aspirin for hypertension."


@Language.component("entlink_test_fake_ner")
def fake_ner(doc):
    """Marks "patients" and "doxorubicin" as entities, as a statistical NER might."""
    ents = [Span(doc, t.i, t.i + 1, label="Chemical" if t.lower_ == "doxorubicin" else "Group")
            for t in doc if t.lower_ in ("patients", "doxorubicin")]
    doc.set_ents(ents, default="outside")
    return doc


@pytest.fixture
def nlp(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary", config={"fusion": "spans_only"}).set_kb(demo_kb)
    nlp.add_pipe("entlink_test_fake_ner")
    nlp.add_pipe("entlink_fusion", config={"fusion": "keep_ner"})
    return nlp


def test_spans_only_leaves_entity_tags_missing(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary", config={"fusion": "spans_only"}).set_kb(demo_kb)
    doc = nlp(TEXT)
    assert [t.ent_iob_ for t in doc] == [""] * len(doc)  # an ner after it stays unconstrained
    assert {s.text for s in doc.spans["entlink_candidates"]} >= {"heart attack", "doxorubicin", "hypertension"}


def test_fusion_reuses_candidates_with_ner_ents(nlp):
    doc = nlp(TEXT)
    ents = [(e.text, e.label_, e.kb_id_) for e in doc.ents]
    assert ("Patients", "Group", "") in ents and ("doxorubicin", "Chemical", "DEMO:C002") in ents
    assert ("heart attack", "Disease", "DEMO:D005") in ents
    assert ("hypertension", "Disease", "DEMO:D006") in ents


def test_fusion_gives_the_same_as_a_dictionary_after_ner(demo_kb, nlp):
    after = spacy.blank("en")
    after.add_pipe("entlink_test_fake_ner")
    after.add_pipe("entlink_dictionary", config={"fusion": "keep_ner"}).set_kb(demo_kb)
    for text in [TEXT, "", "MI (myocardial infarction) and MI again.", "nothing here"]:
        a, b = nlp(text), after(text)
        assert [(e.start, e.end, e.label_, e.kb_id_) for e in a.ents] == [(e.start, e.end, e.label_, e.kb_id_) for e in b.ents]


def test_fusion_without_dictionary_is_a_clear_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_fusion")
    with pytest.raises(ConfigError, match="no component named 'entlink_dictionary'"):
        nlp("text")


def test_fusion_before_dictionary_is_a_clear_error(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_fusion")
    nlp.add_pipe("entlink_dictionary", config={"fusion": "spans_only"}).set_kb(demo_kb)
    with pytest.raises(ConfigError, match="must come before"):
        nlp("text")


def test_spans_only_is_not_a_fusion_policy():
    nlp = spacy.blank("en")
    with pytest.raises(Exception, match="spans_only"):
        nlp.add_pipe("entlink_fusion", config={"fusion": "spans_only"})
