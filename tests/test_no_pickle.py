"""No load path of the package can run code from a file (issue 17): an AST scan of every module
for pickle-based loaders, `torch.load` without `weights_only=True`, `numpy.load` with
`allow_pickle=True`, and `eval`/`exec`."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "spacy_entlink"
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.AST) -> str:
    """`torch.load` for `torch.load(...)`, `eval` for `eval(...)`."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def problems(source: str, where: str) -> list:
    """What in `source` could load a pickle or run code."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{where}:{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"{where}:{node.lineno}: from {node.module} import …")
    for call in _calls(tree):
        name = _name(call.func)
        last = name.rsplit(".", 1)[-1]
        if (isinstance(call.func, ast.Name) and name in ("eval", "exec", "compile")) or name in ("builtins.eval", "builtins.exec"):
            found.append(f"{where}:{call.lineno}: {name}()")
        elif name == "torch.load":
            weights_only = _keyword(call, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"{where}:{call.lineno}: torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load"):
            allow = _keyword(call, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"{where}:{call.lineno}: {name}(allow_pickle=…)")
        elif last in ("read_pickle", "loads", "load") and _name(call.func).split(".")[0] in PICKLE_MODULES:
            found.append(f"{where}:{call.lineno}: {name}()")
        elif last == "from_pretrained" and _keyword(call, "trust_remote_code") is not None:
            found.append(f"{where}:{call.lineno}: from_pretrained(trust_remote_code=…)")
    return found


def test_no_module_of_the_package_can_load_a_pickle_or_run_code():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30
    found = [p for m in modules for p in problems(m.read_text(encoding="utf8"), str(m.relative_to(PACKAGE.parent)))]
    assert found == []


@pytest.mark.parametrize("source", [
    "import pickle",
    "from joblib import load",
    "import torch\ntorch.load(path)",
    "import torch\ntorch.load(path, weights_only=False)",
    "import numpy as np\nnp.load(path, allow_pickle=True)",
    "eval(text)",
    "exec(code)",
    "from transformers import AutoModel\nAutoModel.from_pretrained(p, trust_remote_code=True)",
])
def test_the_scan_finds_each_kind_of_loader(source):
    assert problems(source, "x.py")


@pytest.mark.parametrize("source", [
    "import torch\ntorch.load(path, weights_only=True)",
    "import numpy as np\nnp.load(path, mmap_mode='r')",
    "import numpy as np\nnp.load(path, allow_pickle=False)",
    "import srsly\nsrsly.read_json(path)",
    "model.eval()",
])
def test_the_scan_accepts_safe_loaders(source):
    assert problems(source, "x.py") == []
