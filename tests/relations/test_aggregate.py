"""The id-pair aggregator: evidence, features, fitting and its saved form."""

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc, Span

from spacy_entlink.errors import ConfigError
from spacy_entlink.extensions import Relation
from spacy_entlink.relations.aggregate import (FEATURES, Aggregator, Evidence, MentionStats, RelationCounts, collect_evidence,
                                               document_features)


def doc_with_ents():
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words="aspirin caused ulcers ; aspirin and ibuprofen caused bleeding and ulcers".split())
    doc.ents = [Span(doc, 0, 1, "Chemical", kb_id="C1"), Span(doc, 2, 3, "Disease", kb_id="D1"),
                Span(doc, 4, 5, "Chemical", kb_id="C1"), Span(doc, 6, 7, "Chemical", kb_id="C2"),
                Span(doc, 8, 9, "Disease", kb_id="D2"), Span(doc, 10, 11, "Disease", kb_id="D1")]
    return doc


def test_evidence_is_grouped_by_id_pair_and_skips_unlinked_and_same_id_pairs():
    doc = doc_with_ents()
    e = doc.ents
    unlinked = Span(doc, 1, 2, "Disease")
    ev = collect_evidence([(e[0], "CID", e[1], 0.9), (e[2], "CID", e[5], 0.3), (e[3], "CID", e[4], 0.6),
                           (e[0], "CID", e[2], 0.99), (e[0], "CID", unlinked, 0.99)])
    assert set(ev) == {("C1", "CID", "D1"), ("C2", "CID", "D2")}
    assert ev[("C1", "CID", "D1")].probs == [0.9, 0.3]
    assert ev[("C1", "CID", "D1")].distances == [1, 5]  # tokens between the two spans


def test_features_describe_the_pairs_the_mentions_and_the_other_pairs():
    doc = doc_with_ents()
    evidence = {("C1", "CID", "D1"): Evidence([0.9, 0.3], [1, 5]), ("C2", "CID", "D1"): Evidence([0.5], [3]),
                ("C1", "CID", "D2"): Evidence([0.8], [7])}
    x = document_features(evidence, MentionStats(doc))
    f = dict(zip(FEATURES, x[("C1", "CID", "D1")]))
    assert f["max_logit"] == pytest.approx(np.log(0.9 / 0.1))
    assert f["mean_logit"] == pytest.approx((np.log(9) + np.log(0.3 / 0.7)) / 2)
    assert f["noisy_or_logit"] == pytest.approx(np.log(0.93 / 0.07))
    assert f["share_above_half"] == 0.5 and f["log_pairs"] == pytest.approx(np.log(3))
    assert f["log_head_mentions"] == pytest.approx(np.log(3)) and f["head_type_share"] == pytest.approx(2 / 3)
    assert f["tail_type_share"] == pytest.approx(2 / 3) and f["head_first"] == 0.0
    assert f["tail_first"] == pytest.approx(2 / 11) and f["log_distance"] == pytest.approx(np.log(2))
    assert f["log_head_ids"] == pytest.approx(np.log(3)) and f["log_tail_ids"] == pytest.approx(np.log(3))
    assert f["gap_to_best_tail"] == 0.0 and f["gap_to_best_head"] == 0.0  # the best pair of C1 and of D1
    assert f["gap_to_document_best"] == 0.0  # and of the document
    g = dict(zip(FEATURES, x[("C2", "CID", "D1")]))
    assert g["gap_to_best_head"] == pytest.approx(0.0 - np.log(9)) and g["gap_to_best_tail"] == 0.0
    h = dict(zip(FEATURES, x[("C1", "CID", "D2")]))
    assert h["gap_to_best_tail"] == pytest.approx(np.log(4) - np.log(9)) and h["gap_to_best_head"] == 0.0
    assert g["gap_to_document_best"] == pytest.approx(0.0 - np.log(9))
    assert h["gap_to_document_best"] == pytest.approx(np.log(4) - np.log(9))
    lonely = document_features({("C9", "CID", "D9"): Evidence([1.0], [0])}, MentionStats(Doc(doc.vocab, words=[])))
    assert np.isfinite(lonely[("C9", "CID", "D9")]).all()  # ids the document does not mention, probability 1


def test_hierarchy_features_mark_a_pair_whose_tail_has_a_narrower_related_tail():
    doc = doc_with_ents()
    evidence = {("C1", "CID", "D1"): Evidence([0.9], [1]), ("C1", "CID", "D2"): Evidence([0.95], [7]),
                ("C2", "CID", "D1"): Evidence([0.5], [3])}
    broader = {"D2": {"D1"}, "C2": {"C1"}}  # D2 is narrower than D1; C2 narrower than C1
    x = document_features(evidence, MentionStats(doc), lambda i: broader.get(i, set()))
    f = {key: dict(zip(FEATURES, v)) for key, v in x.items()}
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert f[("C1", "CID", "D1")]["narrower_tail"] == 1.0
    assert f[("C1", "CID", "D1")]["narrower_tail_gap"] == pytest.approx(logit(0.95) - logit(0.9))
    assert f[("C1", "CID", "D2")]["narrower_tail"] == 0.0 and f[("C2", "CID", "D1")]["narrower_tail"] == 0.0
    # C2 is narrower than C1 and relates to D1 too: (C1, D1) has a narrower head
    assert f[("C1", "CID", "D1")]["narrower_head"] == 1.0
    assert f[("C1", "CID", "D1")]["narrower_head_gap"] == pytest.approx(logit(0.5) - logit(0.9))
    assert f[("C2", "CID", "D1")]["narrower_head"] == 0.0
    plain = document_features(evidence, MentionStats(doc))
    hier = slice(FEATURES.index("narrower_tail"), FEATURES.index("narrower_head_gap") + 1)
    assert all(not v[hier].any() for v in plain.values())
    assert all(np.array_equal(np.delete(plain[k], np.r_[hier]), np.delete(x[k], np.r_[hier])) for k in x)


