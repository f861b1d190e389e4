"""The whole chain on BC5CDR dev: NER F, linking F, CID F and words/second, in one run.

The pipeline (e.g. `training/bc5cdr_all` from the `all` workflow) reads the raw dev texts; its
output is scored against the gold annotations:
  NER        entity P/R/F by offsets and label (`Scorer.score_spans`), per label;
  linking    `Scorer.score_links` semantics (only spans that NER found with the gold offsets and
             label are judged, a wrong id is both a false positive and a false negative), and a
             strict end-to-end F over (offsets, label, KB id) of all predicted and gold entities;
  CID        document-level chemical-induced-disease F by (chemical id, disease id) pairs, and
             what bounds its recall: the share of gold (document, id) pairs per label that the
             pipeline's KBs hold and that its entities found, and the share of gold CID pairs
             with both ids in a KB and with both found; the misses split by whether both ids
             were found, the false positives by whether both ids are gold ids of the document.
Words/second: dev words over the wall time of `nlp.pipe` on the raw texts; a second run, stage
by stage, gives each component's share. For scale: spaCy publishes about
684 words/s on CPU for `en_core_web_trf` (https://spacy.io/usage/facts-figures#benchmarks-speed).

    python bench/pipeline.py --pipeline training/bc5cdr_all --dev corpus/bc5cdr_dev.spacy \\
        --output metrics/bench_pipeline_bc5cdr.json
"""

import argparse
import time
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.scorer import PRFScore, Scorer
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_entlink.scoring import relation_errors, score_relations

from _output import torch_devices, use_gpu, write_json  # bench/_output.py (bench/ is on sys.path when a script runs)


