import numpy as np

from spacy_entlink.linking.calibration import Calibration


def test_uncalibrated_is_a_softmax_without_nil():
    probs, nil = Calibration().probabilities([-1.0, -2.0])
    assert nil == 0.0
    assert np.isclose(probs.sum(), 1.0) and probs[0] > probs[1]


def test_fit_learns_a_sharper_scale_and_nil_mass():
    rng = np.random.default_rng(0)
    scores, gold = [], []
    for _ in range(300):
        s = sorted(rng.normal(-3, 0.3, size=4), reverse=True)
        scores.append(s)
        gold.append(0)  # the top candidate is always right: a confident calibration
    for _ in range(100):
        scores.append(list(rng.normal(-8, 0.3, size=3)))  # low scores: gold not among candidates
        gold.append(None)
    cal = Calibration.fit(scores, gold)
    assert cal.scale > 1.0
    good, nil_good = cal.probabilities(scores[0])
    bad, nil_bad = cal.probabilities(scores[-1])
    assert good[0] > 0.5 and nil_good < 0.2
    assert nil_bad > 0.5
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_fit_without_nil_and_on_nothing():
    cal = Calibration.fit([[-1.0, -2.0], [-1.5, -1.0]], [0, 1], with_nil=False)
    assert cal.nil_score is None and cal.fitted_on == 2
    assert Calibration.fit([], []) == Calibration()


def test_prior_features_get_weight_when_they_predict_the_gold():
    rng = np.random.default_rng(1)
    scores, gold, feats = [], [], []
    for _ in range(300):
        s = rng.normal(-3, 1.0, size=4)  # the model is no help here
        f = np.zeros((4, 2))
        f[:, 0] = rng.integers(0, 5, size=4)
        g = int(np.argmax(f[:, 0] + rng.normal(0, 0.1, size=4)))
        f[g, 0] += 3  # the frequency prior is
        scores.append(list(s))
        feats.append(f)
        gold.append(g)
    cal = Calibration.fit(scores, gold, features=feats, with_nil=False)
    assert cal.prior_weights[0] > 0.5
    hits = sum(int(np.argmax(cal.probabilities(s, f)[0]) == g) for s, f, g in zip(scores, feats, gold))
    assert hits / len(gold) > 0.9
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_cross_validation_by_group_measures_held_out_documents():
    from spacy_entlink.linking.calibration import CalibrationData, cross_validate

    rng = np.random.default_rng(1)
    data = CalibrationData()
    for doc in range(40):
        for _ in range(5):
            # the model score is noise; feature 0 marks the gold candidate 90% of the time
            k = 4
            gold = int(rng.integers(k))
            marked = gold if rng.random() < 0.9 else (gold + 1) % k
            feats = np.zeros((k, 1))
            feats[marked, 0] = 1.0
            data.scores.append(list(rng.normal(-2, 0.1, size=k)))
            data.features.append(feats)
            data.gold.append(gold)
            data.groups.append(doc)
    cv = cross_validate(data, 4, with_nil=False)
    assert cv["mentions"] == 200 and cv["folds"] == 4
    assert 0.8 < cv["cross_validated_acc"] <= cv["fit_and_apply_acc"] + 0.05
    # without NIL nothing is answered NIL; a gold-less mention is always wrong
    assert cv["cross_validated_acc_with_nil"] == cv["cross_validated_acc"]
    data.gold[0] = None
    assert data.accuracy(Calibration.fit(data.scores, data.gold, features=data.features), [0]) == 0.0


def test_gate_is_the_lowest_that_loses_nothing_and_round_trips():
    from spacy_entlink.linking.calibration import CalibrationData, fit_gate

    cal = Calibration(scale=1.0, prior_weights=(2.0,))
    data = CalibrationData()

    def add(feature_gap, model_right, feature_right):
        f = np.array([[feature_gap], [0.0]])  # features favour candidate 0 by `feature_gap`
        gold = 0 if feature_right else 1
        model_best = gold if model_right else 1 - gold
        s = [0.0, 0.0]
        s[model_best] = 10.0  # the model's choice dominates the full calibration
        data.scores.append(s)
        data.features.append(f)
        data.gold.append(gold)
        data.groups.append(len(data.gold))

    for _ in range(5):
        add(3.0, model_right=True, feature_right=True)   # q = 0.9975: features enough
    add(1.0, model_right=True, feature_right=False)       # q = 0.88: only the model is right
    add(0.5, model_right=False, feature_right=True)       # q = 0.73: the features are right
    add(0.2, model_right=True, feature_right=False)       # q = 0.60
    gate = fit_gate(data, cal)
    q = lambda gap: 1 / (1 + np.exp(-2 * gap))  # noqa: E731
    # gating down to 0.73 trades the 0.88 mention (lost) for the 0.73 one (won): no loss
    assert np.isclose(gate, q(0.5))
    cal.gate = gate
    assert cal.decided_without_model(np.array([[3.0], [0.0]]))
    assert not cal.decided_without_model(np.array([[0.2], [0.0]]))
    assert not Calibration(prior_weights=(2.0,)).decided_without_model(np.array([[9.0], [0.0]]))  # no gate
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert Calibration.from_dict({"scale": 1.0}).gate is None  # saved before the cascade
    # when the model is always needed, no gate
    needed = CalibrationData(scores=[[10.0, 0.0]] * 3, features=[np.array([[0.0], [3.0]])] * 3, gold=[0] * 3,
                             groups=[0, 1, 2])
    assert fit_gate(needed, cal) is None


