"""The KB built from the real CTD MEDIC file in ../shared/data (skipped where it is absent).

Only counts and a few well-known ids are asserted; nothing of the data is copied here.
"""

import pytest

from spacy_entlink.kb import KnowledgeBase, read_source
from spacy_entlink.kb.sources import guess_format

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def medic_kb(shared_data, tmp_path_factory) -> KnowledgeBase:
    path = shared_data / "ctd_medic" / "CTD_diseases.tsv.gz"
    assert guess_format(path) == "medic"
    return KnowledgeBase.build(read_source(path), tmp_path_factory.mktemp("medic") / "kb")


def test_medic_counts(medic_kb):
    assert len(medic_kb) == 11_865
    assert medic_kb.meta["n_entities"] == 11_865
    assert medic_kb.type_names == ["Disease"]
    ids = list(medic_kb.ids())
    assert all(i.startswith(("MESH:", "OMIM:")) for i in ids)
    assert len(set(ids)) == 11_865
    assert medic_kb.n_aliases > 11_865  # synonyms add keys
    assert medic_kb.meta["n_alt_ids"] > 0


def test_medic_alt_ids_resolve_to_mesh(medic_kb):
    assert "OMIM:264300" in medic_kb
    row = medic_kb.row_of("OMIM:264300")
    assert row is not None
    assert medic_kb.get_id(row).startswith("MESH:")
    rec = medic_kb.entity("OMIM:264300")
    assert rec.id == medic_kb.get_id(row) and rec.name == medic_kb.get_name(row)
    # DO ids are alternative ids too.
    do_ids = [k for k in medic_kb._alt.keys("DO:")][:20]
    assert do_ids and all(medic_kb.get_id(medic_kb.row_of(d)).startswith(("MESH:", "OMIM:")) for d in do_ids)


def test_medic_names_are_found(medic_kb):
    for mention in ("Crohn's disease", "Crohn Disease", "crohns disease", "Parkinson's disease"):
        cands = medic_kb.get_candidates(mention)
        assert cands, mention
        assert all(c.id.startswith(("MESH:", "OMIM:")) for c in cands)
    # Every canonical name is a key whose candidates include its own entity, flagged as the name.
    for row in range(0, len(medic_kb), 37):
        cands = medic_kb.get_candidates(medic_kb.get_name(row))
        assert any(c.row == row and c.is_name for c in cands), medic_kb.get_name(row)
    results = medic_kb.fuzzy_search(medic_kb.normalize("Crohn diseaze"), 1)
    assert results and medic_kb.alias_key(results[0][0]) == "crohn disease"
