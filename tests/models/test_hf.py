from pathlib import Path

import pytest
from spacy.util import registry

from spacy_entlink.errors import ConfigError
from spacy_entlink.models.hf import EMBEDDED_MODEL, embedded_model_path, resolve_model_name


@pytest.mark.parametrize("name", ["", None, "  ", EMBEDDED_MODEL])
def test_default_is_the_embedded_minilm(name):
    path = Path(resolve_model_name(name))
    assert path == embedded_model_path()
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()


def test_hub_names_pass_through():
    assert resolve_model_name("roberta-base") == "roberta-base"
    assert resolve_model_name("dmis-lab/biobert-base-cased-v1.2") == "dmis-lab/biobert-base-cased-v1.2"


def test_local_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model_name(str(tmp_path)) == str(tmp_path.resolve())


def test_bad_local_folders_are_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model_name(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_model_name(str(tmp_path))


def test_registered_for_configs():
    fn = registry.misc.get("spacy_entlink.ModelName.v1")
    assert fn() == str(embedded_model_path())
    assert fn("t5-small") == "t5-small"
