"""The sparse context model: name words, hashed features, learning, saving."""

import subprocess
import sys

import numpy as np
import pytest
import spacy

from spacy_entlink.errors import ConfigError
from spacy_entlink.linking.context import SAME, ContextModel, ContextSample, content_words, context_words, stop_word_test


@pytest.fixture(scope="module")
def is_stop():
    return stop_word_test(spacy.blank("en").vocab)


def test_name_words_the_mention_lacks(is_stop):
    assert content_words("The Leicestershire County Cricket Club", is_stop) == ["leicestershire", "county", "cricket", "club"]
    assert ContextModel.extra_words("Leicestershire_County Cricket Club", "LEICESTERSHIRE", is_stop) == ["county", "cricket", "club"]
    assert ContextModel.extra_words("Germany national football team", "Germany", is_stop) == ["national", "football", "team"]
    assert ContextModel.extra_words("Leicestershire", "Leicestershire", is_stop) == [SAME]


def test_context_words_are_the_distinct_content_words_around_the_span():
    nlp = spacy.blank("en")
    doc = nlp("The Leicestershire team won the cricket match by an innings at Leicester , cricket fans said .")
    span = doc[1:2]
    assert context_words(span, 3) == ["team", "won"]
    assert context_words(span, 100) == ["team", "won", "cricket", "match", "innings", "leicester", "fans", "said"]
    assert context_words(doc[0:0], 0) == []


def test_feature_ids_pair_every_context_word_with_every_name_word():
    model = ContextModel(np.zeros(1 << 16), window=5)
    ids = model.feature_ids(["cricket", "innings"], [["county", "club"], [SAME]])
    assert [len(x) for x in ids] == [2 + 4, 1 + 2]
    assert all(((0 <= x) & (x < model.buckets)).all() for x in ids)
    assert len(set(ids[0].tolist())) == 6  # no collision among these few features
    assert model.feature_ids([], [["club"]])[0].tolist() == ids[0][1:2].tolist()  # the name word alone, same id
    model.weights[ids[0]] = 1.0
    assert model.scores(["cricket", "innings"], [["county", "club"], [SAME]]).tolist() == [6.0, 0.0]


def test_feature_ids_are_the_same_in_another_process():
    code = ("import numpy as np; from spacy_entlink.linking.context import ContextModel; "
            "print(ContextModel(np.zeros(1 << 20)).feature_ids(['cricket'], [['club', 'county']])[0].tolist())")
    here = ContextModel(np.zeros(1 << 20)).feature_ids(["cricket"], [["club", "county"]])[0].tolist()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(here)


def _samples(n, rng):
    """Two candidates, "club" and the plain place; sports words say club. The dense feature
    (a prior) always favours the place, so only the context can get the club cases right."""
    out = []
    for i in range(n):
        sport = i % 3 == 0
        words = list(rng.choice(["innings", "wicket", "bowler", "cricket"] if sport else ["rain", "mayor", "council", "road"], 3))
        out.append(ContextSample(words, [["county", "club"], [SAME]], np.array([[0.0], [1.0]]), 0 if sport else 1))
    return out


def test_fit_learns_what_the_dense_features_cannot(tmp_path):
    rng = np.random.default_rng(0)
    train, held_out = _samples(300, rng), _samples(60, rng)

    def accuracy(model):
        right = 0
        for s in held_out:
            z = model.scores(s.context, s.names) + 0.5 * s.dense[:, 0]  # the prior alone gets 2/3
            right += int(np.argmax(z)) == s.gold
        return right / len(held_out)

    untrained = ContextModel(np.zeros(1 << 12))
    model = ContextModel.fit(train, buckets=1 << 12, epochs=3, learn_rate=0.05)
    assert accuracy(untrained) < 0.7 and accuracy(model) == 1.0
    assert model.fitted_on == 300 and model.buckets == 1 << 12
    model.to_disk(tmp_path / "ctx")
    again = ContextModel.from_disk(tmp_path / "ctx")
    assert again.window == model.window and again.fitted_on == 300
    assert np.array_equal(again.weights, model.weights)


def test_fit_and_load_refuse_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="no annotated mention"):
        ContextModel.fit([ContextSample(["x"], [["a"]], np.zeros((1, 1)), 0)])
    with pytest.raises(ConfigError, match="learn_rate"):
        ContextModel.fit(_samples(3, np.random.default_rng(0)), learn_rate=0)
    with pytest.raises(ConfigError, match="not a saved context model"):
        ContextModel.from_disk(tmp_path / "missing")
    ContextModel(np.zeros(8)).to_disk(tmp_path / "ctx")
    (tmp_path / "ctx" / "cfg.json").write_text('{"version": 1, "window": 30, "buckets": 16}')
    with pytest.raises(ConfigError, match="damaged"):
        ContextModel.from_disk(tmp_path / "ctx")
    (tmp_path / "ctx" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=str(tmp_path / "ctx")):
        ContextModel.from_disk(tmp_path / "ctx")
