"""What the torch-backed pipes share (spacy_entlink.pipeline.torch_pipe): device placement,
spaCy's optimizer and parameter averages, safe and atomic serialization."""

import numpy as np
import pytest
import spacy
import srsly
import torch
from spacy.training import Example
from thinc.api import Adam, Optimizer
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from spacy_entlink.errors import ConfigError, EntlinkError
from spacy_entlink.models import hf
from spacy_entlink.models.torch_shim import TorchShim
from tests.linking.conftest import tiny_bart
from tests.pipeline.test_linker import ENTS, make_doc
from tests.pipeline.test_relations import examples as relation_examples
from tests.pipeline.test_relations import make_nlp as make_relations_nlp

LEAVING = {"cpu", "numpy", "tolist", "item", "__float__", "__int__", "__bool__", "__index__"}


class StaysOnDevice(TorchFunctionMode):
    """Records every torch call that mixes tensors of the target device with CPU tensors (what
    fails on a GPU); results that leave for the CPU (`.cpu()`, `.tolist()`, ...) come back as
    zeros, since a meta tensor has no data."""

    def __init__(self, device: str = "meta"):
        super().__init__()
        self.device = device
        self.mixed = []
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls += 1
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        name = getattr(func, "__name__", str(func))
        on_target = [t for t in tensors if t.device.type == self.device]
        if on_target and (name in LEAVING or (name == "to" and _to_cpu(args, kwargs))):
            t = on_target[0]
            zeros = torch.zeros(t.shape, dtype=t.dtype)
            if name in ("cpu", "to"):
                return zeros
            if name == "numpy":
                return zeros.numpy()
            if name == "tolist":
                return zeros.tolist()
            return False if name == "__bool__" else 0
        moving = name in ("to", "copy_", "cuda", "__get__", "__set__", "_to_copy", "__setitem__",
                          "_has_compatible_shallow_copy_type", "set_")  # moving a module or a tensor
        devices = {t.device.type for t in tensors if t.dim() > 0}
        if on_target and len(devices) > 1 and not moving:
            self.mixed.append(name)
        return func(*args, **kwargs)


def _to_cpu(args, kwargs) -> bool:
    target = kwargs.get("device", args[1] if len(args) > 1 else None)
    return str(target).startswith("cpu")


def all_tensors(module: torch.nn.Module):
    yield from module.parameters()
    yield from (b for b in module.buffers() if b is not None)


@pytest.fixture
def on_meta(monkeypatch):
    """Every torch module placed from now on goes to the meta device, as after require_gpu()."""
    monkeypatch.setattr(hf, "torch_device", lambda: torch.device("meta"))


def test_linker_modules_follow_the_device_and_no_tensor_stays_behind(on_meta, demo_kb, tmp_path):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker", config={"top_k": 3})
    linker.set_seq2seq(tiny_bart(tmp_path / "m")).set_kb(demo_kb)
    assert set(linker.devices) == {"seq2seq"} and linker.devices["seq2seq"].type == "meta"
    assert all(t.is_meta for t in all_tensors(linker.seq2seq.model))
    assert [s.module for s in linker.model.shims] == [linker.seq2seq.model]
    docs = [make_doc(nlp), make_doc(nlp, "He had a bad episode .", [("bad episode", "Disease", "")])]
    docs[1].ents[0]._.entlink_candidates = ["DEMO:D016", "DEMO:D017"]  # two candidates: the model scores them
    mode = StaysOnDevice()
    with mode:
        docs = list(linker.pipe(docs))
    assert mode.calls > 50  # the seq2seq model ran (on meta)
    assert mode.mixed == [], f"CPU tensors mixed into meta computations: {sorted(set(mode.mixed))}"
    assert len(docs[0].ents) == len(ENTS) and all(e.kb_id_ for e in docs[0].ents)
    assert docs[1].ents[0].kb_id_ in ("DEMO:D016", "DEMO:D017", "NIL")


