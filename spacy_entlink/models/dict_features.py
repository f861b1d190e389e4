"""Dictionary evidence as token features for a tok2vec layer (`spacy_entlink.DictFeatureTok2Vec.v1`).

An upstream `entlink_dictionary` writes every KB match to `doc.spans[spans_key]`, each span with
its label and `._.entlink_source` ("exact", "fuzzy", "abbreviation", joined with "+"). Each
token gets a multi-hot vector over position (B: first token of a match, I: later token) ×
label (the configured labels plus one slot for any other) × source, which is embedded by a
learned linear layer and concatenated to the wrapped tok2vec's output. The features come from
whatever KB the dictionary holds when the pipeline runs, so a larger KB can be swapped in at
inference without retraining.
"""

import warnings
from typing import Callable, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Linear, Model, chain, with_array
from thinc.types import Floats2d

from ..errors import ConfigError
from .token_features import append_columns

SOURCES = ("exact", "fuzzy", "abbreviation")
POSITIONS = ("B", "I")


def feature_width(n_labels: int) -> int:
    """Length of the multi-hot vector for `n_labels` configured labels."""
    return len(POSITIONS) * (n_labels + 1) * len(SOURCES)


def dictionary_features(
    spans_key: str, labels: Sequence[str], span_dropout: float = 0.0
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token multi-hot dictionary evidence read from `doc.spans[spans_key]`.

    In training, each dictionary span is dropped with probability `span_dropout`, so that
    the model does not learn to trust a dictionary that covers its training data better than
    it will cover new text.
    """
    if not 0.0 <= span_dropout < 1.0:
        raise ConfigError(f"span_dropout must be in [0, 1), got {span_dropout}")
    labels = list(labels)
    return Model(
        "entlink_dict_features",
        _features_forward,
        init=_features_init,
        attrs={"spans_key": spans_key, "labels": labels, "span_dropout": float(span_dropout), "warned": False,
               "initializing": False},
        dims={"nO": feature_width(len(labels))},
    )


def _features_init(model: Model, X=None, Y=None) -> None:
    # Shape inference runs on docs no dictionary has seen yet: no warning until training starts.
    model.attrs["initializing"] = True


def _features_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    if is_train:
        model.attrs["initializing"] = False
    key = model.attrs["spans_key"]
    index = {label: i for i, label in enumerate(model.attrs["labels"])}
    n_labels = len(index) + 1
    dropout = model.attrs["span_dropout"] if is_train else 0.0
    width = model.get_dim("nO")
    out = []
    for doc in docs:
        feats = numpy.zeros((len(doc), width), dtype="float32")
        if key not in doc.spans:
            _missing(model, key, is_train)
        else:
            spans = doc.spans[key]
            keep = numpy.random.random(len(spans)) >= dropout if dropout else None
            for i, span in enumerate(spans):
                if keep is not None and not keep[i]:
                    continue
                sources = [SOURCES.index(s) for s in (span._.entlink_source or "").split("+") if s in SOURCES]
                if not sources:
                    continue  # e.g. spans that came from doc.ents ("ner")
                label = index.get(span.label_, n_labels - 1)
                for src in sources:
                    feats[span.start, (0 * n_labels + label) * len(SOURCES) + src] = 1.0
                    feats[span.start + 1 : span.end, (1 * n_labels + label) * len(SOURCES) + src] = 1.0
        out.append(model.ops.asarray2f(feats))
    return out, lambda d_out: []


def _missing(model: Model, key: str, is_train: bool) -> None:
    message = (
        f"dictionary features: a doc has no doc.spans[{key!r}]. Put an `entlink_dictionary` "
        f"component (spans_key = \"{key}\") before this component, and list it in "
        "[training] annotating_components when training."
    )
    if is_train:
        raise ConfigError(message)
    if not model.attrs["warned"] and not model.attrs["initializing"]:
        model.attrs["warned"] = True
        warnings.warn(message + " Using no dictionary evidence for such docs.")


def dict_feature_tok2vec(
    tok2vec: Model[List[Doc], List[Floats2d]],
    spans_key: str = "entlink_candidates",
    labels: Sequence[str] = (),
    width: int = 64,
    span_dropout: float = 0.25,
) -> Model[List[Doc], List[Floats2d]]:
    """`spacy_entlink.DictFeatureTok2Vec.v1`: `tok2vec`'s vectors with embedded dictionary
    features (`width` columns) appended, trained end to end with the downstream component."""
    if width < 1:
        raise ConfigError(f"width must be positive, got {width}")
    features = dictionary_features(spans_key, labels, span_dropout)
    embed = chain(features, with_array(Linear(nO=width, nI=features.get_dim("nO"))))
    return append_columns(tok2vec, embed, "entlink_dict_tok2vec", refs={"tok2vec": tok2vec, "features": features},
                          attrs={"width": width})
