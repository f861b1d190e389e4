"""Entity linking on gold mentions, side by side on the same mentions, in one run.

BC5CDR dev Disease normalisation against CTD MEDIC (accuracy@1 over gold mentions with one
MeSH id; composite and `-1` mentions left out), for:
  (a) exact   the KB's alias table after normalisation (canonical-name matches first);
  (b) fuzzy   rapidfuzz nearest KB name/alias (`process.extractOne`, `fuzz.ratio`) over all keys;
  (c) prior   the most frequent entity in the training data among the first linker's candidates;
  (d) spacy   spaCy's `entity_linker` (CNN tok2vec, `InMemoryLookupKB` with the same alias keys,
              priors from training counts, entity vectors = MiniLM embeddings of the names),
              trained on the same training documents;
  (e) genre   this package's `entlink_linker` (one row per `--linker` pipeline: e.g. zero-shot and supervised);
  (f) dense   the nearest KB name in an encoder's space (`--retrievers`: the embedded MiniLM, a trained retriever).
Throughput (mentions/s on this CPU) and the share of the linker's time spent in the name trie
are printed for (e). Every row is also split by whether the mention's normalised text occurs among
the training mentions ("seen") or not ("unseen"): on another corpus most mentions are unseen, so
the unseen accuracy is the one that carries over.

    python bench/linking.py --kb kb/medic_train --train corpus/bc5cdr_train_disease.spacy \
        --dev corpus/bc5cdr_dev_disease.spacy --labels Disease --linker training/linker_bc5cdr \
        --output metrics/bench_linking_bc5cdr.json
"""

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import spacy
from spacy.tokens import Span
from spacy.training import Corpus, Example
from spacy.util import registry

from spacy_entlink.corpora.registry import with_gold_mentions
from spacy_entlink.kb import KnowledgeBase
from spacy_entlink.linking.dense import SentenceEncoder
from spacy_entlink.linking.train import accuracy, gold_mentions, link_gold_mentions

from _output import torch_devices, use_gpu  # bench/_output.py (bench/ is on sys.path when a script runs)

_NORMALIZE = {}


def _alias_of(span) -> str:
    """The alias spaCy's KB is asked for: the span's supplied candidate list when it has one
    (added to the KB as one alias), else the normalised text."""
    cands = span._.entlink_candidates
    return "\x00".join(cands) if cands else _NORMALIZE["f"](span.text)


@registry.misc("bench.NormalizedCandidates.v1")
def normalized_candidates():
    def get(kb, span):
        return kb.get_alias_candidates(_alias_of(span))
    return get


@registry.misc("bench.NormalizedCandidatesBatch.v1")
def normalized_candidates_batch():
    def get(kb, spans):
        return [kb.get_alias_candidates(_alias_of(s)) for s in spans]
    return get


def exact(kb: KnowledgeBase, spans: Sequence[Span]) -> List[List[Tuple[str, float]]]:
    out = []
    for s in spans:
        c = kb.get_candidates(s.text)
        out.append([(c[0].id, 1.0)] if c else [])
    return out


def fuzzy(kb: KnowledgeBase, spans: Sequence[Span]) -> List[List[Tuple[str, float]]]:
    from rapidfuzz import fuzz, process

    keys = list(kb._keys.keys())
    rows = [kb._keys[k] for k in keys]
    out = []
    for s in spans:
        hit = process.extractOne(kb.normalize(s.text), keys, scorer=fuzz.ratio)
        if hit is None:
            out.append([])
            continue
        ents = kb.alias_entities(rows[hit[2]])
        out.append([(kb.get_id(int(ents[0])), hit[1] / 100)] if len(ents) else [])
    return out


def prior(kb: KnowledgeBase, linker, spans: Sequence[Span], counts: Counter) -> List[List[Tuple[str, float]]]:
    """The candidate with the highest prior: training-mention count, else the KB's prior."""
    out = []
    kb = linker.kb  # the rows are the linker's
    for s, rows in zip(spans, linker.candidate_rows_batch(spans)):
        rows = rows or []
        ids = [kb.get_id(r) for r in rows]
        key = {i: (counts[i], kb.get_prior(r), -k) for k, (i, r) in enumerate(zip(ids, rows))}
        out.append([(max(ids, key=key.__getitem__), 1.0)] if ids else [])
    return out


