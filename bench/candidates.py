"""Candidate generation alone on gold mentions: how often the gold entity is among a mention's
candidates (the ceiling of any linker that ranks them), how many candidates, how fast.

Each `--sources` entry is one row: comma-separated candidate sources as the linker's
`candidates` setting, run in order by the linker's own `CandidateGenerator`; `dense:K` sets the
dense sources' number of entities for that row. The dense index (the encoder's embeddings of
every KB name) is built once (`--dense-model`; empty = the embedded MiniLM), or read from
`--dense-index` when that folder exists (it is written there otherwise).

    python bench/candidates.py --kb kb/medic --dev corpus/bc5cdr_dev_disease.spacy --labels Disease \
        --sources kb,abbreviation,fuzzy kb,abbreviation,fuzzy,dense:8 kb,abbreviation,fuzzy,dense:16,ancestors \
        --output metrics/bench_candidates_bc5cdr_zs.json
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import spacy
from spacy.training import Corpus

from spacy_entlink.candidates import CandidateGenerator
from spacy_entlink.kb import KnowledgeBase
from spacy_entlink.linking.dense import DenseIndex, SentenceEncoder
from spacy_entlink.linking.train import gold_mentions

from _output import write_json  # bench/_output.py (bench/ is on sys.path when a script runs)


def parse_sources(spec: str):
    sources, dense_k = [], 8
    for part in spec.split(","):
        name, _, k = part.partition(":")
        if k:
            dense_k = int(k)
        sources.append(name)
    return sources, dense_k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kb", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--labels", nargs="*", default=None)
    ap.add_argument("--sources", nargs="+", required=True, help="one row each: comma-separated sources, dense:K")
    ap.add_argument("--dense-model", default="", help='encoder of the dense index ("" = embedded MiniLM)')
    ap.add_argument("--dense-index", type=Path, default=None, help="read (or write) the dense index here")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()

    kb = KnowledgeBase.from_disk(args.kb)
    nlp = spacy.blank("en")
    mentions = gold_mentions(Corpus(args.dev)(nlp), args.labels)
    spans = [s for s, _ in mentions]
    gold = [kb.row_of(g) for _, g in mentions]
    if not spans:
        raise SystemExit(f"{args.dev}: no gold mentions with one id" + (f" and labels {args.labels}" if args.labels else ""))
    print(f"{len(spans):,} gold mentions ({sum(g is None for g in gold)} with an id missing from the KB); "
          f"KB {args.kb}: {len(kb):,} entities, hierarchy: {kb.has_hierarchy}")
    dense = None
    build_s = None
    if any("dense" in s for s in args.sources):
        if args.dense_index is not None and (args.dense_index / "meta.json").exists():
            dense = DenseIndex(args.dense_index)
        else:
            folder = args.dense_index or Path(tempfile.mkdtemp()) / "dense"
            t = time.perf_counter()
            dense = DenseIndex.build(kb, folder, SentenceEncoder(args.dense_model or None), progress=True)
            build_s = round(time.perf_counter() - t, 1)
    rows = []
    for spec in args.sources:
        sources, dense_k = parse_sources(spec)
        gen = CandidateGenerator(kb, sources, dense=dense, dense_k=dense_k)
        t = time.perf_counter()
        found = gen(spans)
        seconds = time.perf_counter() - t
        sizes = [len(f) for f in found]
        hit = sum(1 for f, g in zip(found, gold) if g is not None and g in f)
        row = {"sources": spec, "recall": hit / len(spans), "mean_candidates": statistics.fmean(sizes),
               "median_candidates": statistics.median(sizes), "max_candidates": max(sizes),
               "no_candidate": sum(1 for s in sizes if s == 0), "mentions_per_s": round(len(spans) / seconds, 1)}
        rows.append(row)
        print(f"{spec:<55} recall {100 * row['recall']:6.2f} %  candidates mean {row['mean_candidates']:5.1f} "
              f"median {row['median_candidates']:4.0f} max {row['max_candidates']:3d}  none {row['no_candidate']:4d}  "
              f"{row['mentions_per_s']:8,.0f} mentions/s")
    write_json(args.output, {"kb": str(args.kb), "dev": str(args.dev), "mentions": len(spans),
                             "dense_model": args.dense_model or "all-MiniLM-L6-v2 (embedded)",
                             "dense_index_build_s": build_s, "rows": rows})


if __name__ == "__main__":
    main()
