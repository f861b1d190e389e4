"""`TorchPipe`: what the torch-backed pipes (`entlink_linker`, `entlink_relations`) share.

- Their torch modules are shims (`spacy_entlink.models.torch_shim.TorchShim`) of the pipe's
  thinc model, so they sit on the device of thinc's current ops (`spacy.require_gpu()`,
  `spacy train --gpu-id N`), `spacy train` steps them with `[training.optimizer]`,
  `nlp.use_params(optimizer.averages)` applies to them, and `model.to_gpu()`/`to_cpu()` move them.
- One inference precision setting per component (`precision`), and one for the forward passes
  of training (`train_precision`: bfloat16 autocast with float32 weights, gradients and
  optimizer state, as spacy-transformers' `mixed_precision`; bfloat16 needs no loss scaling).
- Saving: `to_disk` writes into a temporary sibling folder and swaps it in, so a failed save
  never harms what was there; `to_bytes`/`from_bytes` pack that folder, refusing paths that
  leave it; the saved `cfg` is restored by one rule (saved values win, except run-time
  settings such as `precision`, which the loading config decides).
"""

import shutil
import tempfile
import uuid
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple

import srsly
import torch
from spacy import util
from spacy.pipeline import TrainablePipe
from thinc.api import Adam, Optimizer

from ..errors import ConfigError, EntlinkError
from ..files import read_json_file, unpack_files
from ..models.hf import check_precision, check_saved_reference, inference_precision
from ..models.torch_shim import TorchShim

RUNTIME_SETTINGS = ("precision", "train_precision", "dense_ann")  # chosen by the loading config, never restored from a saved cfg
WEIGHT_DECAY = 0.01  # decoupled (AdamW-style), as spaCy's default optimizer


