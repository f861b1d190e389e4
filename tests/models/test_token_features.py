import numpy
import pytest
import spacy
from spacy.util import registry
from thinc.api import Model, fix_random_seed

from spacy_entlink.errors import ConfigError
from spacy_entlink.models.token_features import append_columns, cased_tok2vec


def _fixed(width: int, empty_width: int, grads: list) -> Model:
    """A stand-in tok2vec: rows of `width` ones ((0, `empty_width`) for an empty Doc), recording
    the gradients it is given."""
    def forward(model, docs, is_train):
        out = [numpy.ones((len(d), width if len(d) else empty_width), dtype="f") for d in docs]

        def backprop(d_out):
            grads.append(d_out)
            return []
        return out, backprop
    return Model("fixed", forward, dims={"nO": width})


def test_columns_are_appended_per_doc_and_gradients_split_back_even_after_an_empty_doc():
    nlp = spacy.blank("en")
    docs = [nlp.make_doc(""), nlp.make_doc("one two three"), nlp.make_doc("four")]
    left_grads, right_grads = [], []
    # like spacy-transformers' listener: (0, 0) for an empty Doc
    model = append_columns(_fixed(3, 0, left_grads), _fixed(2, 2, right_grads), "test")
    model.initialize(X=docs)
    assert model.get_dim("nO") == 5
    out, backprop = model(docs, is_train=True)
    assert [o.shape for o in out] == [(0, 2), (3, 5), (1, 5)]
    d_out = [numpy.arange(o.size, dtype="f").reshape(o.shape) for o in out]
    backprop(d_out)
    (left,), (right,) = left_grads, right_grads
    assert [g.shape for g in left] == [(0, 0), (3, 3), (1, 3)]
    assert [g.shape for g in right] == [(0, 2), (3, 2), (1, 2)]
    assert (left[1] == d_out[1][:, :3]).all() and (right[1] == d_out[1][:, 3:]).all()
    assert (left[2] == d_out[2][:, :3]).all() and (right[2] == d_out[2][:, 3:]).all()


def test_cased_tok2vec_is_registered_and_sees_case():
    fix_random_seed(0)
    assert registry.architectures.get("spacy_entlink.CasedTok2Vec.v1") is cased_tok2vec
    nlp = spacy.blank("en")
    lower = Model("lower", lambda m, docs, is_train: ([numpy.zeros((len(d), 4), dtype="f") for d in docs],
                                                      lambda d: []), dims={"nO": 4})
    model = cased_tok2vec(lower, width=8)
    docs = [nlp.make_doc("Paris is big"), nlp.make_doc("paris is big")]
    model.initialize(X=docs)
    assert model.get_dim("nO") == 12
    upper, low = model.predict(docs)
    assert not numpy.allclose(upper[0, 4:], low[0, 4:])  # "Paris" / "paris": other shape, prefix
    assert numpy.allclose(upper[1:], low[1:])  # same tokens after it


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"attrs": ["SHAPE"], "rows": [10, 20]}, {"attrs": [], "rows": []}])
def test_cased_tok2vec_refuses_bad_settings(kwargs):
    lower = Model("lower", lambda m, docs, is_train: ([], lambda d: []), dims={"nO": 4})
    with pytest.raises(ConfigError, match="CasedTok2Vec"):
        cased_tok2vec(lower, **kwargs)
