"""A pipeline folder someone hands you is data, not code (issue 17): a pickle dropped into it is
never loaded, a tampered `cfg` that points outside the folder is refused, and each refusal is
one clear error that names the file."""

import json
import pickle
import shutil
from pathlib import Path

import pytest
import spacy

from spacy_entlink.errors import EntlinkError
from tests.linking.conftest import tiny_bart
from tests.relations.conftest import tiny_encoder

MARKER = "entlink_pickle_ran"


class Payload:
    """Unpickling this creates the marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def saved(demo_kb, tmp_path_factory) -> Path:
    """A saved pipeline with every kind of model folder: the linker's seq2seq model and its
    dense encoder, and the relation reader."""
    tmp = tmp_path_factory.mktemp("crafted")
    tiny_encoder(tmp / "enc")
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary").set_kb(demo_kb)
    linker = nlp.add_pipe("entlink_linker", config={
        "candidates": ["kb", "dense"], "dense_model": str(tmp / "enc"),
        "model": {"max_context_tokens": 64, "max_name_tokens": 24}})
    linker.set_seq2seq(tiny_bart(tmp / "bart")).set_kb(demo_kb)
    nlp.add_pipe("entlink_relations", config={
        "relation_types": "conll04", "model": {"@architectures": "spacy_entlink.RelationReader.v1",
                                               "name": str(tmp / "enc"), "retriever": str(tmp / "enc"),
                                               "max_candidates": 8, "hidden": 32, "max_text_tokens": 64}})
    nlp.initialize()
    nlp.to_disk(tmp / "pipe")
    return tmp / "pipe"


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    target = tmp_path / "pipe"
    shutil.copytree(saved, target)
    return target


def test_the_untouched_folder_loads(saved):
    nlp = spacy.load(saved)
    doc = nlp("Patients with juvenile diabetes received cisplatin .")
    assert doc.ents and all(e.kb_id_ for e in doc.ents)


@pytest.mark.parametrize("folder", ["entlink_linker/model", "entlink_linker/dense/encoder",
                                    "entlink_relations/reader/encoder"])
def test_pickled_weights_in_place_of_safetensors_are_refused_and_never_run(copy, tmp_path, folder):
    marker = tmp_path / MARKER
    (copy / folder / "model.safetensors").unlink()
    (copy / folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(EntlinkError, match=r"no safetensors weights.*pytorch_model\.bin is a pickle-based format"):
        nlp = spacy.load(copy)
        nlp.get_pipe("entlink_linker").dense.encoder  # noqa: B018 - the dense encoder loads on first use
    assert not marker.exists()


@pytest.mark.parametrize("folder", ["entlink_linker/model", "entlink_relations/reader/encoder"])
def test_a_pickle_named_safetensors_is_refused(copy, tmp_path, folder):
    marker = tmp_path / MARKER
    (copy / folder / "model.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(EntlinkError, match="cannot load a Hugging Face model from"):
        spacy.load(copy)
    assert not marker.exists()


def test_a_stray_pickle_beside_the_files_is_never_read(copy, tmp_path):
    marker = tmp_path / MARKER
    for folder in ["", "entlink_linker", "entlink_linker/model", "entlink_linker/kb", "entlink_relations/reader"]:
        for name in ["evil.pkl", "pytorch_model.bin", "training_args.bin"]:
            (copy / folder / name).write_bytes(pickle.dumps(Payload(marker)))
    nlp = spacy.load(copy)
    nlp("Patients with juvenile diabetes received cisplatin .")
    nlp.get_pipe("entlink_linker").dense.encoder  # noqa: B018
    assert not marker.exists()


@pytest.mark.parametrize("component,key,remove", [
    ("entlink_linker", "dense_model", "entlink_linker/dense"),
    ("entlink_linker", "extra_dense_model", None),
    ("entlink_linker", "model_attrs.name", "entlink_linker/model"),
    ("entlink_relations", "model_attrs.name", "entlink_relations/reader"),
    ("entlink_relations", "model_attrs.retriever", None),
])
def test_a_cfg_pointing_outside_the_folder_is_refused(copy, component, key, remove):
    cfg_file = copy / component / "cfg"
    cfg = json.loads(cfg_file.read_text())
    target = cfg
    *parents, last = key.split(".")
    for part in parents:
        target = target[part]
    target[last] = "../../../elsewhere/model"
    cfg_file.write_text(json.dumps(cfg))
    if remove:
        shutil.rmtree(copy / remove)
    with pytest.raises(EntlinkError, match=rf"{component}/cfg.*{last}.*points outside the pipeline folder"):
        spacy.load(copy)


def test_a_dense_index_pointing_outside_is_refused(copy):
    meta_file = copy / "entlink_linker" / "dense" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["model"] = "..\\..\\elsewhere"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(EntlinkError, match=r"meta\.json.*points outside the pipeline folder"):
        spacy.load(copy)


@pytest.mark.parametrize("file,content", [
    ("entlink_linker/cfg", "[1, 2]"),
    ("entlink_linker/cfg", '{"model_attrs": "x"}'),
    ("entlink_linker/cfg", "{not json"),
    ("entlink_relations/reader/reader.json", '{"hidden": 32, "__class__": 1}'),
    ("entlink_relations/reader/reader.json", '"x"'),
    ("entlink_linker/dense/meta.json", "[]"),
    ("entlink_linker/model/entlink_lengths.json", '{"max_context_tokens": "64", "max_name_tokens": 24}'),
])
def test_tampered_json_is_a_clear_error_naming_the_file(copy, file, content):
    (copy / file).write_text(content)
    with pytest.raises(EntlinkError, match=Path(file).name.replace(".", r"\.")):
        spacy.load(copy)
