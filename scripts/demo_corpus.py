"""Write a small synthetic training and dev corpus for the `demo` workflow from the demo KB.

Each document is a few sentences built from templates written for this project; chemical and
disease mentions are names or aliases of the KB entries (so the linker must map aliases to ids),
entities carry their KB ids, and chemical-induced-disease relations are stored at the level of
KB ids, as in BC5CDR. Deterministic for a given seed.

    python scripts/demo_corpus.py assets/demo_kb.jsonl corpus/demo_train.spacy corpus/demo_dev.spacy
"""

import argparse
import random
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import srsly
from spacy.tokens import DocBin

from spacy_entlink.extensions import Relation, install_extensions

# {C}: a chemical, {D}: a disease; CAUSE templates state that C induced D.
CAUSE = [
    "{C} induced {D} in {n} patients.",
    "Treatment with {C} was followed by {D}.",
    "{D} developed after {C} therapy in a {age}-year-old woman.",
    "We report a case of {C}-associated {D}.",
    "{D} is a known adverse effect of {C}.",
    "Rats given {C} at high doses developed {D} within {n} weeks.",
]
OTHER = [
    "Patients with {D} received {C} without complications.",
    "{C} did not cause {D} in this cohort.",
    "{C} is used to treat {D}.",
    "The risk of {D} was similar with and without {C}.",
]
PLAIN = [
    "The study enrolled {n} patients over {n2} months.",
    "Serum levels were measured before and after the first dose.",
    "No other adverse events were reported.",
    "Follow-up lasted {n2} months.",
    "Patients with {D} were excluded.",
]


def mention(entry: Dict, rng: random.Random) -> str:
    names = [entry["name"]] + [a for a in entry.get("aliases", []) if a]
    name = rng.choice(names)
    return name.lower() if rng.random() < 0.3 and not name.isupper() else name


def make_doc(nlp, chems: List[Dict], diseases: List[Dict], rng: random.Random):
    pieces: List[str] = []
    ents: List[Tuple[int, int, str, str]] = []
    rels = set()
    pos = 0
    for _ in range(rng.randint(2, 4)):
        kind = rng.choices(["cause", "other", "plain"], weights=[4, 3, 2])[0]
        template = rng.choice({"cause": CAUSE, "other": OTHER, "plain": PLAIN}[kind])
        chem, dis = rng.choice(chems), rng.choice(diseases)
        text, out, i = "", [], 0
        while i < len(template):  # fill the slots, recording offsets
            if template.startswith("{C}", i) or template.startswith("{D}", i):
                entry = chem if template[i + 1] == "C" else dis
                name = mention(entry, rng)
                if not text and name[0].islower():
                    name = name[0].upper() + name[1:]
                out.append((pos + len(text), pos + len(text) + len(name), entry["type"], entry["id"]))
                text += name
                i += 3
            elif template.startswith("{n}", i) or template.startswith("{n2}", i) or template.startswith("{age}", i):
                slot = template[i:template.index("}", i) + 1]
                text += str(rng.randint(2, 80))
                i += len(slot)
            else:
                text += template[i]
                i += 1
        pieces.append(text)
        ents.extend(out)
        if kind == "cause":
            rels.add((chem["id"], dis["id"]))
        pos += len(text) + 1
    doc = nlp.make_doc(" ".join(pieces))
    spans = [doc.char_span(s, e, label=label, kb_id=kb_id) for s, e, label, kb_id in ents]
    if any(s is None for s in spans):  # e.g. "Cisplatin-associated": align to tokens
        spans = [doc.char_span(s, e, label=label, kb_id=kb_id, alignment_mode="expand") for s, e, label, kb_id in ents]
    doc.ents = spacy.util.filter_spans(spans)
    doc._.entlink_relations = [Relation(c, "CID", d, 1.0) for c, d in sorted(rels)]
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kb", type=Path, help="demo KB JSONL (id, name, aliases, type)")
    ap.add_argument("train", type=Path)
    ap.add_argument("dev", type=Path)
    ap.add_argument("--n-train", type=int, default=240)
    ap.add_argument("--n-dev", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    install_extensions()
    entries = list(srsly.read_jsonl(args.kb))
    chems = [e for e in entries if e.get("type") == "Chemical"]
    diseases = [e for e in entries if e.get("type") == "Disease"]
    if not chems or not diseases:
        raise SystemExit(f"✘ {args.kb}: needs entries of type Chemical and Disease")
    rng = random.Random(args.seed)
    nlp = spacy.blank("en")
    for path, n in ((args.train, args.n_train), (args.dev, args.n_dev)):
        docs = [make_doc(nlp, chems, diseases, rng) for _ in range(n)]
        path.parent.mkdir(parents=True, exist_ok=True)
        DocBin(docs=docs, store_user_data=True).to_disk(path)
        n_rel = sum(len(d._.entlink_relations) for d in docs)
        print(f"✔ {path}: {n} documents, {sum(len(d.ents) for d in docs)} entities, {n_rel} CID relations")


if __name__ == "__main__":
    main()