def retriever(kb: KnowledgeBase, encoder: str, spans: Sequence[Span]) -> Tuple[List[List[Tuple[str, float]]], float]:
    """The entity of the nearest KB name in `encoder`'s space (a defined short form searched by
    its long form), and the seconds the index took to build."""
    import tempfile

    from spacy_entlink.candidates import AbbreviationCache
    from spacy_entlink.linking.dense import DenseIndex

    abbreviations = AbbreviationCache()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index = DenseIndex.build(kb, Path(tmp) / "dense", SentenceEncoder(encoder or None), progress=True)
        build_s = time.perf_counter() - t
        found = index.search_scored([abbreviations.expanded(s) for s in spans], k=1)
    return [[(kb.get_id(r), score) for r, score in hits] for hits in found], build_s


def name_vectors(kb: KnowledgeBase) -> np.ndarray:
    """MiniLM sentence embeddings (mean pooling) of every canonical name."""
    return SentenceEncoder().encode([kb.get_name(r) for r in range(len(kb))])


def spacy_el(kb: KnowledgeBase, train: List[Example], dev: List[Example], counts: Counter, epochs: int, seed: int):
    """spaCy's entity_linker with an InMemoryLookupKB holding the same alias keys."""
    from spacy.kb import InMemoryLookupKB

    nlp = spacy.blank("en")
    _NORMALIZE["f"] = kb.normalize
    t0 = time.perf_counter()
    vectors = name_vectors(kb)
    sk = InMemoryLookupKB(nlp.vocab, entity_vector_length=vectors.shape[1])
    ids = [kb.get_id(r) for r in range(len(kb))]
    sk.set_entities(ids, [float(counts[i] + 1) for i in ids], list(vectors))

    def weight(i: str) -> float:
        return counts[i] + 1.0 + kb.get_prior(kb.row_of(i))

    def add(alias: str, ents: List[str]) -> None:
        ents = [e for e in dict.fromkeys(ents) if e in kb]
        if ents and not sk.contains_alias(alias):
            w = np.array([weight(i) for i in ents])
            sk.add_alias(alias=alias, entities=ents, probabilities=list(w / w.sum() * 0.999))

    for key, row in kb._keys.items():
        add(key, [kb.get_id(int(r)) for r in kb.alias_entities(row)])
    for eg in list(train) + list(dev):  # supplied candidate lists (AIDA), one alias each
        for ent in eg.reference.ents:
            if ent._.entlink_candidates:
                add("\x00".join(ent._.entlink_candidates), ent._.entlink_candidates)
    build_s = time.perf_counter() - t0
    senter = nlp.add_pipe("sentencizer")
    for eg in train:  # spaCy's entity_linker reads sentence boundaries
        senter(eg.predicted)
        senter(eg.reference)
    el = nlp.add_pipe("entity_linker", config={
        "use_gold_ents": True, "incl_prior": True, "incl_context": True,
        "get_candidates": {"@misc": "bench.NormalizedCandidates.v1"},
        "get_candidates_batch": {"@misc": "bench.NormalizedCandidatesBatch.v1"},
    })
    el.set_kb(lambda vocab: sk)
    nlp.initialize(lambda: train)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        egs = list(train)
        rng.shuffle(egs)
        losses = {}
        for i in range(0, len(egs), 8):
            nlp.update(egs[i : i + 8], losses=losses, drop=0.1)
        print(f"  spaCy entity_linker epoch {epoch + 1}/{epochs}: loss {losses.get('entity_linker', 0):.2f}")
    return nlp, build_s, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kb", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--labels", nargs="*", default=None)
    ap.add_argument("--linker", nargs="+", required=True,
                    help="pipelines with an entlink_linker, each as PATH or LABEL=PATH (one row (e) each)")
    ap.add_argument("--retrievers", nargs="*", default=[],
                    help="encoders whose nearest KB name is a row (f) each ('' = the embedded MiniLM as it ships, "
                         "or a train-retriever folder / Hugging Face name)")
    ap.add_argument("--retriever-kb", type=Path, default=None, help="KB the retrievers search (default --kb)")
    ap.add_argument("--spacy-epochs", type=int, default=5)
    ap.add_argument("--skip-spacy", action="store_true")
    ap.add_argument("--candidates", default=None, help="override the linker's candidate sources (comma-separated)")
    ap.add_argument("--limit", type=int, default=0, help="first N dev mentions only")
    ap.add_argument("--gold-in-candidates", action="store_true",
                    help="keep only mentions whose gold id is among their supplied candidates (AIDA in-KB)")
    ap.add_argument("--precision", nargs="+", default=["auto"], choices=["float32", "bfloat16", "auto"],
                    help="run (e) once per inference precision")
    ap.add_argument("--full-trie", type=int, default=0,
                    help="also link the first N mentions without candidates (beam search over the whole trie)")
    ap.add_argument("--gpu-id", type=int, default=-1, help="run on this GPU, as spacy train's --gpu-id (-1: CPU)")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    use_gpu(args.gpu_id)

    linkers = []
    for spec in args.linker:
        label, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        l_nlp = spacy.load(path)
        print(f"{path}: torch modules on " + ", ".join(f"{k} {'/'.join(v)}" for k, v in torch_devices(l_nlp).items()))
        pipe = next(p for _, p in l_nlp.pipeline if type(p).__name__ == "GenreLinker")
        if args.candidates is not None:
            pipe.set_candidates([c for c in args.candidates.split(",") if c], progress=True)
        linkers.append((label or path, path, pipe))
    nlp = spacy.blank("en")
    linker = linkers[0][2]
    kb = KnowledgeBase.from_disk(args.kb)
    train = list(Corpus(args.train)(nlp))
    dev = [with_gold_mentions(eg) for eg in Corpus(args.dev)(nlp)]
    mentions = gold_mentions(dev, args.labels)
    if args.gold_in_candidates:
        mentions = [(s, g) for s, g in mentions if g in (s._.entlink_candidates or [])]
    if args.limit:
        mentions = mentions[: args.limit]
    gold = [g for _, g in mentions]
    spans = [s for s, _ in mentions]
    train_mentions = gold_mentions(train, args.labels)
    counts = Counter(g for _, g in train_mentions)
    seen_texts = {kb.normalize(s.text) for s, _ in train_mentions}
    by_text = {"seen": [], "unseen": []}  # dev mention indices
    for i, s in enumerate(spans):
        by_text["seen" if kb.normalize(s.text) in seen_texts else "unseen"].append(i)
    print(f"{len(by_text['seen']):,} of {len(spans):,} dev mentions have a text seen among the training mentions, "
          f"{len(by_text['unseen']):,} unseen")
    coverages, unseen_coverages = {}, {}
    for label, _, pipe in linkers:
        limit = int(pipe.linker.settings.max_candidates or 0) or None
        hits = [g in {pipe.kb.get_id(r) for r in (found or [])[:limit]}
                for g, found in zip(gold, pipe.candidate_rows_batch(spans))]
        coverages[label] = sum(hits) / len(gold)
        unseen_coverages[label] = sum(hits[i] for i in by_text["unseen"]) / max(1, len(by_text["unseen"]))
        print(f"{len(mentions):,} dev mentions; gold among {label}'s scored candidates (at most {limit}) for "
              f"{100 * coverages[label]:.2f}% (unseen mention texts: {100 * unseen_coverages[label]:.2f}%)")
    coverage = coverages[linkers[0][0]] * len(gold)
    rows = []

    def add(name: str, ranked, seconds: float, **extra) -> None:
        acc = accuracy(ranked, gold)
        split = {}
        for key, idx in by_text.items():
            split[f"acc_{key}"] = accuracy([ranked[i] for i in idx], [gold[i] for i in idx]) if idx else None
            split[f"n_{key}"] = len(idx)
        rows.append({"system": name, "acc": acc, "mentions_per_s": len(gold) / seconds, **split, **extra})
        parts = "   ".join(f"{key} {100 * split[f'acc_{key}']:6.2f}" for key in by_text if split[f"acc_{key}"] is not None)
        print(f"{name:<34} accuracy@1 {100 * acc:6.2f}   {len(gold) / seconds:10,.0f} mentions/s   {parts}")

    for name, fn in (("(a) exact alias lookup", lambda: exact(kb, spans)),
                     ("(b) rapidfuzz nearest name", lambda: fuzzy(kb, spans)),
                     ("(c) prior (most frequent candidate)", lambda: prior(kb, linker, spans, counts))):
        t = time.perf_counter()
        ranked = fn()
        add(name, ranked, time.perf_counter() - t)
    if not args.skip_spacy:
        el_nlp, build_s, train_s = spacy_el(kb, train, dev, counts, args.spacy_epochs, seed=0)
        docs = [eg.predicted for eg in dev]
        t = time.perf_counter()
        docs = list(el_nlp.pipe(docs))
        secs = time.perf_counter() - t
        pred = {(d_i, e.start, e.end): e.kb_id_ for d_i, d in enumerate(docs) for e in d.ents}
        index = {id(eg.reference): i for i, eg in enumerate(dev)}
        ranked = [[(pred.get((index[id(s.doc)], s.start, s.end), ""), 1.0)] for s in spans]
        add("(d) spaCy entity_linker", ranked, secs, kb_build_s=build_s, train_s=train_s)
    r_kb = KnowledgeBase.from_disk(args.retriever_kb) if args.retriever_kb else kb
    for encoder in args.retrievers:
        t = time.perf_counter()
        ranked, build_s = retriever(r_kb, encoder, spans)
        label = f"(f) nearest name, {encoder or 'all-MiniLM-L6-v2 (embedded, untrained)'}"
        add(label, ranked, time.perf_counter() - t - build_s, index_build_s=build_s, kb=str(r_kb.path))
    for name, path, pipe in linkers:
        seq2seq = pipe.linker.seq2seq
        for precision in args.precision:
            pipe.set_precision(precision)
            label = f"(e) entlink_linker {name}, {str(seq2seq.inference_dtype).replace('torch.', '')}"
            pipe.linker.stats.reset()
            t = time.perf_counter()
            ranked = link_gold_mentions(pipe, mentions)
            secs = time.perf_counter() - t
            st = pipe.linker.stats
            add(label, ranked, secs, trie_share=st.trie_s / max(st.total_s, 1e-9), pipeline=path,
                kb=str(pipe.kb.path), candidate_recall=coverages[name],
                candidate_recall_unseen=unseen_coverages[name],
                skipped=st.skipped, scored=st.scored, generated=st.generated)
            print(f"    linker: {st.skipped} single-candidate, {st.scored} scored, {st.generated} generated over "
                  f"the trie; trie share of linker time {100 * st.trie_s / max(st.total_s, 1e-9):.2f}%; gold among "
                  f"the scored candidates {100 * coverages[name]:.2f}%")
    if args.full_trie:
        part = mentions[: args.full_trie]
        linker.linker.stats.reset()
        t = time.perf_counter()
        ranked = link_gold_mentions(linker, part, candidates=[None] * len(part))
        secs = time.perf_counter() - t
        st = linker.linker.stats
        acc = accuracy(ranked, gold[: len(part)])
        rows.append({"system": "(e) full-trie beam search", "acc": acc, "mentions": len(part),
                     "mentions_per_s": len(part) / secs, "trie_share": st.trie_s / max(st.total_s, 1e-9),
                     "beam_size": linker.linker.settings.beam_size})
        print(f"{'(e) full-trie beam search':<34} accuracy@1 {100 * acc:6.2f}   {len(part) / secs:10,.1f} mentions/s "
              f"({len(part)} mentions, beam {linker.linker.settings.beam_size}; trie share "
              f"{100 * st.trie_s / max(st.total_s, 1e-9):.2f}%)")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"dev": str(args.dev), "kb": str(args.kb), "mentions": len(gold),
                                           "candidate_coverage": coverage / len(gold), "rows": rows}, indent=2))
        print(f"✔ {args.output}")


if __name__ == "__main__":
    main()
