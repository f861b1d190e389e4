"""`configs/ner_trf_cased.cfg`: an uncased transformer plus cased token features (tiny randomly
initialised lower-casing BERT, no hub)."""

import spacy
from spacy.training import Example
from thinc.api import fix_random_seed

from tests.pipeline.test_ner_trf_dict import CONFIGS, tiny_bert  # noqa: F401 (fixture)

# Pairs that only capitalisation tells apart: the lower-casing tokenizer gives both the same pieces.
CASED = [
    ("Bush fell.", [(0, 4, "PER")]),
    ("bush fell.", []),
    ("Rose left.", [(0, 4, "PER")]),
    ("rose left.", []),
]
SPANS = {"components.transformer.model.get_spans.window": 16, "components.transformer.model.get_spans.stride": 12}


def _train(config_name: str, model: str, steps: int = 40):
    fix_random_seed(0)
    config = spacy.util.load_config(CONFIGS / config_name, overrides={"paths.model": model, **SPANS},
                                    interpolate=True)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in CASED]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    losses = []
    for _ in range(steps):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["ner"])
    return nlp, losses


def _ents(nlp, texts):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def test_cased_features_tell_apart_what_the_uncased_encoder_cannot(tiny_bert):  # noqa: F811
    texts = [text for text, _ in CASED]
    gold = [[(0, 1, "PER")], [], [(0, 1, "PER")], []]

    cased, losses = _train("ner_trf_cased.cfg", str(tiny_bert))
    assert sum(losses[-3:]) < 0.2 * sum(losses[:3]), losses
    assert _ents(cased, texts) == gold

    plain, _ = _train("ner_trf.cfg", str(tiny_bert))
    found = _ents(plain, texts)
    assert found[0] == found[1] and found[2] == found[3]  # same pieces, same answer: half of them wrong
    assert found != gold


def test_cased_columns_follow_the_case_and_the_transformer_columns_do_not(tiny_bert):  # noqa: F811
    nlp, _ = _train("ner_trf_cased.cfg", str(tiny_bert), steps=2)
    upper, lower = nlp("Bush fell."), nlp("bush fell.")
    t2v = next(node for node in nlp.get_pipe("ner").model.walk() if node.name == "entlink_cased_tok2vec")
    width = t2v.attrs["width"]
    a, b = t2v.predict([upper])[0], t2v.predict([lower])[0]
    assert (a[:, :-width] == b[:, :-width]).all()  # the encoder lower-cases
    assert not (a[0, -width:] == b[0, -width:]).all()  # SHAPE / PREFIX differ for "Bush"
    assert (a[1:, -width:] == b[1:, -width:]).all()  # "fell" and "." are the same tokens


def test_saves_loads_and_annotates_empty_and_long_documents(tiny_bert, tmp_path):  # noqa: F811
    nlp, _ = _train("ner_trf_cased.cfg", str(tiny_bert), steps=10)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    texts = [text for text, _ in CASED] + ["", "Bush fell. " * 400]
    docs = list(loaded.pipe(texts))
    assert len(docs) == len(texts)
    assert _ents(nlp, texts) == [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]
    assert all(t.ent_iob_ in ("B", "I", "O") for t in docs[-1])