class TorchPipe(TrainablePipe):
    """Base of pipes whose model is a set of torch modules held by the thinc model's shims."""

    name: str
    cfg: Dict[str, Any]
    REFERENCES: Tuple[str, ...] = ("name", "retriever", "dense_model", "extra_dense_model")  # cfg/attrs keys naming models

    # --- modules and devices ----------------------------------------------------------------
    def torch_modules(self) -> Dict[str, torch.nn.Module]:
        """The pipe's torch modules by role (e.g. "seq2seq", "reader")."""
        raise NotImplementedError

    def lr_scale(self, role: str, parameter: str) -> float:
        """Learning-rate factor of one parameter of the module `role` (1: the optimizer's rate)."""
        return 1.0

    def _place(self) -> None:
        """Make the thinc model's shims the current torch modules; a new module is moved to the
        device of thinc's current ops, a known one keeps its shim (and its optimizer state)."""
        known = {id(s.module): s for s in self.model.shims if isinstance(s, TorchShim)}
        shims = []
        for role, module in self.torch_modules().items():
            shim = known.get(id(module))
            if shim is None:
                shim = TorchShim(module, lr_scale=lambda p, r=role: self.lr_scale(r, p))
            shims.append(shim)
        self.model.shims[:] = shims

    @property
    def devices(self) -> Dict[str, torch.device]:
        """The device of each torch module, by role."""
        out = {}
        for role, module in self.torch_modules().items():
            p = next(module.parameters(), None)
            out[role] = p.device if p is not None else torch.device("cpu")
        return out

    # --- precision ----------------------------------------------------------------------------
    @property
    def precision(self) -> str:
        return check_precision(self.cfg.get("precision", "auto"), self.name)

    def set_precision(self, precision: str) -> None:
        """Change the inference precision ("float32", "bfloat16" or "auto"); saved with the component."""
        self.cfg["precision"] = check_precision(precision, self.name)
        self._place()

    @contextmanager
    def inference_precision(self, device: torch.device) -> Iterator[None]:
        """bfloat16 autocast for inference when the `precision` setting asks for it."""
        with inference_precision(self.precision, device):
            yield

    # --- training -----------------------------------------------------------------------------
    @property
    def train_precision(self) -> str:
        return check_precision(self.cfg.get("train_precision", "float32"), self.name, "train_precision")

    @contextmanager
    def training_precision(self, device: torch.device) -> Iterator[None]:
        """bfloat16 autocast for the forward pass and loss of `update` when `train_precision` asks
        for it (the backward pass follows the dtypes autocast chose)."""
        with inference_precision(self.train_precision, device):
            yield

    def create_optimizer(self) -> Optimizer:
        """The optimizer used when the pipe is stepped without one (`finish_update()`, the
        `train-linker` command): thinc's Adam with decoupled weight decay, at the component's
        `learning_rate` and `grad_clip`. `spacy train` uses `[training.optimizer]` instead."""
        return Adam(learn_rate=float(self.cfg.get("learning_rate", 5e-5)),
                    grad_clip=float(self.cfg.get("grad_clip", 0.0) or 0.0),
                    L2=WEIGHT_DECAY, L2_is_weight_decay=True, use_averages=False)

    def finish_update(self, sgd: Optional[Optimizer] = None) -> None:
        """Step the accumulated gradients with `sgd` (spaCy's optimizer under `spacy train`),
        or with the pipe's own `create_optimizer()` when none is given."""
        if not self.torch_modules():
            return
        if sgd is None:
            if getattr(self, "_own_optimizer", None) is None:
                self._own_optimizer = self.create_optimizer()
            sgd = self._own_optimizer
        self._place()
        clip_global_norm(self.model.shims, float(getattr(sgd, "grad_clip", 0.0) or 0.0))
        self.model.finish_update(sgd)
        self._after_step()

    def _after_step(self) -> None:
        """Hook for state that depends on the weights (e.g. a retriever's index)."""

    def _forget_optimizer(self) -> None:
        self._own_optimizer = None

    def use_params(self, params: Dict) -> Iterator[None]:
        """Use the parameter values in `params` (e.g. `optimizer.averages`) for the duration: a
        generator, as spaCy's `Pipe.use_params` (`Language.use_params` steps it)."""
        self._place()
        with self.model.use_params(params):
            yield

    def get_loss(self, examples, scores):
        raise NotImplementedError(f"{self.name}: the loss is computed inside update()")

    # --- serialization ------------------------------------------------------------------------
    def _cfg_writer(self, **extra: Any) -> Callable[[Path], None]:
        return lambda p: srsly.write_json(p, {**self.cfg, **extra, "model_attrs": dict(self.model.attrs)})

    def _read_cfg(self, path: Path, extras: Sequence[str] = ()) -> Dict[str, Any]:
        """Restore the saved `cfg` of the component folder `path` and the architecture's attrs;
        returns the `extras` keys (popped from it)."""
        if not (path / "cfg").exists():
            raise ConfigError(f"{self.name}: {path} has no cfg file; is it a {type(self).__name__} folder?")
        cfg = read_json_file(path / "cfg")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("model_attrs", {}), dict):
            raise ConfigError(f"{self.name}: {path / 'cfg'} is not a JSON object with the component's settings")
        out = {k: cfg.pop(k, None) for k in extras}
        attrs = dict(cfg.pop("model_attrs", None) or {})
        for key in self.REFERENCES:
            check_saved_reference(cfg.get(key), f"{path / 'cfg'}: {key!r}")
            check_saved_reference(attrs.get(key), f"{path / 'cfg'}: 'model_attrs.{key}'")
        for key in RUNTIME_SETTINGS:
            cfg.pop(key, None)
            attrs.pop(key, None)
        self.model.attrs.update(attrs)
        self.cfg.update(cfg)
        return out

    def _serializers(self) -> Dict[str, Callable[[Path], None]]:
        """Writers of the component folder's files and sub-folders, by name."""
        raise NotImplementedError

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """Write the component folder; an existing folder is replaced only once the new one is
        complete."""
        path = util.ensure_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir()
            util.to_disk(tmp, self._serializers(), exclude)
            _swap_in(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with tempfile.TemporaryDirectory(prefix="entlink_pipe_") as tmp:
            folder = Path(tmp) / "component"
            self.to_disk(folder, exclude=exclude)
            files = {f.relative_to(folder).as_posix(): f.read_bytes() for f in folder.rglob("*") if f.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = tuple()):
        try:
            files = srsly.msgpack_loads(data)
        except Exception as err:  # msgpack raises several unrelated types
            raise EntlinkError(f"{self.name}: the bytes are not a packed component ({type(err).__name__}: {err})") from None
        folder = unpack_files(files, self.name)
        weakref.finalize(self, shutil.rmtree, folder, True)  # the KB may stay memory-mapped from it
        return self.from_disk(folder, exclude=exclude)


def clip_global_norm(shims: Sequence, limit: float) -> None:
    """Scale the gradients of all the shims' parameters together so that their joint norm is at
    most `limit` (torch's `clip_grad_norm_`, as the models were tuned with); thinc's optimizer
    clips each tensor by itself to the same limit, which then never triggers."""
    params = [p for s in shims for p in s.module.parameters() if p.grad is not None]
    if limit > 0 and params:
        torch.nn.utils.clip_grad_norm_(params, limit)


def _swap_in(new: Path, path: Path) -> None:
    """Replace `path` (if any) by the folder `new`; on failure the old folder is put back."""
    if not path.exists():
        new.rename(path)
        return
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    path.rename(old)
    try:
        new.rename(path)
    except OSError:
        old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)
