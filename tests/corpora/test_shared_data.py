"""The readers on the real corpora in ../shared/data reproduce the counts of its READMEs.

Skipped where ../shared/data is absent. Nothing of the data is copied here: only counts.
"""

from collections import Counter
from pathlib import Path

import pytest

from spacy_entlink.corpora import GOLD_SPANS_KEY, read_aida, read_conll04, read_conll2003, read_pubtator

DATA = Path(__file__).parents[2].parent / "shared" / "data"

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} is absent"),
]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.parametrize(
    "name, chemical, disease, cid, no_id",
    [
        ("CDR_DevelopmentSet.PubTator.txt", 5347, 4244, 1012, 43 + 16),
        ("CDR_TrainingSet.PubTator.txt", 5203, 4182, 1038, 44 + 32),
    ],
)
def test_bc5cdr_counts(nlp, name, chemical, disease, cid, no_id):
    stats = {}
    docs = list(read_pubtator(_need(DATA / "bc5cdr" / name), nlp, stats=stats))
    assert len(docs) == 500
    labels = Counter(s.label_ for d in docs for s in d.spans[GOLD_SPANS_KEY])
    assert labels == {"Chemical": chemical, "Disease": disease}
    assert sum(len(d._.entlink_relations) for d in docs) == cid
    assert {r.label for d in docs for r in d._.entlink_relations} == {"CID"}
    assert stats["no_id"] == no_id
    assert all(k.startswith("MESH:") for d in docs for s in d.spans[GOLD_SPANS_KEY] if s.kb_id_
               for k in s.kb_id_.split("|"))
    assert len({d.user_data["entlink_doc_id"] for d in docs}) == 500


def test_bc5cdr_disease_only(nlp):
    docs = list(read_pubtator(_need(DATA / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt"), nlp, types=["Disease"]))
    assert sum(len(d.spans[GOLD_SPANS_KEY]) for d in docs) == 4244


def test_conll04_dev_counts(nlp):
    stats = {}
    types = _need(DATA / "conll04" / "conll04_types.json")
    docs = list(read_conll04(_need(DATA / "conll04" / "conll04_dev.json"), nlp, types=types, stats=stats))
    assert len(docs) == 231
    assert sum(len(d) for d in docs) == 6993
    assert Counter(e.label_ for d in docs for e in d.ents) == {"Peop": 283, "Loc": 322, "Org": 170, "Other": 118}
    assert Counter(r.label for d in docs for r in d._.entlink_relations) == {
        "Live_In": 91, "OrgBased_In": 76, "Work_For": 69, "Located_In": 65, "Kill": 42}
    assert stats["entities"] == 893 and stats["relations"] == 343
    assert len({d.user_data["entlink_doc_id"] for d in docs}) == 231


def test_conll2003_dev_counts(nlp):
    stats = {}
    docs = list(read_conll2003(_need(DATA / "conll2003" / "eng.testa"), nlp, stats=stats))
    assert len(docs) == 216
    assert sum(len(d) for d in docs) == 51362
    assert sum(len(list(d.sents)) for d in docs) == 3250
    assert Counter(e.label_ for d in docs for e in d.ents) == {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}
    assert stats["entities"] == 5942


def test_aida_testa_counts_with_candidates(nlp):
    stats = {}
    docs = list(read_aida(_need(DATA / "aida" / "aida_testa.tsv"), nlp,
                          candidates=_need(DATA / "aida" / "candidates_testa.jsonl"), stats=stats))
    assert len(docs) == 216
    assert [d.user_data["entlink_doc_id"] for d in docs][:2] == ["947", "948"]
    assert sum(len(d) for d in docs) == 51362
    assert stats["entities"] == 5191 and stats["nil"] == 400
    assert stats["with_candidates"] == 5191
    linked = [e for d in docs for e in d.ents if e.kb_id_]
    assert len(linked) == 4791
    assert all(e.kb_id_ in e._.entlink_candidates for e in linked)  # README: gold among candidates for all


def test_aida_train_counts(nlp):
    stats = {}
    docs = list(read_aida(_need(DATA / "aida" / "aida_train.tsv"), nlp, stats=stats))
    assert len(docs) == 946
    assert stats["entities"] == 20287 and stats["nil"] == 1747
    testa = {}
    for _ in read_aida(_need(DATA / "aida" / "aida_testa.tsv"), nlp, stats=testa):
        pass
    assert stats["cross_sentence"] + testa["cross_sentence"] == 83
