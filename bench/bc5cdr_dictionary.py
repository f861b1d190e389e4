"""BC5CDR dev, Disease: the MEDIC dictionary matcher beside spaCy's PhraseMatcher, one run.

Reports strict mention P/R/F (exact character boundaries), normalisation accuracy on the
true-positive mentions (predicted id among the gold ids; composite mentions count any part),
linked P/R/F (boundaries and id right) and words/second, for:
  PhraseMatcher(attr="LOWER") + longest-span filter over the same MEDIC names and synonyms,
  entlink_dictionary exact; + fuzzy; + abbreviations; exact + abbreviations;
  + alias exclusions tuned on BC5CDR *train* (never on dev);
  MEDIC with adjectival variants of names; and MEDIC (+ adjectives) plus BC5CDR *train*
  gold mention texts as extra aliases; the first and last also without the surface rule (an
  ambiguous span's own text naming one candidate), as before it.

    python bench/bc5cdr_dictionary.py --data ../shared/data --kb kb/medic --output metrics/bench.json
"""

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import spacy
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import filter_spans

from spacy_entlink.corpora.pubtator import read_pubtator
from spacy_entlink.kb import KnowledgeBase, read_source
from spacy_entlink.kb.sources import aliases_from_docs

Gold = Dict[Tuple[int, int], List[str]]  # (start_char, end_char) -> gold id parts


def gold_mentions(doc: Doc) -> Gold:
    spans = doc.spans["entlink_gold"] if "entlink_gold" in doc.spans else doc.ents
    return {(s.start_char, s.end_char): [p for p in s.kb_id_.split("|") if p] for s in spans}


def evaluate(preds: Sequence[List[Span]], golds: Sequence[Gold]) -> Dict[str, float]:
    tp = fp = fn = norm_ok = linked_ok = n_with_id = 0
    for pred, gold in zip(preds, golds):
        seen = set()
        for span in pred:
            key = (span.start_char, span.end_char)
            if key in gold and key not in seen:
                tp += 1
                seen.add(key)
                if gold[key]:
                    n_with_id += 1
                    if span.kb_id_ in gold[key]:
                        norm_ok += 1
                        linked_ok += 1
            else:
                fp += 1
        fn += len(gold) - len(seen)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    lp = linked_ok / (tp + fp) if tp + fp else 0.0
    lr = linked_ok / (tp + fn) if tp + fn else 0.0
    lf = 2 * lp * lr / (lp + lr) if lp + lr else 0.0
    return {"p": p, "r": r, "f": f, "norm_acc": norm_ok / n_with_id if n_with_id else 0.0,
            "linked_p": lp, "linked_r": lr, "linked_f": lf, "tp": tp, "fp": fp, "fn": fn}


def timed(fn: Callable[[Doc], List[Span]], docs: Sequence[Doc]) -> Tuple[List[List[Span]], float]:
    for d in docs[:5]:
        fn(d.copy())  # warm-up
    start = time.perf_counter()
    out = [fn(d) for d in docs]
    return out, time.perf_counter() - start