def test_relation_modules_follow_the_device_and_no_tensor_stays_behind(on_meta, tmp_path):
    nlp, rel = make_relations_nlp(tmp_path, relation_types="conll04", max_candidates=2)  # 5 types: a retriever
    egs = relation_examples(nlp)
    mode = StaysOnDevice()
    with mode:  # builds the retriever's index of relation types on the device
        nlp.initialize(lambda: egs)
    assert set(rel.devices) == {"reader", "retriever"} and all(d.type == "meta" for d in rel.devices.values())
    assert all(t.is_meta for m in (rel.reader, rel.retriever) for t in all_tensors(m))
    assert rel.retriever.index is not None and rel.retriever.index.is_meta
    docs = [eg.reference.copy() for eg in egs]
    with mode:
        docs = list(rel.pipe(docs))
    assert mode.calls > 50
    assert mode.mixed == [], f"CPU tensors mixed into meta computations: {sorted(set(mode.mixed))}"
    assert len(docs) == len(egs)


def test_thinc_model_moves_the_torch_modules(demo_kb, tmp_path, monkeypatch):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker")
    linker.set_seq2seq(tiny_bart(tmp_path / "m")).set_kb(demo_kb)
    moved = []
    monkeypatch.setattr(TorchShim, "to_device", lambda self, kind, i: moved.append((self.module, kind, i)))
    linker.model.to_cpu()  # to_gpu(i) goes the same way, through the shims (it needs cupy)
    assert moved == [(linker.seq2seq.model, "cpu", -1)]


def _linker_nlp(demo_kb, tmp_path):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker", config={"top_k": 3})
    linker.set_seq2seq(tiny_bart(tmp_path / "m")).set_kb(demo_kb)
    return nlp, linker


def test_spacy_optimizer_steps_the_model_and_its_averages_apply(demo_kb, tmp_path):
    nlp, linker = _linker_nlp(demo_kb, tmp_path)
    params = dict(linker.seq2seq.model.named_parameters())
    before = {k: v.detach().clone() for k, v in params.items()}
    sgd = Adam(1e-2, use_averages=True)
    egs = [Example(make_doc(nlp), make_doc(nlp, with_ids=True))]
    for _ in range(3):
        nlp.update(egs, sgd=sgd)
    after = {k: v.detach().clone() for k, v in params.items()}
    changed = [k for k in params if not torch.equal(before[k], after[k])]
    assert len(changed) > len(params) // 2  # spaCy's optimizer took the steps
    assert all(p.grad is None for p in params.values())  # and cleared the gradients
    shim = linker.model.shims[0]
    assert sgd.averages and all(key[0] == shim.id for key in sgd.averages)
    name = changed[0]
    with nlp.use_params(sgd.averages):  # what spacy train does to evaluate and save model-best
        inside = params[name].detach().clone()
    assert np.allclose(inside.numpy(), sgd.averages[(shim.id, name)])
    assert not torch.equal(inside, after[name])
    assert torch.equal(params[name].detach(), after[name])  # restored afterwards


@pytest.mark.parametrize("sgd", [lambda: Adam(1e-2, use_averages=True), lambda: Adam(1e-2, L2=0.01, grad_clip=1.0)])
def test_training_steps_keep_no_copy_of_the_model(sgd, tmp_path):
    """Every step updates the parameters in their own storage: no tensor is kept per step (the
    earlier `param.data = new tensor` chained each step's weights to the previous step's, a
    copy of the model per step, and long `spacy train` runs ran out of memory)."""
    import gc

    nlp, rel = make_relations_nlp(tmp_path)
    egs = relation_examples(nlp)
    nlp.initialize(lambda: egs)
    sgd = sgd()
    params = dict(rel.model.shims[0].module.named_parameters())
    storage = {k: v.data_ptr() for k, v in params.items()}

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))

    for _ in range(2):
        nlp.update(egs, sgd=sgd)
    before = live_tensors()
    for _ in range(8):
        nlp.update(egs, sgd=sgd)
    assert live_tensors() - before < len(params)  # not one more tensor per parameter and step
    assert {k: v.data_ptr() for k, v in params.items()} == storage


