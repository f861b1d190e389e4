"""Torch modules inside thinc: device placement, spaCy's optimizer and parameter averages.

A `TorchShim` is thinc's `PyTorchShim` with three changes that the torch-backed pipes need:
- the step passes a per-parameter learning-rate scale to spaCy's optimizer (new layers can
  learn faster than a pretrained encoder under one `[training.optimizer]`);
- `use_params` reads the averages spaCy's optimizer keeps, which are keyed by
  `(shim.id, parameter name)` (thinc's own shim looks for other keys and so never applies them);
- (de)serialisation through safetensors instead of pickle.
"""

import contextlib
from typing import Any, Callable, Dict, Iterator, Optional

import torch
from thinc.api import Optimizer
from thinc.shims import PyTorchShim
from thinc.util import torch2xp, xp2torch

from . import hf

LrScale = Callable[[str], float]


def _save_state(module: torch.nn.Module) -> bytes:
    from safetensors.torch import save

    seen: Dict[int, str] = {}
    state = {}
    for name, tensor in module.state_dict().items():
        if tensor.data_ptr() in seen and tensor.numel():  # tied weights are stored once
            continue
        seen[tensor.data_ptr()] = name
        state[name] = tensor.detach().contiguous().cpu()
    return save(state)


def _load_state(module: torch.nn.Module, data: bytes, device: torch.device) -> torch.nn.Module:
    from safetensors.torch import load

    module.load_state_dict(load(data), strict=False)
    return module.to(device)


class TorchShim(PyTorchShim):
    """A torch module wrapped for thinc, placed on `device` (default: the device thinc's current
    ops use, see `spacy_entlink.models.hf.torch_device`)."""

    def __init__(self, module: torch.nn.Module, *, lr_scale: Optional[LrScale] = None,
                 device: Optional[torch.device] = None):
        super().__init__(module, device=device if device is not None else hf.torch_device(),
                         serialize_model=_save_state, deserialize_model=_load_state)
        self.lr_scale = lr_scale

    @property
    def module(self) -> torch.nn.Module:
        return self._model

    def finish_update(self, optimizer: Optimizer) -> None:
        """Step every parameter that has a gradient with `optimizer`, then clear the gradients."""
        for name, param in self._model.named_parameters():
            if param.grad is None:
                continue
            if not self._grad_scaler.found_inf:
                scale = 1.0 if self.lr_scale is None else float(self.lr_scale(name))
                weights, _ = optimizer((self.id, name), torch2xp(param.data), torch2xp(param.grad), lr_scale=scale)
                updated = xp2torch(weights, device=param.device)
                if updated.data_ptr() != param.data.data_ptr():
                    # Copied into the parameter's own storage: assigning `param.data = updated`
                    # would chain every step's tensor to the previous one (through the array
                    # `torch2xp` made of it), keeping a copy of the model alive per step.
                    with torch.no_grad():
                        param.data.copy_(updated)
            param.grad = None
        self._grad_scaler.update()

    @contextlib.contextmanager
    def use_params(self, params: Dict[Any, Any]) -> Iterator[None]:
        """Temporarily use the values in `params` (e.g. `optimizer.averages`) for the
        parameters they cover."""
        named = dict(self._model.named_parameters())
        given = {name: params[(self.id, name)] for name in named if (self.id, name) in params}
        if not given:
            yield
            return
        backup = {name: named[name].data.clone() for name in given}
        with torch.no_grad():
            for name, value in given.items():
                named[name].data.copy_(xp2torch(value, device=named[name].device))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in backup.items():
                    named[name].data.copy_(value)