def phrase_matcher(nlp, kb: KnowledgeBase) -> Callable[[Doc], List[Span]]:
    matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
    names, ids = [], []
    for row in range(len(kb)):
        eid = kb.get_id(row)
        for name in [kb.get_name(row)] + kb.get_aliases(row):
            names.append(name)
            ids.append(eid)
    for eid, pattern in zip(ids, nlp.tokenizer.pipe(names, batch_size=1000)):
        matcher.add(eid, [pattern])

    def run(doc: Doc) -> List[Span]:
        spans = [Span(doc, s, e, label="Disease", kb_id=nlp.vocab.strings[m]) for m, s, e in matcher(doc)]
        return filter_spans(spans)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--kb", type=Path, default=Path("kb/medic"))
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()

    if not (args.kb / "meta.json").exists():
        print(f"building the MEDIC KB at {args.kb}")
        KnowledgeBase.build(read_source(args.data / "ctd_medic" / "CTD_diseases.tsv.gz", "medic", "Disease"),
                            args.kb, progress=True)
    kb = KnowledgeBase.from_disk(args.kb)
    nlp = spacy.blank("en")
    bc = args.data / "bc5cdr"
    dev = list(read_pubtator(bc / "CDR_DevelopmentSet.PubTator.txt", nlp, types=["Disease"]))
    train = list(read_pubtator(bc / "CDR_TrainingSet.PubTator.txt", nlp, types=["Disease"]))
    golds = [gold_mentions(d) for d in dev]
    texts = [nlp.make_doc(d.text) for d in dev]
    n_words = sum(sum(1 for t in d if not t.is_space) for d in texts)
    print(f"BC5CDR dev: {len(dev)} docs, {n_words:,} words, {sum(len(g) for g in golds):,} Disease mentions; "
          f"KB: {len(kb):,} entities, {kb.n_aliases:,} keys")

    results: Dict[str, Dict[str, float]] = {}

    def record(name: str, fn: Callable[[Doc], List[Span]]) -> None:
        preds, secs = timed(fn, [t.copy() for t in texts])
        res = evaluate(preds, golds)
        res["words_per_s"] = n_words / secs
        results[name] = res

    t0 = time.perf_counter()
    pm = phrase_matcher(nlp, kb)
    print(f"PhraseMatcher built in {time.perf_counter() - t0:.1f} s")
    record("PhraseMatcher(LOWER) + longest", pm)

    def run(name: str, kb_: KnowledgeBase, tune: bool = False, surface: bool = True, **cfg) -> None:
        comp_nlp = spacy.blank("en")
        comp = comp_nlp.add_pipe("entlink_dictionary", config={"fusion": "dictionary_only", "default_label": "Disease", **cfg})
        comp.set_kb(kb_)
        if not surface:  # ambiguous spans resolved by one sense per discourse only (before the surface rule)
            comp._surfaces = lambda kb_id: frozenset()
        excluded = comp.tune(train_examples, min_precision=0.3, min_count=3) if tune else None
        record(name, lambda d: list(comp(d).ents))
        if excluded is not None:
            results[name]["n_excluded"] = len(excluded)

    train_examples = [Example(nlp.make_doc(d.text), d) for d in train]
    run("exact (warm-up, not reported)", kb, fuzzy=False, abbreviations=False)
    del results["exact (warm-up, not reported)"]
    run("exact", kb, fuzzy=False, abbreviations=False)
    run("exact, without the surface rule", kb, surface=False, fuzzy=False, abbreviations=False)
    run("exact + fuzzy", kb, fuzzy=True, abbreviations=False)
    run("exact + abbreviations", kb, fuzzy=False, abbreviations=True)
    run("exact + fuzzy + abbreviations", kb, fuzzy=True, abbreviations=True)
    run("exact + abbreviations + tuned exclusions", kb, tune=True, fuzzy=False)
    run("exact + fuzzy + abbreviations + tuned exclusions", kb, tune=True, fuzzy=True)
    run("… + tuned exclusions, assign_kb_id=top", kb, tune=True, fuzzy=True, assign_kb_id="top")

    medic = args.data / "ctd_medic" / "CTD_diseases.tsv.gz"
    # MEDIC with adjectival variants of its names (hypertension -> hypertensive).
    adj = KnowledgeBase.build(read_source(medic, "medic", "Disease"), args.kb.parent / (args.kb.name + "_adjectives"),
                              adjectives=True)
    run("MEDIC + adjectives, exact + abbreviations + tuned", adj, tune=True, fuzzy=False)
    run("MEDIC + adjectives, exact + fuzzy + abbreviations + tuned", adj, tune=True, fuzzy=True)
    # MEDIC + adjectives + the mention texts of BC5CDR *train* gold entities as aliases.
    plus = KnowledgeBase.build(read_source(medic, "medic", "Disease"), args.kb.parent / (args.kb.name + "_train_aliases"),
                               extra_aliases=aliases_from_docs(train), adjectives=True)
    run("MEDIC + train aliases, exact + abbreviations + tuned", plus, tune=True, fuzzy=False)
    run("MEDIC + train aliases, exact + fuzzy + abbreviations + tuned", plus, tune=True, fuzzy=True)
    run("… the same without the surface rule", plus, tune=True, surface=False, fuzzy=True)

    header = f"{'system':52} {'P':>6} {'R':>6} {'F':>6} {'norm acc':>9} {'linked F':>9} {'words/s':>10}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(f"{name:52} {r['p']:6.3f} {r['r']:6.3f} {r['f']:6.3f} {r['norm_acc']:9.3f} {r['linked_f']:9.3f} {r['words_per_s']:10,.0f}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