def component_seconds(nlp, texts: List[str], batch_size: int) -> Dict[str, float]:
    """Seconds each component takes when the texts go through the pipeline stage by stage."""
    out: Dict[str, float] = {}
    t = time.perf_counter()
    docs = [nlp.make_doc(text) for text in texts]
    out["tokenizer"] = time.perf_counter() - t
    for name, proc in nlp.pipeline:
        t = time.perf_counter()
        docs = list(proc.pipe(docs, batch_size=batch_size)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
        out[name] = time.perf_counter() - t
    return out


def strict_links(examples: List[Example]) -> Dict[str, float]:
    score = PRFScore()
    for eg in examples:
        gold = {(e.start_char, e.end_char, e.label_, e.kb_id_) for e in eg.reference.ents if e.kb_id_}
        pred = {(e.start_char, e.end_char, e.label_, e.kb_id_) for e in eg.predicted.ents
                if e.kb_id_ and e.kb_id_ != "NIL"}
        score.tp += len(gold & pred)
        score.fp += len(pred - gold)
        score.fn += len(gold - pred)
    return {"p": score.precision, "r": score.recall, "f": score.fscore}


def id_coverage(examples: List[Example], kbs) -> Dict[str, object]:
    """Per label, the share of gold (document, KB id) pairs that some KB of the pipeline holds
    and that the predicted entities found; the share of gold relation pairs with both ids in a
    KB and with both found (a bound on relation recall through the chain)."""
    in_kb = lambda i: any(i in kb for kb in kbs)  # noqa: E731
    per_label: Dict[str, List[int]] = {}
    pairs = [0, 0, 0]
    for eg in examples:
        found = {e.kb_id_ for e in eg.predicted.ents if e.kb_id_}
        gold_ids = {(e.label_, e.kb_id_) for e in eg.reference.ents if e.kb_id_ and e.kb_id_ not in ("-1", "NIL")}
        for label, i in gold_ids:
            c = per_label.setdefault(label, [0, 0, 0])
            c[0] += 1
            c[1] += in_kb(i)
            c[2] += i in found
        for rel in getattr(eg.reference._, "entlink_relations", None) or []:
            if not (isinstance(rel.head, str) and isinstance(rel.tail, str)):
                continue  # relations between spans, not ids
            pairs[0] += 1
            pairs[1] += in_kb(rel.head) and in_kb(rel.tail)
            pairs[2] += rel.head in found and rel.tail in found
    return {"ids": {k: {"gold": n, "in_kb": a / max(1, n), "found": b / max(1, n)} for k, (n, a, b) in per_label.items()},
            "relation_pairs": {"gold": pairs[0], "both_in_kb": pairs[1] / max(1, pairs[0]),
                               "both_found": pairs[2] / max(1, pairs[0])}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True, help=".spacy with gold entities, ids and relations")
    ap.add_argument("--limit", type=int, default=0, help="first N dev documents only")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=20,
                    help="documents run through the pipeline before timing (first-call set-up: kernels, caches)")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes over the dev set; words/s is their median")
    ap.add_argument("--no-shares", dest="shares", action="store_false",
                    help="skip the second, stage-by-stage run that times each component")
    ap.add_argument("--gpu-id", type=int, default=-1, help="run on this GPU, as spacy train's --gpu-id (-1: CPU)")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    for path in (args.pipeline, args.dev):
        if not path.exists():
            ap.error(f"{path} does not exist")
    device = use_gpu(args.gpu_id)

    t = time.perf_counter()
    nlp = spacy.load(args.pipeline)
    load_s = time.perf_counter() - t
    gold = list(DocBin(store_user_data=True).from_disk(args.dev).get_docs(nlp.vocab))
    if args.limit:
        gold = gold[: args.limit]
    words = sum(len(d) for d in gold)
    print(f"{args.pipeline}: {nlp.pipe_names}, loaded in {load_s:.1f} s; {len(gold)} dev docs, {words:,} words")
    devices = torch_devices(nlp)
    print(f"on {device}; torch modules: " + ", ".join(f"{k} {'/'.join(v)}" for k, v in devices.items()))
    linkers = [p for _, p in nlp.pipeline if getattr(p, "linker", None) is not None and hasattr(p.linker, "stats")]
    for p in linkers:
        p.linker.stats.reset()
    if args.warmup:
        list(nlp.pipe((g.text for g in gold[: args.warmup]), batch_size=args.batch_size))
    passes = []
    for _ in range(max(1, args.repeat)):
        for p in linkers:  # stats of the last pass
            p.linker.stats.reset()
        t = time.perf_counter()
        docs = list(nlp.pipe((g.text for g in gold), batch_size=args.batch_size))
        passes.append(time.perf_counter() - t)
        print(f"nlp.pipe: {words / passes[-1]:,.0f} words/s ({passes[-1]:.1f} s)", flush=True)
    total = sorted(passes)[len(passes) // 2]
    link_stats = {}
    for p in linkers:
        st = p.linker.stats
        link_stats = {"mentions": st.mentions, "single_candidate": st.skipped, "scored": st.scored,
                      "generated_over_trie": st.generated, "trie_share": st.trie_s / max(st.total_s, 1e-9)}
        print(f"linker: {st.mentions:,} mentions: {st.skipped:,} single-candidate, {st.scored:,} scored, "
              f"{st.generated:,} generated over the whole trie (no candidate)")
    own = component_seconds(nlp, [g.text for g in gold], args.batch_size) if args.shares else {}
    staged = sum(own.values()) or total
    examples = [Example(d, g) for d, g in zip(docs, gold)]
    ner = Scorer.score_spans(examples, "ents")
    links = Scorer.score_links(examples, negative_labels=[])
    strict = strict_links(examples)
    rel = score_relations(examples)
    kbs = list({id(p.kb): p.kb for _, p in nlp.pipeline if getattr(p, "kb", None) is not None}.values())
    coverage = id_coverage(examples, kbs)
    errors = relation_errors(examples)
    result = {
        "pipeline": str(args.pipeline), "dev": str(args.dev), "docs": len(gold), "words": words,
        "device": device, "torch_devices": devices, "load_s": load_s, "warmup_docs": args.warmup, "seconds": total, "words_per_s": words / total,
        "words_per_s_passes": [words / p for p in passes], "linker": link_stats,
        "component_seconds": own, "component_share": {k: v / staged for k, v in own.items()},
        "ner": {"p": ner["ents_p"], "r": ner["ents_r"], "f": ner["ents_f"], "per_type": ner["ents_per_type"]},
        "links_score_links": {"p": links["nel_micro_p"], "r": links["nel_micro_r"], "f": links["nel_micro_f"]},
        "links_strict": strict,
        "cid": {"p": rel["rel_micro_p"], "r": rel["rel_micro_r"], "f": rel["rel_micro_f"]},
        "id_coverage": coverage, "relation_errors": errors,
    }
    print(f"NER          P {100 * ner['ents_p']:.2f}  R {100 * ner['ents_r']:.2f}  F {100 * ner['ents_f']:.2f}")
    for label, s in sorted(ner["ents_per_type"].items()):
        print(f"  {label:<10} P {100 * s['p']:.2f}  R {100 * s['r']:.2f}  F {100 * s['f']:.2f}")
    print(f"linking      score_links F {100 * links['nel_micro_f']:.2f} (P {100 * links['nel_micro_p']:.2f} "
          f"R {100 * links['nel_micro_r']:.2f}); strict end-to-end F {100 * strict['f']:.2f} "
          f"(P {100 * strict['p']:.2f} R {100 * strict['r']:.2f})")
    print(f"CID          F {100 * rel['rel_micro_f']:.2f} (P {100 * rel['rel_micro_p']:.2f} R {100 * rel['rel_micro_r']:.2f})")
    for label, c in sorted(coverage["ids"].items()):
        print(f"  {label:<10} gold ids per document {c['gold']:,}: {100 * c['in_kb']:.1f} % in a KB of the pipeline, "
              f"{100 * c['found']:.1f} % found")
    cp = coverage["relation_pairs"]
    print(f"  gold CID pairs {cp['gold']:,}: both ids in a KB {100 * cp['both_in_kb']:.1f} %, both found "
          f"{100 * cp['both_found']:.1f} % (bounds on CID recall)")
    e = errors
    print(f"  CID errors: {e['fn']:,} missed ({e['fn_both_ids_found']:,} with both ids found; an id lost: head "
          f"{e['missed_head_id']:,}, tail {e['missed_tail_id']:,}, both {e['missed_both_ids']:,}); {e['fp']:,} false "
          f"({e['fp_both_ids_in_gold']:,} between gold ids, {e['fp_id_outside_gold']:,} with an id outside them)")
    print(f"speed        {words / total:,.0f} words/s (median of {len(passes)} pass(es), {total:.1f} s); "
          + ", ".join(f"{k} {100 * v / staged:.0f} %" for k, v in own.items()))
    write_json(args.output, result)


if __name__ == "__main__":
    main()