def test_cross_fitted_gate_judges_each_document_by_the_other_folds():
    from spacy_entlink.linking.calibration import CalibrationData, fit_gate, fold_calibrations

    rng = np.random.default_rng(3)
    data = CalibrationData()
    for doc in range(40):
        for _ in range(3):
            f = np.zeros((3, 1))
            g = int(rng.integers(0, 3))
            f[g, 0] = rng.uniform(1.0, 3.0)  # the feature points at the gold
            right = doc % 2 == 0  # the model knows the gold in half of the documents only
            s = [0.0, 0.0, 0.0]
            s[g if right else (g + 1) % 3] = 5.0
            data.scores.append(s)
            data.features.append(f)
            data.gold.append(g)
            data.groups.append(doc)
    cal = Calibration.fit(data.scores, data.gold, features=data.features, with_nil=False)
    held = [m for h, _ in fold_calibrations(data, 4, with_nil=False) for m in h]
    assert sorted(held) == list(range(len(data.gold)))  # every mention held out exactly once
    # out of fold the features are always right and the model only half the time: the features
    # alone never lose, so every mention is gated, at the lowest out-of-fold probability
    lowest = min(c.probabilities(np.zeros(3), data.features[m])[0].max()
                 for h, c in fold_calibrations(data, 4, with_nil=False) for m in h)
    assert np.isclose(fit_gate(data, cal, folds=4), lowest)
    # a model that is always right and features that are not: no gate loses nothing
    data.scores = [[5.0 if j == g else 0.0 for j in range(3)] for g in data.gold]
    data.features = [np.roll(f, 1, axis=0) for f in data.features]
    assert fit_gate(data, Calibration.fit(data.scores, data.gold, features=data.features, with_nil=False),
                    folds=4) is None


def test_gate_ignores_ties_and_calibrations_with_nil():
    from spacy_entlink.linking.calibration import CalibrationData, fit_gate

    cal = Calibration(scale=1.0, prior_weights=(1.0,))
    tie = np.array([[1.0], [1.0]])
    # rows ranked by the model put its choice first: a tie must not count as the features' answer
    data = CalibrationData(scores=[[-1.0, -3.0]] * 3, features=[tie] * 3, gold=[0] * 3, groups=[0, 1, 2])
    assert fit_gate(data, cal) is None
    cal.gate = 0.1
    assert not cal.decided_without_model(tie) and cal.decided_without_model(np.array([[2.0], [1.0]]))
    # NIL competes with the model's scores: without an assumed model score, no cascade
    with_nil = Calibration(scale=1.0, nil_score=-2.0, prior_weights=(1.0,), gate=0.1)
    assert not with_nil.decided_without_model(np.array([[3.0], [0.0]]))
    nil_data = CalibrationData(scores=[[-6.0, -7.0]] * 2, features=[np.array([[1.0], [0.0]])] * 2, gold=[None] * 2,
                               groups=[0, 1])
    assert fit_gate(nil_data, with_nil, nil=True) is None


def test_gate_with_nil_assumes_the_median_best_model_score_and_never_answers_nil():
    from spacy_entlink.linking.calibration import CalibrationData, fit_gate, gate_score

    strong = np.array([[3.0], [0.0]])
    cal = Calibration(scale=1.0, nil_score=-2.0, prior_weights=(1.0,), gate=0.5, gate_score=-1.0)
    probs, p_nil = cal.feature_probabilities(strong)  # logits 2, -1 and NIL -2
    assert np.isclose(probs[0], np.exp(2) / (np.exp(2) + np.exp(-1) + np.exp(-2))) and p_nil < probs[0]
    assert cal.decided_without_model(strong) and cal.skip_score == -1.0
    cal.gate_score = -6.0  # logits -3, -6 against NIL's -2: NIL would win, so the model must see it
    assert not cal.decided_without_model(strong)
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert Calibration(gate_score=-6.0).skip_score == 0.0  # without NIL, equal scores cancel
    data = CalibrationData()
    for doc in range(6):  # features right, the model adds nothing
        data.scores.append([-1.0, -1.0 - doc])
        data.features.append(strong)
        data.gold.append(0)
        data.groups.append(doc)
    assert gate_score(data) == -1.0 and gate_score(data, [0]) == -1.0
    nil_cal = Calibration(scale=1.0, nil_score=-2.0, prior_weights=(1.0,), gate_score=-1.0)
    assert np.isclose(fit_gate(data, nil_cal, nil=True), cal.probabilities([-1.0, -1.0], strong)[0].max())
    # a NIL mention the full calibration gets right is lost by the cascade, which answers a candidate
    data.scores.append([-9.0, -9.0])
    data.features.append(np.array([[2.0], [0.0]]))
    data.gold.append(None)
    data.groups.append(6)
    assert nil_cal.probabilities([-9.0, -9.0], data.features[-1])[1] > 0.5
    gate = fit_gate(data, nil_cal, nil=True)
    assert np.isclose(gate, cal.probabilities([-1.0, -1.0], strong)[0].max())
    assert gate > nil_cal.feature_probabilities(data.features[-1])[0].max()  # gated above the NIL mention
    data.features[-1] = np.array([[3.5], [0.0]])  # now it is the most decided of all: no gate loses nothing
    assert fit_gate(data, nil_cal, nil=True) is None
