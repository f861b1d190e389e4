"""BC5CDR dev, Chemical + Disease: NER pipelines with and without post-hoc dictionary fusion, one run.

For each trained pipeline (`NAME=PATH`), the dev texts go through `nlp.pipe` once (timed: words/s
on this machine); then the fusion step runs on copies of those docs (timed too, and added):
- a pipeline without a dictionary gets the dictionary pipeline's `entlink_dictionary` (KB and
  exclusions as assembled) appended with `fusion = POLICY`, which matches the KB after `ner`;
- a pipeline with dictionary features (`entlink_dictionary` with fusion "spans_only" before
  `ner`) gets `entlink_fusion` appended, which reuses the candidates already in `doc.spans`.
The dictionary pipeline alone (fusion "dictionary_only") is the first row. Scores are strict
mention P/R/F (exact boundaries and label) per type and overall, from spaCy's `Scorer`, the
same numbers `spacy evaluate` prints.

    python bench/bc5cdr_ner.py --dev corpus/bc5cdr_dev.spacy \
        --dictionary training/bc5cdr_dictionary_all \
        --pipeline cnn=training/ner_cnn/model-best --pipeline trf=training/ner_trf/model-best \
        --pipeline trf_dict=training/ner_trf_dict/model-best \
        --train-time cnn=metrics/train_time_ner_cnn.json ... --output metrics/bench_bc5cdr_ner.json
"""

import argparse
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_entlink.matching.fusion import FUSION_POLICIES
from spacy_entlink.pipeline.fusion import DictionaryFusion

POLICIES = [p for p in FUSION_POLICIES if p not in ("ner_only", "dictionary_only", "spans_only")]


def load_dev(path: Path, nlp: Language, limit: int = 0) -> List[Doc]:
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return docs[:limit] if limit else docs


def scores(preds: Sequence[Doc], golds: Sequence[Doc]) -> Dict[str, object]:
    examples = [Example(p, g) for p, g in zip(preds, golds)]
    s = Scorer.score_spans(examples, "ents")
    row = {"p": s["ents_p"], "r": s["ents_r"], "f": s["ents_f"]}
    for label, v in sorted((s["ents_per_type"] or {}).items()):
        row[label] = {"p": v["p"], "r": v["r"], "f": v["f"]}
    return row


def run(nlp: Language, texts: List[str], batch_size: int) -> Tuple[List[Doc], float]:
    list(nlp.pipe(texts[:8], batch_size=batch_size))  # warm-up (lazy loading, allocations)
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=batch_size))
    return docs, time.perf_counter() - start


def copy_docs(docs: Sequence[Doc]) -> List[Doc]:
    return [Doc(d.vocab).from_bytes(d.to_bytes()) for d in docs]


def fusion_step(nlp: Language, dictionary: Language, policy: str):
    """A callable applying post-hoc fusion to docs `nlp` produced."""
    if "entlink_dictionary" in nlp.pipe_names:
        fuse = DictionaryFusion(nlp, fusion=policy)
        return lambda docs: [fuse(d) for d in docs]
    source = dictionary.get_pipe("entlink_dictionary")
    step = type(source)(nlp.vocab, name="entlink_dictionary", **{**source.cfg, "fusion": policy})
    step.set_kb(source.kb)
    step.excluded = set(source.excluded)
    return lambda docs: [step(d) for d in docs]


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev", type=Path, required=True, help="BC5CDR dev .spacy (gold Chemical/Disease)")
    ap.add_argument("--dictionary", type=Path, required=True, help="assembled dictionary pipeline (KB of both types)")
    ap.add_argument("--pipeline", action="append", default=[], help="NAME=PATH of a trained pipeline (repeatable)")
    ap.add_argument("--train-time", action="append", default=[], help="NAME=JSON written by scripts/timed.py")
    ap.add_argument("--fusion", default="keep_ner", choices=POLICIES, help="policy of the main table")
    ap.add_argument("--all-policies", action="store_true", help="also score every other fusion policy")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--limit", type=int, default=0, help="first N dev docs only (quick checks)")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args(argv)

    pipelines = [p.split("=", 1) for p in args.pipeline]
    if any(len(p) != 2 for p in pipelines):
        ap.error("--pipeline takes NAME=PATH")
    train_times = {}
    for item in args.train_time:
        name, _, path = item.partition("=")
        if Path(path).exists():
            train_times[name] = json.loads(Path(path).read_text())["seconds"]

    dictionary = spacy.load(args.dictionary)
    gold = load_dev(args.dev, dictionary, args.limit)
    texts = [d.text for d in gold]
    n_words = sum(len(d) for d in gold)
    print(f"BC5CDR dev: {len(gold)} docs, {n_words:,} words")
    rows = []

    def add(name: str, docs: Sequence[Doc], seconds: float, train_s: Optional[float]) -> None:
        row = {"system": name, **scores(docs, gold), "words_per_s": n_words / seconds, "train_s": train_s}
        rows.append(row)
        per = "  ".join(f"{k} {row[k]['f'] * 100:5.1f}" for k in ("Chemical", "Disease") if k in row)
        print(f"{name:36s} P {row['p'] * 100:5.1f} R {row['r'] * 100:5.1f} F {row['f'] * 100:5.1f}  {per}  "
              f"{row['words_per_s']:9,.0f} words/s", flush=True)

    docs, seconds = run(dictionary, texts, args.batch_size)
    add("dictionary only (entlink_dictionary)", docs, seconds, None)
    for name, path in pipelines:
        nlp = spacy.load(path)
        docs, seconds = run(nlp, texts, args.batch_size)
        add(name, docs, seconds, train_times.get(name))
        for policy in [args.fusion] + ([p for p in POLICIES if p != args.fusion] if args.all_policies else []):
            step = fusion_step(nlp, dictionary, policy)
            copies = copy_docs(docs)
            start = time.perf_counter()
            fused = step(copies)
            add(f"{name} + fusion ({policy})", fused, seconds + time.perf_counter() - start, train_times.get(name))
        del nlp
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"dev": str(args.dev), "words": n_words, "rows": rows}, indent=2) + "\n")
        print(f"✔ {args.output}")


if __name__ == "__main__":
    main()
