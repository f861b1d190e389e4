"""Check a `spacy package` wheel: fresh venv, offline load, annotate a text.

    python scripts/check_package.py packages/en_bc5cdr_ner-0.1.0/dist/en_bc5cdr_ner-0.1.0-py3-none-any.whl

1. builds a wheel of spacy-entlink from this repository (`pip wheel --no-deps .`);
2. creates a new virtual environment outside the repository, installs torch==2.13.0 (the CPU
   build), then the pipeline wheel with `--find-links` pointing at the spacy-entlink wheel, so
   that spacy-entlink arrives as the pipeline's declared requirement (everything else from the
   package registry);
3. loads the pipeline with `spacy.load(name)` and annotates a text in a process with no network
   (`unshare -rn`) and, where mount namespaces are allowed, with the repository and the shared
   data hidden under an empty tmpfs, from an empty working directory; prints the entities.
Exit code 0 only if every step worked and at least one entity was found.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = (
    "Naloxone reverses the antihypertensive effect of clonidine. In unanesthetized, spontaneously "
    "hypertensive rats the decrease in blood pressure and heart rate produced by intravenous "
    "clonidine was inhibited by naloxone. Cisplatin-induced nephrotoxicity and acute renal failure "
    "were seen in two patients."
)
PROBE = r"""
import json, sys, time
t = time.perf_counter()
import spacy
nlp = spacy.load(sys.argv[1])
loaded = time.perf_counter() - t
doc = nlp(sys.argv[2])
rels = getattr(doc._, "entlink_relations", []) if doc.has_extension("entlink_relations") else []
arg = lambda a: a if isinstance(a, str) else a.text
print(json.dumps({"pipeline": nlp.pipe_names, "load_s": round(loaded, 2),
                  "ents": [[e.text, e.label_, e.kb_id_] for e in doc.ents],
                  "relations": [[arg(r.head), r.label, arg(r.tail), round(r.score, 3)] for r in rels]}))
"""


def sh(cmd, **kw) -> subprocess.CompletedProcess:
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def isolation_prefix(hide: Path) -> list:
    """`unshare` arguments for no network and, if allowed, `hide` covered by an empty tmpfs."""
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(["unshare", "-rn", "--mount", "sh", "-c", f"mount -t tmpfs none {hide}"],
                           capture_output=True)
    if probe.returncode == 0:
        return ["unshare", "-rn", "--mount", "sh", "-c", f'mount -t tmpfs none {hide} && exec "$@"', "isolated"]
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    return ["unshare", "-rn"] if probe.returncode == 0 else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel", type=Path, help="pipeline wheel built by `spacy package --build wheel`")
    ap.add_argument("--workdir", type=Path, default=None, help="where to create the venv (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the venv")
    ap.add_argument("--output", type=Path, default=None, help="write the result as JSON here")
    args = ap.parse_args()
    if not args.wheel.is_file():
        ap.error(f"{args.wheel}: no such wheel (run `spacy package ... --build wheel` first)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="entlink_pkg_"))
    if str(work.resolve()).startswith(str(REPO.parent.resolve())):
        ap.error("--workdir must be outside the repository's parent folder (it gets hidden)")
    start = time.perf_counter()
    try:
        wheels = work / "wheels"
        sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, REPO])
        venv = work / "venv"
        sh([sys.executable, "-m", "venv", venv])
        py = venv / "bin" / "python"
        sh([py, "-m", "pip", "install", "-q", "torch==2.13.0"])
        sh([py, "-m", "pip", "install", "-q", "--find-links", wheels, args.wheel.resolve()])
        name = args.wheel.name.split("-")[0]
        empty = work / "cwd"
        empty.mkdir(exist_ok=True)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(empty), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}
        prefix = isolation_prefix(REPO.parent)
        out = sh(prefix + [py, "-c", PROBE, name, TEXT], cwd=empty, env=env, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result.update({
            "wheel": str(args.wheel), "isolation": " ".join(prefix[:3]) or "none",
            "repository_hidden": "--mount" in prefix, "total_s": round(time.perf_counter() - start, 1),
        })
        print(json.dumps(result, indent=2))
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(result, indent=2) + "\n")
        if not result["ents"]:
            print("✘ the installed pipeline found no entities", file=sys.stderr)
            return 1
        print(f"✔ {name} installed from its wheel and annotated offline ({len(result['ents'])} entities)")
        return 0
    except subprocess.CalledProcessError as err:
        print(f"✘ step failed ({err.returncode}): {' '.join(map(str, err.cmd))}\n{err.stderr or ''}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