def test_zero_learning_rate_changes_nothing(demo_kb, tmp_path):
    nlp, linker = _linker_nlp(demo_kb, tmp_path)
    before = {k: v.detach().clone() for k, v in linker.seq2seq.model.named_parameters()}
    nlp.update([Example(make_doc(nlp), make_doc(nlp, with_ids=True))], sgd=Adam(0.0, L2=0.0))
    assert all(torch.equal(before[k], v.detach()) for k, v in linker.seq2seq.model.named_parameters())


def test_new_relation_layers_learn_faster_than_the_encoder(tmp_path):
    nlp, rel = make_relations_nlp(tmp_path, head_lr_factor=10.0)
    egs = relation_examples(nlp)
    nlp.initialize(lambda: egs)
    assert rel.lr_scale("reader", "encoder.embeddings.word_embeddings.weight") == 1.0
    assert rel.lr_scale("reader", "head_proj.weight") == 10.0
    seen = {}

    class Recording(Optimizer):
        def __call__(self, key, weights, gradient, *, lr_scale=1.0):
            seen[key[1]] = lr_scale
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)

    nlp.update(egs, sgd=Recording(1e-3))
    assert seen["head_proj.weight"] == 10.0 and seen["encoder.embeddings.word_embeddings.weight"] == 1.0


@pytest.mark.parametrize("pipe", ["linker", "relations", "dictionary"])
def test_from_bytes_refuses_paths_outside_the_component(pipe, demo_kb, tmp_path):
    if pipe == "linker":
        component = _linker_nlp(demo_kb, tmp_path)[1]
        data = {"cfg": b"{}", "../evil": b"x"}
    elif pipe == "relations":
        component = make_relations_nlp(tmp_path)[1]
        data = {"cfg": b"{}", "reader/../../evil": b"x"}
    else:
        component = spacy.blank("en").add_pipe("entlink_dictionary")
        data = {"cfg": component.cfg, "exclusions": [], "kb": {"../evil": b"x"}}
        with pytest.raises(EntlinkError, match="outside the component folder"):
            component.from_bytes(srsly.msgpack_dumps(data))
        return
    with pytest.raises(EntlinkError, match="outside the component folder"):
        component.from_bytes(srsly.msgpack_dumps(data))
    with pytest.raises(EntlinkError, match="outside the component folder"):
        component.from_bytes(srsly.msgpack_dumps({"/tmp/abs_evil": b"x"}))
    with pytest.raises(EntlinkError, match="not a packed"):
        component.from_bytes(b"\x93not msgpack")
    assert not (tmp_path.parent / "evil").exists()


def _two_docs(nlp):
    docs = [make_doc(nlp), make_doc(nlp, "He had a bad episode .", [("bad episode", "Disease", "")])]
    docs[1].ents[0]._.entlink_candidates = ["DEMO:D016", "DEMO:D017"]
    return docs


def _links(nlp):
    return [(e.kb_id_, [(i, round(p, 5)) for i, p in e._.entlink_links]) for d in nlp.pipe(_two_docs(nlp)) for e in d.ents]


def test_linker_round_trip_by_bytes_and_disk(demo_kb, tmp_path):
    nlp, linker = _linker_nlp(demo_kb, tmp_path)
    links = _links(nlp)
    assert len(links[-1][1]) == 2  # the scored mention has two ranked candidates
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert _links(loaded) == links
    other = spacy.blank("en")
    copy = other.add_pipe("entlink_linker", config={"top_k": 3}).from_bytes(linker.to_bytes())
    assert [s.module for s in copy.model.shims] == [copy.seq2seq.model]
    assert _links(other) == links


