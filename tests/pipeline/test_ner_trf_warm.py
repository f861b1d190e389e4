"""`configs/ner_trf_warm.cfg`: a `ner` for new labels on a transformer sourced from another
pipeline (tiny randomly initialised BERT, no hub)."""

import numpy as np
import spacy
from spacy.training import Example
from thinc.api import fix_random_seed

from tests.pipeline.test_ner_trf_dict import CONFIGS, TRAIN, tiny_bert  # noqa: F401 (fixture)

SPANS = {"get_spans.window": 16, "get_spans.stride": 12}


def _examples(nlp, rename):
    return [Example.from_dict(nlp.make_doc(text), {"entities": [(a, b, rename[label]) for a, b, label in ents]})
            for text, ents in TRAIN]


def _weights(nlp):
    node = next(n for n in nlp.get_pipe("transformer").model.walk() if n.shims)
    model = node.shims[0]._model
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_warm_start_sources_the_transformer_and_trains_a_new_ner(tiny_bert, tmp_path):  # noqa: F811
    fix_random_seed(0)
    config = spacy.util.load_config(CONFIGS / "ner_trf.cfg", overrides={
        "paths.model": str(tiny_bert), **{f"components.transformer.model.{k}": v for k, v in SPANS.items()},
    }, interpolate=True)
    first = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    old_labels = {"Chemical": "Chemical", "Disease": "Disease"}
    examples = _examples(first, old_labels)
    opt = first.initialize(lambda: examples)
    for _ in range(3):
        first.update(examples, sgd=opt)
    first.to_disk(tmp_path / "source")
    source_weights = _weights(first)

    warm = spacy.util.load_config(CONFIGS / "ner_trf_warm.cfg", overrides={
        "paths.init_transformer": str(tmp_path / "source"),
    }, interpolate=True)
    nlp = spacy.util.load_model_from_config(warm, auto_fill=True, validate=True)
    new_labels = {"Chemical": "Drug", "Disease": "Problem"}
    examples = _examples(nlp, new_labels)
    opt = nlp.initialize(lambda: examples)
    # the sourced transformer starts with the source's weights, the ner with the new labels
    for k, v in _weights(nlp).items():
        assert np.allclose(v.numpy(), source_weights[k].numpy()), k
    assert set(nlp.get_pipe("ner").labels) == {"Drug", "Problem"}
    opt.learn_rate = 1e-3
    losses = []
    for _ in range(15):
        step = {}
        nlp.update(examples, sgd=opt, losses=step)
        losses.append(step["ner"])
    assert losses[-1] < losses[0]
    assert any(not np.allclose(v.numpy(), source_weights[k].numpy()) for k, v in _weights(nlp).items())
