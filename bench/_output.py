"""What every benchmark script does with its `--output` (the results as indented JSON) and
with `--gpu-id` (run on that GPU, and report where every torch module ran)."""

import json
from pathlib import Path
from typing import Any, Optional


def write_json(path: Optional[Path], result: Any) -> None:
    """Write `result` to `path` (folders created) and say so; nothing without a path."""
    if not path:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"✔ {path}")


def use_gpu(gpu_id: int) -> str:
    """`spacy.require_gpu(gpu_id)` for `gpu_id` >= 0, as `spacy train --gpu-id`; returns "gpu N" or "cpu"."""
    if gpu_id < 0:
        return "cpu"
    import spacy

    spacy.require_gpu(gpu_id)
    return f"gpu {gpu_id}"


def torch_devices(nlp) -> dict:
    """For every component with torch modules (the shims of its thinc model, as spacy-transformers'
    transformer and our torch pipes), the devices their parameters are on."""
    out = {}
    for name, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        devices = set()
        for node in model.walk():
            for shim in node.shims:
                module = getattr(shim, "_model", None)
                if hasattr(module, "parameters"):
                    devices.update(str(p.device) for p in module.parameters())
        if devices:
            out[name] = sorted(devices)
    return out
