"""`spacy train` of configs/linker.cfg and configs/relations_conll04.cfg steps the torch models
with the config's [training.optimizer] (tiny random models)."""

from pathlib import Path

import pytest
import spacy
from safetensors.torch import load_file
from spacy.tokens import DocBin
from spacy.training.initialize import init_nlp

from tests.linking.conftest import tiny_bart
from tests.pipeline.test_linker import make_doc
from tests.pipeline.test_relations import SENTS, gold_doc
from tests.relations.conftest import tiny_encoder

REPO = Path(__file__).resolve().parents[2]


def _train(config: str, out: Path, overrides: dict) -> Path:
    from spacy.cli.train import train

    train(REPO / "configs" / config, out, overrides=overrides)
    return out / "model-last"


@pytest.fixture(scope="module")
def linker_data(tmp_path_factory, demo_kb):
    tmp = tmp_path_factory.mktemp("spacy_train_linker")
    tiny_bart(tmp / "tok").save(tmp / "bart")
    nlp = spacy.blank("en")
    docs = [make_doc(nlp, with_ids=True) for _ in range(4)]
    DocBin(docs=docs, store_user_data=True).to_disk(tmp / "train.spacy")
    DocBin(docs=docs[:1], store_user_data=True).to_disk(tmp / "dev.spacy")
    return tmp, {"paths.train": str(tmp / "train.spacy"), "paths.dev": str(tmp / "dev.spacy"),
                 "paths.kb": str(demo_kb.path), "paths.model": str(tmp / "bart"), "training.max_steps": 3,
                 "training.eval_frequency": 3}


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.0, 1e-3])
def test_linker_config_trains_with_the_training_optimizer(linker_data, rate):
    tmp, overrides = linker_data
    out = _train("linker.cfg", tmp / f"out_{rate}", {**overrides, "training.optimizer.learn_rate": rate,
                                                      "training.optimizer.L2": 0.0})
    start = load_file(str(tmp / "bart" / "model.safetensors"))
    trained = load_file(str(out / "entlink_linker" / "model" / "model.safetensors"))
    changed = [k for k in start if k in trained and not (start[k] == trained[k]).all()]
    if rate == 0.0:
        assert changed == []  # the block's learning rate is the one in use: 0 moves nothing
    else:
        assert len(changed) > len(start) // 2


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.0, 1e-3])
def test_relations_config_trains_with_the_training_optimizer(tmp_path, rate):
    tiny_encoder(tmp_path / "enc")
    nlp = spacy.blank("en")
    docs = [gold_doc(nlp, *s) for s in SENTS]
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "train.spacy")
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"), "paths.dev": str(tmp_path / "train.spacy"),
        "paths.model": str(tmp_path / "enc"), "components.entlink_relations.model.hidden": 32,
        "components.entlink_relations.model.max_text_tokens": 64, "training.max_steps": 3,
        "training.eval_frequency": 3, "training.optimizer.learn_rate": rate, "training.optimizer.L2": 0.0}
    out = _train("relations_conll04.cfg", tmp_path / "out", overrides)
    # the same initialisation as spacy train's (same seed), without training
    config = spacy.util.load_config(REPO / "configs" / "relations_conll04.cfg", overrides=overrides, interpolate=False)
    init_nlp(config).to_disk(tmp_path / "initial")
    a = load_file(str(tmp_path / "initial" / "entlink_relations" / "reader" / "heads.safetensors"))
    b = load_file(str(out / "entlink_relations" / "reader" / "heads.safetensors"))
    changed = [k for k in a if not (a[k] == b[k]).all()]
    if rate == 0.0:
        assert changed == []
    else:
        assert len(changed) >= len(a) // 2
