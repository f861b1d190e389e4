import pytest

from spacy_entlink.kb import EntityRecord, KnowledgeBase
from spacy_entlink.kb.variants import adjective_variant


@pytest.mark.parametrize(
    "name,expected",
    [("Hypertension", "Hypertensive"), ("Epilepsy", "Epileptic"), ("Drug Neurotoxicity", "Drug Neurotoxic"),
     ("Atherosclerosis", "Atherosclerotic"), ("Diabetes", "Diabetic"), ("Schizophrenia", "Schizophrenic"),
     ("Common Cold", ""), ("Sepsis", ""), ("Mania", "")],
)
def test_adjective_variant(name, expected):
    assert adjective_variant(name) == expected


def test_adjectives_are_keys_only_when_asked(tmp_path):
    recs = [EntityRecord("D1", "Hypertension", ["High Blood Pressure"]), EntityRecord("D2", "Epilepsy")]
    plain = KnowledgeBase.build(recs, tmp_path / "plain")
    adj = KnowledgeBase.build(recs, tmp_path / "adj", adjectives=True)
    assert plain.get_candidates("hypertensive") == []
    assert [c.id for c in adj.get_candidates("hypertensive")] == ["D1"]
    assert [c.id for c in adj.get_candidates("epileptic")] == ["D2"]
    assert adj.get_aliases(adj.row_of("D1")) == ["High Blood Pressure"]  # raw aliases unchanged
    assert adj.meta["adjectives"] is True
