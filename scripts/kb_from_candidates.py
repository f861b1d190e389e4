"""Entity records (JSONL for `build-kb`) from candidate-list files such as AIDA-CoNLL's PPRforNED ones.

Every candidate title of the given candidate files, and every gold title of the training file, becomes an entity: id = the
Wikipedia title, name = the title with spaces, prior = its Wikipedia in-link count
(`in_count`), aliases = the mention texts that link to it in the *training* file only.

    python scripts/kb_from_candidates.py ../shared/data/aida/candidates_train.jsonl \
        ../shared/data/aida/candidates_testa.jsonl --train ../shared/data/aida/candidates_train.jsonl \
        --output corpus/aida_entities.jsonl
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

import srsly


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("candidates", nargs="+", type=Path, help="candidates_*.jsonl files (titles and in-link counts)")
    ap.add_argument("--train", type=Path, required=True, help="the training candidates file (for aliases)")
    ap.add_argument("--output", type=Path, required=True)
    args = ap.parse_args()
    prior = defaultdict(int)
    for path in args.candidates:
        for n, rec in enumerate(srsly.read_jsonl(path), start=1):
            if not isinstance(rec, dict) or not isinstance(rec.get("candidates"), list):
                raise SystemExit(f"{path}, line {n}: expected an object with a 'candidates' list")
            for c in rec["candidates"]:
                prior[c["title"]] = max(prior[c["title"]], int(c["in_count"]))
            if rec.get("gold") and path.resolve() == args.train.resolve():
                prior.setdefault(rec["gold"], 0)  # gold titles of the training file only
    aliases = defaultdict(dict)
    for rec in srsly.read_jsonl(args.train):
        if rec.get("gold"):
            aliases[rec["gold"]][rec["mention"]] = None
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf8") as f:
        for title in sorted(prior):
            name = title.replace("_", " ")
            f.write(json.dumps({"id": title, "name": name, "type": "ENT", "prior": prior[title],
                                "aliases": [a for a in aliases.get(title, {}) if a != name]}, ensure_ascii=False) + "\n")
    print(f"✔ {args.output}: {len(prior):,} entities, {sum(len(v) for v in aliases.values()):,} training aliases")


if __name__ == "__main__":
    main()
