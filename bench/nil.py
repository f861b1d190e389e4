"""NIL: a linker asked about entities its KB does not have.

A share (`--remove`, default 10 %) of the distinct gold entities of the dev mentions is taken
out of the linker's KB (drawn at random with `--seed`); the KB is rebuilt without them (same
normaliser settings, adjectival keys and fuzzy index) and set on the linker, which rebuilds its
name trie and dense index. Every dev mention is then linked with the linker's calibration:

- NIL precision: of the mentions the linker calls NIL, the share whose entity was removed;
- NIL recall: of the mentions of removed entities, the share called NIL;
- accuracy@1 on the other mentions (a NIL answer counts as wrong), beside the same linker's
  accuracy@1 on them with the full KB (NIL answers also wrong) and with NIL switched off.

    python bench/nil.py --linker training/linker_zs_cal --dev corpus/bc5cdr_dev_disease.spacy \
        --labels Disease --output metrics/bench_nil_bc5cdr_zs.json
"""

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import spacy
from spacy.training import Corpus

from spacy_entlink.corpora.registry import with_gold_mentions
from spacy_entlink.linking.train import gold_mentions

from _output import write_json  # bench/_output.py (bench/ is on sys.path when a script runs)


def decide(linker, spans, ranked) -> List[Tuple[str, bool]]:
    """Per span: (top id or "", called NIL?) with the linker's calibration and threshold."""
    return [(top[0][0] if top else "", linker.is_nil(top, p_nil)) for top, p_nil in linker.span_links(spans, ranked)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--linker", type=Path, required=True, help="pipeline with an entlink_linker (calibrated with NIL)")
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--labels", nargs="*", default=None)
    ap.add_argument("--remove", type=float, default=0.1, help="share of the dev gold entities removed from the KB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()

    nlp = spacy.load(args.linker)
    linker = next(p for _, p in nlp.pipeline if type(p).__name__ == "GenreLinker")
    if linker.calibration.nil_score is None and linker.cfg.get("threshold") is None:
        raise SystemExit(f"{args.linker}: the linker has neither a NIL calibration nor a threshold "
                         "(calibrate-linker with --nil)")
    kb = linker.kb
    dev = [with_gold_mentions(eg) for eg in Corpus(args.dev)(nlp)]
    mentions = [(s, kb.get_id(kb.row_of(g))) for s, g in gold_mentions(dev, args.labels) if kb.row_of(g) is not None]
    spans = [s for s, _ in mentions]
    gold = [g for _, g in mentions]
    entities = sorted(set(gold))
    removed = set(random.Random(args.seed).sample(entities, round(args.remove * len(entities))))
    is_out = [g in removed for g in gold]
    print(f"{len(mentions):,} dev mentions of {len(entities):,} entities; {len(removed):,} entities removed "
          f"({sum(is_out):,} mentions)")

    t = time.perf_counter()
    full = decide(linker, spans, linker.rank_spans(spans))
    full_s = time.perf_counter() - t
    rest = [m for m, out in enumerate(is_out) if not out]

    def acc(found: Sequence[Tuple[str, bool]], idx: Sequence[int], nil: bool = True) -> float:
        return sum(1 for m in idx if found[m][0] == gold[m] and not (nil and found[m][1])) / max(len(idx), 1)

    result: Dict = {"dev": str(args.dev), "linker": str(args.linker), "mentions": len(mentions),
                    "entities": len(entities), "removed_entities": len(removed), "removed_mentions": sum(is_out),
                    "calibration": linker.calibration.to_dict(), "threshold": linker.cfg.get("threshold"),
                    "full_kb": {"acc_rest_with_nil": acc(full, rest), "acc_rest_no_nil": acc(full, rest, nil=False),
                                "nil_answers": sum(1 for _, n in full if n), "mentions_per_s": len(spans) / full_s}}
    with tempfile.TemporaryDirectory() as tmp:
        small = kb.without(removed, Path(tmp) / "kb", progress=True)
        t = time.perf_counter()
        linker.set_kb(small, progress=True)
        result["set_kb_s"] = time.perf_counter() - t
        t = time.perf_counter()
        found = decide(linker, spans, linker.rank_spans(spans))
        secs = time.perf_counter() - t
    called = [m for m, (_, n) in enumerate(found) if n]
    true_nil = sum(1 for m in called if is_out[m])
    result["reduced_kb"] = {
        "nil_precision": true_nil / max(len(called), 1), "nil_recall": true_nil / max(sum(is_out), 1),
        "nil_answers": len(called), "acc_rest_with_nil": acc(found, rest), "acc_rest_no_nil": acc(found, rest, nil=False),
        "mentions_per_s": len(spans) / secs}
    r, f = result["reduced_kb"], result["full_kb"]
    print(f"full KB:    accuracy@1 on the kept entities' mentions {100 * f['acc_rest_with_nil']:.2f} "
          f"(NIL off: {100 * f['acc_rest_no_nil']:.2f}); {f['nil_answers']:,} NIL answers")
    print(f"reduced KB: NIL precision {100 * r['nil_precision']:.2f}, recall {100 * r['nil_recall']:.2f} "
          f"({r['nil_answers']:,} NIL answers); accuracy@1 on the rest {100 * r['acc_rest_with_nil']:.2f} "
          f"(NIL off: {100 * r['acc_rest_no_nil']:.2f}); {r['mentions_per_s']:.0f} mentions/s")
    write_json(args.output, result)


if __name__ == "__main__":
    main()