def test_training_counts_say_how_often_a_pair_was_related():
    nlp = spacy.blank("en")
    docs = []
    for rels in ([("C1", "D1")], [("C1", "D1"), ("C2", "D2")], []):
        doc = doc_with_ents()
        doc._.entlink_relations = [Relation(h, "CID", t) for h, t in rels]
        docs.append(doc)
    span_rel = Doc(nlp.vocab, words=["a", "b"])
    span_rel.ents = [Span(span_rel, 0, 1, "Chemical", kb_id="C9"), Span(span_rel, 1, 2, "Disease", kb_id="D9")]
    span_rel._.entlink_relations = [Relation(span_rel.ents[0], "CID", span_rel.ents[1])]  # between spans: not counted
    counts = RelationCounts.from_docs(docs + [span_rel])
    assert counts.related == {"C1\tCID\tD1": 2, "C2\tCID\tD2": 1}
    assert counts.documents == {"C1": 3, "C2": 3, "D1": 3, "D2": 3, "C9": 1, "D9": 1}
    assert counts.relations == {"C1": 2, "D1": 2, "C2": 1, "D2": 1}
    assert counts.features("C1", "CID", "D1") == pytest.approx((np.log(3), 2.1 / 4, 2.1 / 4))
    assert counts.features("C2", "CID", "D1") == pytest.approx((0.0, 1.1 / 4, 2.1 / 4))
    assert counts.features("X", "CID", "Y") == pytest.approx((0.0, 0.1, 0.1))  # never seen
    evidence = {("C1", "CID", "D1"): Evidence([0.9], [1])}
    x = document_features(evidence, MentionStats(docs[0]), counts=counts)[("C1", "CID", "D1")]
    assert x[FEATURES.index("log_pair_related_in_training")] == pytest.approx(np.log(3))
    assert not document_features(evidence, MentionStats(docs[0]))[("C1", "CID", "D1")][-3:].any()
    assert RelationCounts.from_dict(counts.to_dict()) == counts and RelationCounts.from_dict(None) is None
    with pytest.raises(ConfigError, match="cfg: relation_counts"):
        RelationCounts.from_dict({"related": {"a": "x"}, "documents": {}, "relations": {}}, "cfg: relation_counts")


def test_an_aggregator_fitted_before_the_hierarchy_features_scores_the_same():
    rng = np.random.default_rng(1)
    n_old = FEATURES.index("narrower_tail")
    X = rng.normal(size=(200, n_old))
    y = (X[:, 0] > 0).astype(int)
    Z = np.hstack([(X - X.mean(0)) / X.std(0), np.ones((200, 1))])
    w = np.linalg.lstsq(Z, 2.0 * y - 1, rcond=None)[0]
    old = {"features": list(FEATURES[:n_old]), "weights": list(w[:-1]), "bias": float(w[-1]),
           "mean": list(X.mean(0)), "scale": list(X.std(0))}
    agg = Aggregator.from_dict(old)
    x = np.concatenate([X[3], rng.normal(size=len(FEATURES) - n_old)])  # whatever the new features say
    z = (X[3] - X.mean(0)) / X.std(0) @ w[:-1] + w[-1]
    assert agg.probability(x) == pytest.approx(1 / (1 + np.exp(-z)))
    assert Aggregator.from_dict(agg.to_dict()) == agg  # saved again with every feature


def test_fit_learns_which_features_matter_and_round_trips():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, len(FEATURES)))
    y = (X[:, 1] - X[:, 7] + 0.3 * rng.normal(size=600) > 0).astype(int)
    agg = Aggregator.fit(X, y)
    w = np.asarray(agg.weights)
    assert w[1] > 1.0 and w[7] < -1.0 and np.abs(np.delete(w, [1, 7])).max() < 0.5 * min(w[1], -w[7])
    acc = np.mean([(agg.probability(x) >= 0.5) == t for x, t in zip(X, y)])
    assert acc > 0.9
    again = Aggregator.from_dict(agg.to_dict())
    assert again == agg and again.fitted_on == 600 and again.positives == int(y.sum())
    assert Aggregator.from_dict(None) is None


def test_a_constant_feature_and_a_one_class_fit():
    X = np.zeros((10, len(FEATURES)))
    X[:, 0] = np.arange(10)
    agg = Aggregator.fit(X, [0] * 5 + [1] * 5)
    assert np.isfinite(agg.weights).all() and agg.probability(X[9]) > 0.5 > agg.probability(X[0])
    with pytest.raises(ConfigError, match="with and without a gold relation"):
        Aggregator.fit(X, [1] * 10)


@pytest.mark.parametrize("change", [
    {"features": ["max_logit"]}, {"features": ["mean_logit"]}, {"features": []}, {"weights": [1.0]}, {"scale": [0.0] * len(FEATURES)}, {"bias": "x"}, {"mean": None},
])
def test_a_damaged_aggregator_is_a_clear_error(change):
    good = Aggregator.fit(np.eye(len(FEATURES)).repeat(2, 0), [0, 1] * len(FEATURES)).to_dict()
    with pytest.raises(ConfigError, match="cfg: aggregator"):
        Aggregator.from_dict({**good, **change}, "cfg: aggregator")
