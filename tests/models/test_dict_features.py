import numpy
import pytest
import spacy
from spacy.tokens import Span
from thinc.api import Model, fix_random_seed
from spacy.util import registry

from spacy_entlink.errors import ConfigError
from spacy_entlink.extensions import install_extensions
from spacy_entlink.models.dict_features import (
    SOURCES, dict_feature_tok2vec, dictionary_features, feature_width,
)

LABELS = ["Chemical", "Disease"]


def _doc(nlp, text, spans):
    install_extensions()
    doc = nlp.make_doc(text)
    group = []
    for start, end, label, source in spans:
        span = Span(doc, start, end, label=label)
        span._.entlink_source = source
        group.append(span)
    doc.spans["entlink_candidates"] = group
    return doc


def _col(position, label, source, n_labels=2):
    return (position * (n_labels + 1) + label) * len(SOURCES) + SOURCES.index(source)


def test_multi_hot_positions_labels_sources():
    nlp = spacy.blank("en")
    doc = _doc(nlp, "aspirin induced renal failure in rats", [
        (0, 1, "Chemical", "exact"), (2, 4, "Disease", "exact+fuzzy"), (5, 6, "Species", "abbreviation"),
        (2, 3, "Disease", "ner"),
    ])
    model = dictionary_features("entlink_candidates", LABELS)
    (feats,), _ = model([doc], is_train=False)
    assert feats.shape == (6, feature_width(2))
    assert set(numpy.flatnonzero(feats[0])) == {_col(0, 0, "exact")}
    assert set(numpy.flatnonzero(feats[2])) == {_col(0, 1, "exact"), _col(0, 1, "fuzzy")}
    assert set(numpy.flatnonzero(feats[3])) == {_col(1, 1, "exact"), _col(1, 1, "fuzzy")}
    assert not feats[1].any() and not feats[4].any()
    assert set(numpy.flatnonzero(feats[5])) == {_col(0, 2, "abbreviation")}  # unknown label: "other" slot


def test_span_dropout_only_in_training():
    nlp = spacy.blank("en")
    doc = _doc(nlp, " ".join(["x"] * 400), [(i, i + 1, "Chemical", "exact") for i in range(400)])
    model = dictionary_features("entlink_candidates", LABELS, span_dropout=0.5)
    fix_random_seed(0)
    (train,), _ = model([doc], is_train=True)
    (pred,), _ = model([doc], is_train=False)
    assert pred.sum() == 400
    assert 120 < train.sum() < 280


def test_missing_spans_error_in_training_warning_in_prediction():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("no dictionary ran")
    model = dictionary_features("entlink_candidates", LABELS)
    with pytest.raises(ConfigError, match="annotating_components"):
        model([doc], is_train=True)
    with pytest.warns(UserWarning, match="entlink_dictionary"):
        (feats,), _ = model([doc], is_train=False)
    assert not feats.any()


def test_bad_arguments():
    with pytest.raises(ConfigError, match="span_dropout"):
        dictionary_features("k", LABELS, span_dropout=1.0)
    with pytest.raises(ConfigError, match="width"):
        dict_feature_tok2vec(Model("t", lambda m, X, t: (X, lambda d: d)), width=0)


def test_concatenates_and_backpropagates_to_both_parts():
    nlp = spacy.blank("en")
    docs = [
        _doc(nlp, "aspirin hurts", [(0, 1, "Chemical", "exact")]),
        _doc(nlp, "", []),
    ]
    tok2vec = registry.architectures.get("spacy.HashEmbedCNN.v2")(
        width=16, depth=1, embed_size=100, window_size=1, maxout_pieces=2, subword_features=False,
        pretrained_vectors=None,
    )
    model = dict_feature_tok2vec(tok2vec, labels=LABELS, width=8, span_dropout=0.0)
    model.initialize(X=docs)
    assert model.get_dim("nO") == 24
    out, backprop = model(docs, is_train=True)
    assert [o.shape for o in out] == [(2, 24), (0, 24)]
    linear = model.layers[1].layers[1].layers[0]
    backprop([numpy.ones_like(o) for o in out])
    assert linear.get_grad("W").any()
    assert any(n.get_grad(k).any() for n in tok2vec.walk() for k in n.param_names if n.has_grad(k))
