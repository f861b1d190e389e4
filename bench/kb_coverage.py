"""What a KB lets a pipeline link, on a corpus with gold ids: KBs side by side, one row each.

Per entity label, on the documents of DEV:
  ids held           the share of gold (document, id) pairs whose id the KB has (an id a KB lacks
                     can never be linked, whatever the model);
  dictionary id      the share of gold mentions that `entlink_dictionary` (exact, fuzzy and
                     abbreviation matching, fusion `keep_ner`, `assign_kb_id = "unambiguous"`)
                     gives the gold id when the gold spans are given as `doc.ents` without ids:
                     the id the dictionary fusion of a NER pipeline can set.
With document-level relations between ids (BC5CDR CID): the share of gold relations whose two
ids the KB holds, the bound on the relation recall of any chain that links with it.

    python bench/kb_coverage.py --dev corpus/bc5cdr_dev.spacy --kb chain=kb/bc5cdr --kb with-mesh=kb/bc5cdr_mesh \\
        --output metrics/bench_kb_coverage_bc5cdr.json
"""

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_entlink.extensions import Relation  # noqa: F401  (registers doc._.entlink_relations)
from spacy_entlink.kb import KnowledgeBase

from _output import write_json  # bench/_output.py (bench/ is on sys.path when a script runs)


def gold_ids(span: Span) -> List[str]:
    return [i for i in span.kb_id_.split("|") if i and not i.startswith("-")]


def coverage(kb_path: Path, docs: List[Doc]) -> Dict:
    kb = KnowledgeBase.from_disk(kb_path)
    nlp = spacy.blank("en")
    dictionary = nlp.add_pipe("entlink_dictionary", config={"fusion": "keep_ner", "assign_kb_id": "unambiguous"})
    dictionary.set_kb(kb)
    held: Counter = Counter()
    pairs: Counter = Counter()
    assigned: Counter = Counter()
    mentions: Counter = Counter()
    rel_held = rel_total = 0
    t = time.perf_counter()
    for gold in docs:
        seen = set()
        for ent in gold.ents:
            for i in gold_ids(ent):
                if (ent.label_, i) not in seen:
                    seen.add((ent.label_, i))
                    pairs[ent.label_] += 1
                    held[ent.label_] += i in kb
        doc = nlp.make_doc(gold.text)
        linked = [e for e in gold.ents if gold_ids(e)]
        doc.ents = [Span(doc, e.start, e.end, e.label_) for e in linked]
        doc = dictionary(doc)
        got = {(e.start, e.end): e.kb_id_ for e in doc.ents}
        for e in linked:
            mentions[e.label_] += 1
            assigned[e.label_] += got.get((e.start, e.end), "") in gold_ids(e)
        for rel in gold._.entlink_relations:
            if isinstance(rel.head, str) and isinstance(rel.tail, str):
                rel_total += 1
                rel_held += rel.head in kb and rel.tail in kb
    labels = sorted(pairs)
    return {
        "kb": str(kb_path), "entities": len(kb), "seconds": time.perf_counter() - t,
        "ids_held": {lab: held[lab] / pairs[lab] for lab in labels},
        "id_pairs": {lab: pairs[lab] for lab in labels},
        "dictionary_id": {lab: assigned[lab] / mentions[lab] for lab in labels},
        "mentions": {lab: mentions[lab] for lab in labels},
        "relations_both_ids_held": rel_held / rel_total if rel_total else None,
        "relations": rel_total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev", type=Path, required=True, help=".spacy file with gold entity ids (and relations)")
    ap.add_argument("--kb", action="append", required=True, metavar="NAME=PATH", help="a KB folder to measure (repeat)")
    ap.add_argument("--output", type=Path, help="JSON file for the rows")
    args = ap.parse_args()
    kbs: List[Tuple[str, Path]] = []
    for item in args.kb:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            ap.error(f"--kb {item!r}: expected NAME=PATH")
        if not Path(path).exists():
            ap.error(f"--kb {item!r}: {path} does not exist")
        kbs.append((name, Path(path)))
    if not args.dev.exists():
        ap.error(f"--dev: {args.dev} does not exist")
    docs = list(DocBin(store_user_data=True).from_disk(args.dev).get_docs(spacy.blank("en").vocab))
    rows = []
    for name, path in kbs:
        row = {"name": name, **coverage(path, docs)}
        rows.append(row)
        print(f"[{name}] {row['entities']:,} entities; " + "; ".join(
            f"{lab}: ids held {100 * row['ids_held'][lab]:.1f} % of {row['id_pairs'][lab]:,}, dictionary id "
            f"{100 * row['dictionary_id'][lab]:.1f} % of {row['mentions'][lab]:,} mentions" for lab in row["ids_held"])
            + (f"; relations with both ids held {100 * row['relations_both_ids_held']:.1f} % of {row['relations']:,}"
               if row["relations"] else ""), flush=True)
    labels = sorted({lab for r in rows for lab in r["ids_held"]})
    print("\n| KB | entities | " + " | ".join(f"{lab} ids held | {lab} dictionary id" for lab in labels)
          + " | relations, both ids held |")
    print("|---|---:|" + "---:|---:|" * len(labels) + "---:|")
    for r in rows:
        cells = [f"{100 * r['ids_held'].get(lab, 0):.1f} % | {100 * r['dictionary_id'].get(lab, 0):.1f} %" for lab in labels]
        rel = f"{100 * r['relations_both_ids_held']:.1f} %" if r["relations"] else ""
        print(f"| {r['name']} | {r['entities']:,} | " + " | ".join(cells) + f" | {rel} |")
    if args.output:
        write_json(args.output, {"dev": str(args.dev), "rows": rows})


if __name__ == "__main__":
    main()
