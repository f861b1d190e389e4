"""Relation extraction on a dev set: entlink_relations beside a pairwise baseline.

Systems, all on the same dev documents:
  reader, gold entities   the trained `entlink_relations` pipeline relating the gold entities
  reader, end to end      the same pipeline finding the entities itself (`entities = "predict"`)
  NER pipeline + reader   with `--ner NAME PIPELINE`: an upstream NER pipeline (e.g. spacy-transformers
                          `ner`) sets the entities from the raw text, the reader relates them
                          (end to end; the NER's time is counted in words/s)
  pairwise baseline       in the style of spaCy's relation-extraction tutorial: the same encoder
                          (default the embedded MiniLM) runs over the text, each entity is the
                          mean of its wordpiece vectors, and every ordered entity pair is one
                          instance, [head; tail; head*tail] -> MLP -> one sigmoid per relation
                          type; trained here on the same training data. Evaluated with gold
                          entities and with the reader's predicted entities (end to end).
                          Inference in `--baseline-precision` (default "auto", as the reader:
                          bfloat16 on CPUs with AMX/AVX512-BF16).
  per-pair baseline       with `--per-pair`: one encoder pass per candidate pair, the design of
                          typed-entity-marker relation classifiers (PURE, Zhong & Chen 2021): the
                          text with typed markers around the head and the tail ("<H:Peop> ...
                          </H>"), the hidden states at the two opening markers -> linear -> one
                          sigmoid per relation type; same encoder, trained here on the same
                          ordered pairs of gold entities; the speed that a one-pass reader saves.
  encoder floor           the baseline's encoder alone over the dev texts (tokenisation and
                          forward pass, same batches and precision, no heads): the speed no
                          system that runs this encoder once over each text can beat.
Every system batches texts (the per-pair baseline: marked pairs) of similar length together, as the
reader batches its windows.
Strict micro F1: head and tail offsets and entity types and the relation label must match.
Words/second counts dev words over the wall time of each system's prediction on this CPU. With
`--speed-repeats N` the rows the speed claims compare (each reader with gold entities, the
per-pair baseline with gold entities, the encoder floor) are timed again after every task has run,
in N rounds that interleave them (a disturbance of the shared machine hits them alike), and
their fastest round counts (F is that of the first pass: predictions repeat); `--speed-for` names
the tasks whose rows take part (default: all). A table of each reader's multiple of the per-pair
baseline and of the floor follows.

    python bench/relations.py --fit-thresholds \\
        --task conll04 training/relations_conll04/model-best corpus/conll04_train.spacy corpus/conll04_dev.spacy \\
        --task cid training/relations_cid/model-best corpus/bc5cdr_train.spacy corpus/bc5cdr_dev.spacy \\
        --output metrics/bench_relations.json
"""

import argparse
import json
import random
import time
from pathlib import Path
from typing import Dict, List, Sequence

import spacy
import torch
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from torch import nn
from tqdm import tqdm

from spacy_entlink.extensions import Relation
from spacy_entlink.models.hf import inference_precision, resolve_model_name
from spacy_entlink.scoring import score_relations

from _output import torch_devices, use_gpu  # bench/_output.py (bench/ is on sys.path when a script runs)


class PairwiseBaseline(nn.Module):
    def __init__(self, name: str, labels: Sequence[str], hidden: int = 256):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_name(name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path)
        self.labels = list(labels)
        size = self.encoder.config.hidden_size
        self.mlp = nn.Sequential(nn.Linear(3 * size, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, len(labels)))

    def forward(self, docs: Sequence[Doc]) -> List[torch.Tensor]:
        words = [[t.text for t in d] or ["."] for d in docs]
        enc = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=512, padding=True,
                             return_tensors="pt")
        hidden = self.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        out = []
        for b, doc in enumerate(docs):
            pieces: Dict[int, List[int]] = {}
            for pos, w in enumerate(enc.word_ids(b)):
                if w is not None:
                    pieces.setdefault(w, []).append(pos)
            vecs = []
            for e in doc.ents:
                pos = [p for i in range(e.start, e.end) for p in pieces.get(i, [])] or [0]
                vecs.append(hidden[b, pos].mean(0))
            if len(vecs) < 2:
                out.append(hidden.new_zeros((len(vecs), len(vecs), len(self.labels))))
                continue
            v = torch.stack(vecs)
            n = len(vecs)
            h, t = v[:, None, :].expand(n, n, -1), v[None, :, :].expand(n, n, -1)
            out.append(self.mlp(torch.cat([h, t, h * t], dim=-1)))  # one classification per ordered pair
        return out