def test_failed_save_leaves_the_previous_folder(demo_kb, tmp_path, monkeypatch):
    nlp, linker = _linker_nlp(demo_kb, tmp_path)
    nlp.to_disk(tmp_path / "p")
    before = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "p").rglob("*"))

    def broken(path):
        raise OSError("disk full")

    monkeypatch.setattr(linker.seq2seq, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        nlp.to_disk(tmp_path / "p")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "p").rglob("*")) == before
    assert not [p for p in (tmp_path / "p").iterdir() if p.name.startswith(".")]  # no temporary left
    monkeypatch.undo()
    assert spacy.load(tmp_path / "p").get_pipe("entlink_linker").seq2seq is not None


def test_precision_is_a_component_setting_that_the_loading_config_decides(demo_kb, tmp_path):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker", config={"precision": "bfloat16"})
    linker.set_seq2seq(tiny_bart(tmp_path / "m")).set_kb(demo_kb)
    assert linker.seq2seq.precision == "bfloat16"
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p", config={"components": {"entlink_linker": {"precision": "float32"}}})
    again = loaded.get_pipe("entlink_linker")
    assert again.seq2seq.precision == "float32"
    again.set_precision("bfloat16")
    assert again.seq2seq.precision == "bfloat16" and again.cfg["precision"] == "bfloat16"
    with pytest.raises(ConfigError, match="precision"):
        again.set_precision("fp8")
    with pytest.warns(DeprecationWarning, match="precision"):
        old = spacy.blank("en").add_pipe("entlink_linker", config={
            "model": {"@architectures": "spacy_entlink.GenreLinker.v1", "precision": "float32"}})
    assert old.precision == "float32"


def _relations_for_training(demo_kb, tmp_path, train_precision):
    nlp, rel = make_relations_nlp(tmp_path, train_precision=train_precision)
    egs = relation_examples(nlp)
    nlp.initialize(lambda: egs)
    return nlp, rel, egs, rel.reader


def _linker_for_training(demo_kb, tmp_path, train_precision):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker", config={"top_k": 3, "train_precision": train_precision})
    linker.set_seq2seq(tiny_bart(tmp_path / "m")).set_kb(demo_kb)
    return nlp, linker, [Example(make_doc(nlp), make_doc(nlp, with_ids=True))], linker.seq2seq.model


@pytest.mark.parametrize("build", [_relations_for_training, _linker_for_training], ids=["relations", "linker"])
@pytest.mark.parametrize("train_precision, dtype", [("float32", torch.float32), ("bfloat16", torch.bfloat16)])
def test_train_precision_sets_the_dtype_of_the_updates_forward_pass_only(demo_kb, tmp_path, build, train_precision, dtype):
    nlp, pipe, egs, module = build(demo_kb, tmp_path, train_precision)
    assert pipe.train_precision == train_precision
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for m in linears]
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    losses = {}
    nlp.update(egs, sgd=Adam(1e-3), losses=losses)
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {dtype}
    assert np.isfinite(losses[pipe.name]) and losses[pipe.name] > 0
    assert all(v.dtype == torch.float32 for v in module.parameters())  # float32 weights under either
    assert any(not torch.equal(before[k], v.detach()) for k, v in module.named_parameters())


def test_bfloat16_training_learns_and_train_precision_is_a_run_time_setting(tmp_path):
    nlp, rel = make_relations_nlp(tmp_path, train_precision="bfloat16")
    egs = relation_examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    losses = []
    for _ in range(25):
        out = {}
        nlp.update(egs, losses=out)
        losses.append(out["entlink_relations"])
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").get_pipe("entlink_relations").train_precision == "bfloat16"  # config.cfg
    loaded = spacy.load(tmp_path / "p", config={"components": {"entlink_relations": {"train_precision": "float32"}}})
    assert loaded.get_pipe("entlink_relations").train_precision == "float32"  # the loading config wins
    with pytest.raises(ConfigError, match="train_precision 'float16'"):
        make_relations_nlp(tmp_path, train_precision="float16")
    with pytest.raises(ConfigError, match="train_precision"):
        spacy.blank("en").add_pipe("entlink_linker", config={"train_precision": "half"})