def gold_targets(doc: Doc, labels: Sequence[str]) -> torch.Tensor:
    """[n, n, labels] targets over ordered pairs of `doc.ents`; a document-level relation
    between KB ids marks every pair of mentions of the two ids."""
    index = {(e.start, e.end): i for i, e in enumerate(doc.ents)}
    by_id: Dict[str, List[int]] = {}
    for i, e in enumerate(doc.ents):
        if e.kb_id_:
            by_id.setdefault(e.kb_id_, []).append(i)
    n = len(doc.ents)
    y = torch.zeros((n, n, len(labels)))
    for r in doc._.entlink_relations:
        if r.label not in labels:
            continue
        k = labels.index(r.label)
        if isinstance(r.head, Span):
            i, j = index.get((r.head.start, r.head.end)), index.get((r.tail.start, r.tail.end))
            if i is not None and j is not None:
                y[i, j, k] = 1.0
        else:
            for i in by_id.get(r.head, ()):
                for j in by_id.get(r.tail, ()):
                    y[i, j, k] = 1.0
    return y


def _step(model: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, bar) -> None:
    """One optimiser step of a baseline (gradients clipped to norm 1)."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    bar.set_postfix(loss=f"{float(loss.detach()):.3f}")


def train_baseline(model: PairwiseBaseline, docs: List[Doc], epochs: int, batch: int, lr: float) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    model.train()
    steps = epochs * ((len(docs) + batch - 1) // batch)
    bar = tqdm(total=steps, desc="pairwise baseline", unit="step")
    for _ in range(epochs):
        random.shuffle(docs)
        for i in range(0, len(docs), batch):
            part = docs[i : i + batch]
            losses = []
            for logits, d in zip(model(part), part):
                if logits.shape[0] > 1:
                    off = ~torch.eye(logits.shape[0], dtype=torch.bool)
                    losses.append(nn.functional.binary_cross_entropy_with_logits(logits[off], gold_targets(d, model.labels)[off]))
            if losses:
                _step(model, opt, torch.stack(losses).mean(), bar)
            bar.update(1)
    bar.close()
    model.eval()
    return time.perf_counter() - t0


def _keep(rels: Dict[tuple, float], ents: List[Span], a: int, b: int, label: str, prob: float,
          allowed: Dict, aggregate: str) -> None:
    """Record relation `label` from entity a to entity b in `rels` (best probability per key)
    unless the label's entity types rule it out; keyed by mention pair, or with
    `aggregate="kb_id"` by (head id, label, tail id) for linked, distinct ids only."""
    if label in allowed and not allowed[label].allows(ents[a].label_, ents[b].label_):
        return
    if aggregate == "kb_id":
        if not ents[a].kb_id_ or not ents[b].kb_id_ or ents[a].kb_id_ == ents[b].kb_id_:
            return
        key: tuple = (ents[a].kb_id_, label, ents[b].kb_id_)
    else:
        key = (ents[a], label, ents[b])
    rels[key] = max(prob, rels.get(key, 0.0))


@torch.no_grad()
def baseline_predict(model: PairwiseBaseline, docs: List[Doc], threshold: float, types: Sequence = (),
                     aggregate: str = "mention", batch: int = 16) -> None:
    """Relations above `threshold` for every ordered entity pair, within the relation types'
    head/tail entity types (as the reader's `type_constraints`); with `aggregate="kb_id"` the
    best mention pair per (head id, label, tail id), as the reader aggregates."""
    allowed = {t.name: t for t in types}
    docs = by_length(docs)
    for i in range(0, len(docs), batch):
        part = docs[i : i + batch]
        for logits, d in zip(model(part), part):
            probs = torch.sigmoid(logits)
            ents = list(d.ents)
            rels: Dict[tuple, float] = {}
            for a, b, k in torch.nonzero(probs >= threshold).tolist():
                if a != b:
                    _keep(rels, ents, a, b, model.labels[k], float(probs[a, b, k]), allowed, aggregate)
            d._.entlink_relations = [Relation(h, label, t, p) for (h, label, t), p in rels.items()]


def timed(run, make_input):
    """`run(make_input())` and its seconds (the input is made outside the timing)."""
    x = make_input()
    t = time.perf_counter()
    out = run(x)
    return out, time.perf_counter() - t


def interleaved_speed(entries: List[Dict], rounds: int) -> None:
    """Time every entry's `run(make_input())` once per round, the entries in turn, and set its
    row's words/s from its fastest round (the pass that made the row, timed while its task ran,
    is kept as `words_per_s_in_task`)."""
    best = [float("inf")] * len(entries)
    for k in range(rounds):
        for i, e in enumerate(entries):
            _, seconds = timed(e["run"], e["make_input"])
            best[i] = min(best[i], seconds)
            e.setdefault("rounds", []).append(e["words"] / seconds)
        print(f"speed round {k + 1}: " + ", ".join(f"{e['row']['task']}/{e['row']['system']} {e['rounds'][-1]:,.0f}"
                                                 for e in entries) + " words/s", flush=True)
    for e, seconds in zip(entries, best):
        e["row"]["words_per_s_in_task"] = e["row"]["words_per_s"]
        e["row"]["words_per_s"] = e["words"] / seconds
        e["row"]["words_per_s_rounds"] = e["rounds"]
        e["row"]["speed"] = f"fastest of {rounds} interleaved rounds"


def by_length(docs: Sequence[Doc]) -> List[Doc]:
    """`docs` shortest first: batches of similar lengths pad less (the reader batches its windows so)."""
    return sorted(docs, key=len)


@torch.no_grad()
def encoder_floor(model: PairwiseBaseline, docs: List[Doc], batch: int = 16) -> float:
    """Seconds to tokenise and encode `docs` with the baseline's encoder alone (its batch size,
    texts of similar length batched together)."""
    t = time.perf_counter()
    docs = by_length(docs)
    for i in range(0, len(docs), batch):
        words = [[tok.text for tok in d] or ["."] for d in docs[i : i + batch]]
        enc = model.tokenizer(words, is_split_into_words=True, truncation=True, max_length=512, padding=True,
                              return_tensors="pt")
        model.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return time.perf_counter() - t


class PerPairBaseline(nn.Module):
    """One encoder pass per ordered entity pair, the pair marked by typed entity markers."""

    def __init__(self, name: str, labels: Sequence[str], entity_types: Sequence[str]):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_name(name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path)
        self.labels = list(labels)
        self.types = sorted(set(entity_types))
        markers = [f"<{r}:{t}>" for r in "HT" for t in self.types] + ["</H>", "</T>"]
        self.tokenizer.add_special_tokens({"additional_special_tokens": markers})
        self.encoder.resize_token_embeddings(len(self.tokenizer))
        self.marker_ids = {m: self.tokenizer.convert_tokens_to_ids(m) for m in markers}
        size = self.encoder.config.hidden_size
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(2 * size, len(self.labels)))

    def marked(self, doc: Doc, a: int, b: int) -> List[str]:
        """The words of `doc` with typed markers around entity a (head) and entity b (tail)."""
        ents = list(doc.ents)
        h, t = ents[a], ents[b]
        before: Dict[int, List[str]] = {}
        after: Dict[int, List[str]] = {}
        for role, e in (("H", h), ("T", t)):
            label = e.label_ if e.label_ in self.types else self.types[0]
            before.setdefault(e.start, []).append(f"<{role}:{label}>")
            after.setdefault(e.end - 1, []).append(f"</{role}>")
        words: List[str] = []
        for i, tok in enumerate(doc):
            words += before.get(i, []) + [tok.text] + after.get(i, [])
        return words

    def forward(self, batch: Sequence[tuple]) -> torch.Tensor:
        """Logits [pairs, labels] for (doc, head index, tail index) triples."""
        words = [self.marked(d, a, b) for d, a, b in batch]
        enc = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=512, padding=True,
                             return_tensors="pt")
        hidden = self.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        ids = enc["input_ids"]
        opening = torch.tensor([[self.marker_ids[f"<{r}:{t}>"] for t in self.types] for r in "HT"])
        vecs = []
        for k in range(len(batch)):
            pos = []
            for r in range(2):  # the first opening marker of each role (0 where truncated away)
                where = torch.nonzero(torch.isin(ids[k], opening[r])).flatten()
                pos.append(int(where[0]) if len(where) else 0)
            vecs.append(torch.cat([hidden[k, pos[0]], hidden[k, pos[1]]]))
        return self.head(torch.stack(vecs))


def ordered_pairs(docs: Sequence[Doc]) -> List[tuple]:
    return [(d, a, b) for d in docs for a in range(len(d.ents)) for b in range(len(d.ents)) if a != b]


def train_per_pair(model: PerPairBaseline, docs: List[Doc], epochs: int, batch: int, lr: float) -> float:
    """Binary cross-entropy over every ordered pair of gold entities of the training docs."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    pairs = ordered_pairs(docs)
    targets = {id(d): gold_targets(d, model.labels) for d in docs}
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(total=epochs * ((len(pairs) + batch - 1) // batch), desc="per-pair baseline", unit="step")
    for _ in range(epochs):
        random.shuffle(pairs)
        for i in range(0, len(pairs), batch):
            part = pairs[i : i + batch]
            y = torch.stack([targets[id(d)][a, b] for d, a, b in part])
            _step(model, opt, nn.functional.binary_cross_entropy_with_logits(model(part), y), bar)
            bar.update(1)
    bar.close()
    model.eval()
    return time.perf_counter() - t0


@torch.no_grad()
def per_pair_predict(model: PerPairBaseline, docs: List[Doc], threshold: float, types: Sequence = (),
                     aggregate: str = "mention", batch: int = 32) -> None:
    """As `baseline_predict`, every candidate pair through its own encoder pass (pairs the
    relation types' entity types rule out are not encoded at all)."""
    allowed = {t.name: t for t in types}

    def possible(d: Doc, a: int, b: int) -> bool:
        ents = d.ents
        return not allowed or any(t.allows(ents[a].label_, ents[b].label_) for t in allowed.values())

    pairs = sorted((p for p in ordered_pairs(docs) if possible(*p)), key=lambda p: len(p[0]))  # similar lengths batched
    found: Dict[int, Dict[tuple, float]] = {id(d): {} for d in docs}
    for i in range(0, len(pairs), batch):
        part = pairs[i : i + batch]
        probs = torch.sigmoid(model(part).float())
        for (d, a, b), p in zip(part, probs):
            ents = list(d.ents)
            for k in torch.nonzero(p >= threshold).flatten().tolist():
                _keep(found[id(d)], ents, a, b, model.labels[k], float(p[k]), allowed, aggregate)
    for d in docs:
        d._.entlink_relations = [Relation(h, label, t, p) for (h, label, t), p in found[id(d)].items()]


def with_ents(doc: Doc, ents) -> Doc:
    out = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
    spans = [out.char_span(e.start_char, e.end_char, label=e.label_, kb_id=e.kb_id_, alignment_mode="expand")
             for e in ents]  # by characters: `ents` may come from another tokenisation of the text
    out.ents = [s for s in spacy.util.filter_spans([s for s in spans if s is not None])]
    return out


def arguments_found(gold: Sequence[Doc], docs: Sequence[Doc]) -> float:
    """Share of the gold relations whose head and tail are both among `docs`' entities, with the
    same boundaries and label: the recall an end-to-end system on those entities cannot pass."""
    found = total = 0
    for g, d in zip(gold, docs):
        ents = {(e.start_char, e.end_char, e.label_) for e in d.ents}
        for rel in g._.entlink_relations:
            total += 1
            found += all((a.start_char, a.end_char, a.label_) in ents for a in (rel.head, rel.tail))
    return found / max(total, 1)


def speed_multiples(rows: List[Dict]) -> List[Dict]:
    """Each interleaved reader row's words/s as a multiple of the per-pair baseline's and of the
    encoder floor's (empty without both)."""
    per_pair = [r for r in rows if r["system"] == "per-pair baseline, gold entities"]
    floor = [r for r in rows if r["system"].startswith("encoder floor")]
    if not per_pair or not floor:
        return []
    return [{"task": r["task"], "rel_f": r["rel_f"], "words_per_s": r["words_per_s"],
             "x_per_pair": r["words_per_s"] / per_pair[0]["words_per_s"], "per_pair_f": per_pair[0]["rel_f"],
             "x_floor": r["words_per_s"] / floor[0]["words_per_s"]}
            for r in rows if r["system"] == "reader, gold entities"]


def run_task(name: str, pipeline: Path, train: Path, dev: Path, args, speed: List[Dict]) -> List[Dict]:
    """All systems of one dataset, on its dev documents, one after another in this process."""
    nlp = spacy.load(pipeline)
    print(f"{name}: torch modules on " + ", ".join(f"{k} {'/'.join(v)}" for k, v in torch_devices(nlp).items()))
    rel = next(p for _, p in nlp.pipeline if type(p).__name__ == "RelationExtractor")
    gold = list(DocBin(store_user_data=True).from_disk(dev).get_docs(nlp.vocab))
    words = sum(len(d) for d in gold)
    print(f"[{name}] {len(gold)} dev docs, {words:,} words, "
          f"{sum(len(d._.entlink_relations) for d in gold):,} gold relations")
    rows: List[Dict] = []

    def add(system: str, docs: List[Doc], seconds: float, **extra) -> None:
        s = score_relations([Example(d, g) for d, g in zip(docs, gold)])
        row = {"task": name, "system": system, "rel_f": s["rel_micro_f"], "rel_p": s["rel_micro_p"],
               "rel_r": s["rel_micro_r"], "ents_f": s["ents_f"], "words_per_s": words / seconds,
               "per_type": s["rel_f_per_type"], **extra}
        rows.append(row)
        print(f"[{name}] {system:<40} rel F {100 * row['rel_f']:6.2f} (P {100 * row['rel_p']:5.1f} "
              f"R {100 * row['rel_r']:5.1f})  ents F {100 * (row['ents_f'] or 0):6.2f}  {row['words_per_s']:8,.0f} words/s")

    mode = rel.cfg["entities"]
    timing = args.speed_repeats > 1 and (args.speed_for is None or name in args.speed_for)

    def again(run, make_input) -> None:
        """Time the row just added again in the interleaved rounds (`--speed-repeats`)."""
        if timing:
            speed.append({"row": rows[-1], "run": run, "make_input": make_input, "words": words})
    predicted_ents = None
    ner_ents, ner_s = None, 0.0
    if args.ner.get(name):  # an upstream NER pipeline finds the entities; the reader relates them
        ner = spacy.load(args.ner[name])
        t = time.perf_counter()
        ner_ents = [list(d.ents) for d in ner.pipe(g.text for g in gold)]
        ner_s = time.perf_counter() - t
    for suffix in ("", ", per-label thresholds fitted on dev") if args.fit_thresholds else ("",):
        if suffix:
            rel.cfg["entities"] = mode
            fitted = rel.fit_thresholds([Example(nlp.make_doc(g.text), g) for g in gold])
            print(f"[{name}] thresholds fitted on dev: {fitted}")
        rel.cfg["entities"] = "doc"

        def read(ds: List[Doc]) -> List[Doc]:
            was, rel.cfg["entities"] = rel.cfg["entities"], "doc"
            try:
                return list(nlp.pipe(ds))
            finally:
                rel.cfg["entities"] = was

        def gold_docs() -> List[Doc]:
            return [with_ents(d, d.ents) for d in gold]

        docs, seconds = timed(read, gold_docs)
        add("reader, gold entities" + suffix, docs, seconds)
        if not suffix:
            again(read, gold_docs)
        if ner_ents is not None:
            docs = [with_ents(d, ents) for d, ents in zip(gold, ner_ents)]
            found = arguments_found(gold, docs)
            t = time.perf_counter()
            docs = list(nlp.pipe(docs))
            add("NER pipeline + reader, end to end" + suffix, docs, ner_s + time.perf_counter() - t,
                arguments_found=found)
            if not suffix:
                print(f"[{name}] the NER finds both arguments, exactly and with their labels, of "
                      f"{100 * found:.2f}% of the gold relations")
        if mode == "predict":
            rel.cfg["entities"] = "predict"
            docs = [nlp.make_doc(d.text) for d in gold]
            t = time.perf_counter()
            docs = list(nlp.pipe(docs))
            add("reader, end to end" + suffix, docs, time.perf_counter() - t)
            if not suffix:
                predicted_ents = [list(d.ents) for d in docs]
    if args.fit_thresholds:
        # the same fitting, honestly measured: thresholds fitted on half of the dev documents,
        # applied to the other half, both ways, pooled
        order = list(range(len(gold)))
        random.Random(0).shuffle(order)
        folds = [sorted(order[0::2]), sorted(order[1::2])]
        sources = [("reader, gold entities", [list(d.ents) for d in gold])]
        if ner_ents is not None:
            sources.append(("NER pipeline + reader, end to end", ner_ents))
        for system, ents in sources:
            out: List = [None] * len(gold)
            seconds = 0.0
            for k in (0, 1):
                rel.cfg["entities"] = mode
                rel.fit_thresholds([Example(nlp.make_doc(gold[i].text), gold[i]) for i in folds[1 - k]])
                rel.cfg["entities"] = "doc"
                t = time.perf_counter()
                for i, d in zip(folds[k], nlp.pipe([with_ents(gold[i], ents[i]) for i in folds[k]])):
                    out[i] = d
                seconds += time.perf_counter() - t
            add(system + ", per-label thresholds 2-fold cross-fitted on dev", out,
                seconds + (ner_s if system.startswith("NER") else 0.0))
    rel.cfg["entities"] = mode
    if not args.skip_baseline and (args.baseline_for is None or name in args.baseline_for):
        aggregate = rel.cfg.get("aggregate", "mention")
        types = rel.types if rel.cfg.get("type_constraints", True) else ()
        train_docs = list(DocBin(store_user_data=True).from_disk(train).get_docs(nlp.vocab))
        model = PairwiseBaseline(args.baseline_model, list(rel.labels))
        train_s = train_baseline(model, train_docs, args.baseline_epochs, batch=8, lr=5e-5)
        docs = [with_ents(d, d.ents) for d in gold]
        with inference_precision(args.baseline_precision, torch.device("cpu")):
            t = time.perf_counter()
            baseline_predict(model, docs, 0.5, types, aggregate)
            add("pairwise baseline, gold entities", docs, time.perf_counter() - t, train_s=train_s)
            if predicted_ents is not None:
                docs = [with_ents(d, ents) for d, ents in zip(gold, predicted_ents)]
                t = time.perf_counter()
                baseline_predict(model, docs, 0.5, types, aggregate)
                add("pairwise baseline, reader's entities", docs, time.perf_counter() - t)
            if ner_ents is not None:
                docs = [with_ents(d, ents) for d, ents in zip(gold, ner_ents)]
                t = time.perf_counter()
                baseline_predict(model, docs, 0.5, types, aggregate)
                add("NER pipeline + pairwise baseline, end to end", docs, ner_s + time.perf_counter() - t)
            floor_s = encoder_floor(model, gold)
        rows.append({"task": name, "system": "encoder floor (baseline's encoder alone, no heads)", "rel_f": None,
                     "rel_p": None, "rel_r": None, "ents_f": None, "words_per_s": words / floor_s})

        def floor(_) -> None:
            with inference_precision(args.baseline_precision, torch.device("cpu")):
                encoder_floor(model, gold)

        again(floor, lambda: None)
        print(f"[{name}] {'encoder floor (no heads)':<40} {'':>44} {words / floor_s:8,.0f} words/s")
    if name in args.per_pair:
        aggregate = rel.cfg.get("aggregate", "mention")
        types = rel.types if rel.cfg.get("type_constraints", True) else ()
        train_docs = list(DocBin(store_user_data=True).from_disk(train).get_docs(nlp.vocab))
        entity_types = [e.label_ for d in train_docs for e in d.ents]
        torch.manual_seed(0)
        model = PerPairBaseline(args.baseline_model, list(rel.labels), entity_types)
        train_s = train_per_pair(model, train_docs, args.per_pair_epochs, batch=16, lr=5e-5)
        with inference_precision(args.baseline_precision, torch.device("cpu")):
            for system, ents in [("gold entities", [list(d.ents) for d in gold])] + (
                    [("NER pipeline's entities, end to end", ner_ents)] if ner_ents is not None else []):
                def run(ds: List[Doc]) -> List[Doc]:
                    with inference_precision(args.baseline_precision, torch.device("cpu")):
                        per_pair_predict(model, ds, 0.5, types, aggregate)
                    return ds

                def marked(ents=ents) -> List[Doc]:
                    return [with_ents(d, e) for d, e in zip(gold, ents)]

                docs, seconds = timed(run, marked)
                add(f"per-pair baseline, {system}", docs, seconds + (ner_s if "NER" in system else 0.0),
                    train_s=train_s, pairs=len(ordered_pairs(docs)))
                if system == "gold entities":
                    again(run, marked)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", nargs=4, action="append", default=[], metavar=("NAME", "PIPELINE", "TRAIN", "DEV"),
                    help="a dataset to run (repeat for several, e.g. conll04 and cid in one run)")
    ap.add_argument("--pipeline", type=Path, help="pipeline with a trained entlink_relations (single task)")
    ap.add_argument("--train", type=Path)
    ap.add_argument("--dev", type=Path)
    ap.add_argument("--baseline-epochs", type=int, default=5)
    ap.add_argument("--baseline-model", default="", help="encoder of the baseline (empty: embedded MiniLM)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--baseline-for", nargs="+", default=None, metavar="NAME",
                    help="train and run the pooled-vector baseline and the encoder floor for these tasks only "
                         "(default: every task; the floor of one task serves the others with its encoder and dev set)")
    ap.add_argument("--per-pair", nargs="+", default=[], metavar="NAME",
                    help="for these tasks also train and run the per-pair baseline (one encoder pass per pair; "
                         "sentence-level data: a document-level task makes hundreds of 512-piece passes per document)")
    ap.add_argument("--per-pair-epochs", type=int, default=1,
                    help="epochs over the ordered gold pairs (1: ~15 min for CoNLL04 on a 2-core CPU)")
    ap.add_argument("--baseline-precision", default="auto", choices=["float32", "bfloat16", "auto"],
                    help="inference precision of the baseline (the reader uses its component setting)")
    ap.add_argument("--speed-repeats", type=int, default=1,
                    help="after all tasks, time the readers (gold entities), the per-pair baseline (gold entities) "
                         "and the encoder floor again in this many interleaved rounds; the fastest round counts "
                         "(1, the default: no rounds, each row's one pass counts)")
    ap.add_argument("--speed-for", nargs="+", default=None, metavar="NAME",
                    help="apply --speed-repeats to these tasks only (default: every task)")
    ap.add_argument("--fit-thresholds", action="store_true",
                    help="also report the reader with per-label thresholds fitted on this dev set (optimistic)")
    ap.add_argument("--ner", nargs=2, action="append", default=[], metavar=("NAME", "PIPELINE"),
                    help="for task NAME, also relate the entities an NER pipeline finds in the raw text "
                         "(end to end; its time is counted)")
    ap.add_argument("--gpu-id", type=int, default=-1,
                    help="run the pipelines on this GPU, as spacy train's --gpu-id (the baselines need --skip-baseline)")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    if args.speed_repeats < 1:
        ap.error(f"--speed-repeats {args.speed_repeats}: must be at least 1")
    if args.gpu_id >= 0 and (not args.skip_baseline or args.per_pair):
        ap.error("--gpu-id: the baselines and the encoder floor run on the CPU; add --skip-baseline, drop --per-pair")
    use_gpu(args.gpu_id)
    tasks = [(n, Path(p), Path(t), Path(d)) for n, p, t, d in args.task]
    for n, p in args.ner:
        if not Path(p).exists():
            ap.error(f"--ner {n}: {p} does not exist")
    args.ner = dict(args.ner)
    if args.pipeline is not None:
        if args.train is None or args.dev is None:
            ap.error("--pipeline needs --train and --dev")
        tasks.append(("relations", args.pipeline, args.train, args.dev))
    if not tasks:
        ap.error("give --task NAME PIPELINE TRAIN DEV (repeatable) or --pipeline/--train/--dev")
    for name, *paths in tasks:
        for path in paths:
            if not path.exists():
                ap.error(f"{name}: {path} does not exist")
    names = {n for n, *_ in tasks}
    for option, given in (("--baseline-for", args.baseline_for or []), ("--speed-for", args.speed_for or []),
                          ("--per-pair", args.per_pair), ("--ner", args.ner)):
        for n in given:
            if n not in names:
                ap.error(f"{option} {n}: no --task of that name (tasks: {', '.join(sorted(names))})")
    rows: List[Dict] = []
    speed: List[Dict] = []
    for name, pipeline, train, dev in tasks:
        torch.manual_seed(0)
        random.seed(0)
        rows += run_task(name, pipeline, train, dev, args, speed)
    if speed:
        interleaved_speed(speed, args.speed_repeats)
    print("\n| task | system | rel F | P | R | ents F | words/s |\n|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["rel_f"] is None:
            print(f"| {r['task']} | {r['system']} | | | | | {r['words_per_s']:,.0f} |")
            continue
        ents = "(gold)" if "gold entities" in r["system"] else f"{100 * (r['ents_f'] or 0):.2f}"
        print(f"| {r['task']} | {r['system']} | {100 * r['rel_f']:.2f} | {100 * r['rel_p']:.1f} | "
              f"{100 * r['rel_r']:.1f} | {ents} | {r['words_per_s']:,.0f} |")
    multiples = speed_multiples([e["row"] for e in speed])
    if multiples:
        print("\n| reader (gold entities) | rel F | words/s | × per-pair baseline (F) | × encoder floor |\n|---|---:|---:|---:|---:|")
        for m in multiples:
            print(f"| {m['task']} | {100 * m['rel_f']:.2f} | {m['words_per_s']:,.0f} | {m['x_per_pair']:.2f} "
                  f"({100 * m['per_pair_f']:.2f}) | {m['x_floor']:.2f} |")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"tasks": [[n, str(p), str(t), str(d)] for n, p, t, d in tasks],
                                           "rows": rows, "speed_multiples": multiples}, indent=2))
        print(f"✔ {args.output}")


if __name__ == "__main__":
    main()
