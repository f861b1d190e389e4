"""`python -m spacy_entlink …`: build-kb, convert, annotate, visualize, train-retriever, train-linker, calibrate-linker,
calibrate-relations."""

import sys
from pathlib import Path
from typing import List, Optional

import srsly
import typer

from .errors import ConfigError, EntlinkError
from .files import atomic_file

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def use_gpu(gpu_id: int) -> None:
    """Run on GPU `gpu_id` as `spacy train --gpu-id` does (-1: stay on the CPU)."""
    if gpu_id < 0:
        return
    import spacy

    try:
        spacy.require_gpu(gpu_id)
    except Exception as err:  # cupy missing, no CUDA device, ...
        raise EntlinkError(f"--gpu-id {gpu_id}: no usable GPU ({err}); install cupy for your CUDA "
                           "(e.g. pip install cupy-cuda12x) or drop --gpu-id") from None


@app.command("build-kb")
def build_kb(
    inputs: List[Path] = typer.Argument(..., help="KB source files (MEDIC TSV[.gz], JSONL, CSV, popularity TSV)"),
    output: Path = typer.Option(..., "--output", "-o", help="KB folder to write"),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="medic, jsonl, csv, popularity or obo (guessed if omitted)"),
    type: Optional[str] = typer.Option(None, "--type", "-t", help="entity type for sources without one (MEDIC: Disease)"),
    fuzzy: bool = typer.Option(True, "--fuzzy/--no-fuzzy", help="build the trigram index for fuzzy matching"),
    acronym_max_len: int = typer.Option(5, help="all-caps words up to this many letters keep their case"),
    fold_plurals: bool = typer.Option(True, "--fold-plurals/--no-fold-plurals", help="fold plural -s/-es/-ies"),
    name: str = typer.Option("", help="a name stored in the KB's meta.json"),
    adjectives: bool = typer.Option(
        False, "--adjectives/--no-adjectives", help="also key names by adjectival forms (hypertension -> hypertensive)"
    ),
    extra_aliases: Optional[List[Path]] = typer.Option(
        None, "--extra-aliases", help='JSONL of {"id", "aliases"} adding aliases to entities (repeatable)'
    ),
    exclude_aliases: Optional[Path] = typer.Option(
        None, "--exclude-aliases", help='JSONL of {"id", "text"} aliases to leave out (e.g. a retriever\'s holdout.jsonl)'
    ),
    merge: bool = typer.Option(
        False, "--merge-duplicates/--no-merge-duplicates",
        help="an id given again (e.g. by a second source) adds its names, aliases and parents to the first record instead of being an error",
    ),
) -> None:
    """Build a knowledge base folder from one or more source files."""
    import itertools

    from .kb import KnowledgeBase, read_alias_file, read_source
    from .kb.sources import merge_duplicates, read_exclusions, without_aliases
    from .text import NormalizerConfig

    records = itertools.chain.from_iterable(read_source(p, format, type) for p in inputs)
    if merge:
        records = merge_duplicates(records)
    if exclude_aliases is not None:
        records = without_aliases(records, read_exclusions(exclude_aliases))
    extra = itertools.chain.from_iterable(read_alias_file(p) for p in extra_aliases) if extra_aliases else None
    cfg = NormalizerConfig(acronym_max_len=acronym_max_len, fold_plurals=fold_plurals)
    kb = KnowledgeBase.build(records, output, normalizer=cfg, fuzzy_index=fuzzy, progress=True, name=name,
                             extra_aliases=extra, adjectives=adjectives)
    typer.echo(
        f"✔ {output}: {len(kb):,} entities, {kb.meta['n_aliases']:,} aliases, "
        f"{kb.n_aliases:,} distinct normalised keys, {kb.meta['build_seconds']} s"
    )


@app.command("convert")
def convert(
    input: Path = typer.Argument(..., help="corpus file"),
    output: Path = typer.Argument(..., help=".spacy file to write"),
    format: str = typer.Option(..., "--format", "-f", help="pubtator, conll04, aida, conll2003 or prodigy"),
    types: Optional[List[str]] = typer.Option(None, "--types", help="keep only these entity types (repeatable)"),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="AIDA candidates JSONL"),
    lang: str = typer.Option("en", help="language of the tokenizer for raw-text formats"),
) -> None:
    """Convert a corpus to a spaCy DocBin (.spacy), keeping ids and relations."""
    from .corpora.convert import convert as run_convert

    options = {}
    if types:
        options["types"] = list(types)
    if candidates is not None:
        options["candidates"] = candidates
    stats = run_convert(input, output, format, nlp_lang=lang, **options)
    typer.echo(f"✔ {output}: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in stats.items()))


@app.command("split-corpus")
def split_corpus(
    corpus: Path = typer.Argument(..., help=".spacy file to split by document"),
    rest: Path = typer.Argument(..., help=".spacy file for the documents kept (e.g. the linker's training part)"),
    held: Path = typer.Argument(..., help=".spacy file for the held-out documents (e.g. for calibration)"),
    share: float = typer.Option(0.1, help="share of the documents held out"),
    seed: int = typer.Option(0, help="seed of the random draw"),
) -> None:
    """Split a corpus into two by document at random: a held-out part of train on which to fit
    calibrations and thresholds, so that nothing is fitted on the documents a result is
    reported on."""
    import random

    import spacy
    from spacy.tokens import DocBin

    if not corpus.exists():
        raise EntlinkError(f"{corpus}: file not found")
    if not 0.0 < share < 1.0:
        raise EntlinkError(f"--share must be between 0 and 1, got {share}")
    nlp = spacy.blank("en")
    docs = list(DocBin(store_user_data=True).from_disk(corpus).get_docs(nlp.vocab))
    if len(docs) < 2:
        raise EntlinkError(f"{corpus}: {len(docs)} document(s), at least 2 are needed to split")
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_held = min(max(1, round(share * len(docs))), len(docs) - 1)
    held_ids = set(order[:n_held])
    for path, part in ((rest, [d for i, d in enumerate(docs) if i not in held_ids]),
                       (held, [d for i, d in enumerate(docs) if i in held_ids])):
        with atomic_file(path) as tmp:
            tmp.write_bytes(DocBin(docs=part, store_user_data=True).to_bytes())
    typer.echo(f"✔ {rest}: {len(docs) - n_held:,} documents; {held}: {n_held:,} documents (seed {seed})")


@app.command("corpus-aliases")
def corpus_aliases(
    corpus: Path = typer.Argument(..., help=".spacy file with gold entities and kb_ids (a training split)"),
    output: Path = typer.Argument(..., help="JSONL of {id, aliases} for build-kb --extra-aliases"),
    min_count: int = typer.Option(1, help="keep a (text, id) pair seen at least this often"),
    types: Optional[List[str]] = typer.Option(None, "--types", help="keep only mentions of these labels (repeatable)"),
    entities: bool = typer.Option(
        False, "--entities", help="write full entity records {id, name, type, aliases} (a KB source for build-kb)"
    ),
) -> None:
    """Collect the mention texts of gold entities per KB id (single-id mentions only)."""
    import spacy
    import srsly
    from spacy.tokens import DocBin

    from .kb.sources import aliases_from_docs

    if not corpus.exists():
        raise EntlinkError(f"{corpus}: file not found")
    nlp = spacy.blank("en")
    docs = DocBin(store_user_data=True).from_disk(corpus).get_docs(nlp.vocab)
    records = aliases_from_docs(docs, min_count=min_count, types=types)
    if entities:
        lines = [{"id": r.id, "name": r.name, "type": r.type, "aliases": r.aliases} for r in records]
    else:
        lines = [{"id": r.id, "aliases": r.aliases} for r in records]
    srsly.write_jsonl(output, lines)
    typer.echo(f"✔ {output}: {sum(len(r.aliases) for r in records):,} aliases of {len(records):,} ids")


@app.command("annotate")
def annotate(
    model: str = typer.Argument(..., help="pipeline name or folder"),
    input: Path = typer.Argument(..., help="plain text (one document per line), JSONL with 'text' (and 'id'), or PubTator"),
    output: Path = typer.Argument(..., help="JSONL to write (one object per document, in input order)"),
    format: str = typer.Option("auto", "--format", "-f", help="auto, text, jsonl or pubtator"),
    batch_size: int = typer.Option(64, help="documents per nlp.pipe batch (and per output flush)"),
    n_process: int = typer.Option(1, help="worker processes"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="continue an interrupted run's output"),
    stats: Optional[Path] = typer.Option(None, "--stats", help="JSON file for counts and throughput"),
    engine: str = typer.Option("local", help="local (nlp.pipe here) or dask (a Dask cluster; the `dask` extra)"),
    address: Optional[str] = typer.Option(None, help="with --engine dask: scheduler address (default: a local cluster of --n-process workers)"),
    chunk_size: int = typer.Option(500, help="with --engine dask: records per task"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on, as spacy train's --gpu-id (-1: CPU)"),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="documents over this many characters are written with an 'error' and no annotations (default: the pipeline's max_length)"),
) -> None:
    """Annotate documents with a pipeline and write entities, ids, scores and relations as JSONL;
    malformed input records are reported with their line and skipped; rerun to resume."""
    import srsly

    from .annotate import ReadStats, annotate as run, annotate_dask, read_records, warn_to_stderr
    from .io import doc_to_json

    if engine not in ("local", "dask"):
        raise EntlinkError(f"--engine: {engine!r} is not one of local, dask")
    read_stats = ReadStats()
    records = read_records(input, format, read_stats, warn=warn_to_stderr)
    if engine == "dask":
        result = annotate_dask(model, records, output, address=address, n_workers=max(1, n_process),
                               chunk_size=chunk_size, batch_size=batch_size, resume=resume, max_length=max_length)
    else:
        import spacy

        use_gpu(gpu_id)
        nlp = spacy.load(model)
        result = run(nlp, records, output, to_json=doc_to_json, batch_size=batch_size, n_process=n_process,
                     resume=resume, max_length=max_length)
    result["malformed"] = len(read_stats.malformed)
    if stats is not None:
        srsly.write_json(stats, result)
    skipped = f", {result['malformed']} malformed records skipped" if result["malformed"] else ""
    if result["too_long"]:
        skipped += f", {result['too_long']} over --max-length written without annotations (see their 'error')"
    resumed = f" after {result['skipped_done']:,} already done" if result["skipped_done"] else ""
    typer.echo(f"✔ {output}: {result['annotated']:,} documents{resumed} in {result['seconds']:.1f} s "
               f"({result['docs_per_s']:,.1f} docs/s, {result['chars_per_s']:,.0f} chars/s){skipped}")


@app.command("train-linker")
def train_linker_cmd(
    output: Path = typer.Argument(..., help="pipeline folder to write (the best weights on dev, calibrated on dev)"),
    kb: Path = typer.Option(..., "--kb", help="KB folder (build-kb)"),
    train: Optional[Path] = typer.Option(None, "--train", help=".spacy file with gold entities and kb_ids (omit to train on KB pairs only)"),
    dev: Optional[Path] = typer.Option(None, "--dev", help=".spacy file for model selection and calibration"),
    model: str = typer.Option("", "--model", help="Hugging Face seq2seq model or encoder (empty: embedded MiniLM)"),
    decoder_layers: int = typer.Option(2, help="decoder layers when warm-starting from an encoder"),
    labels: Optional[List[str]] = typer.Option(None, "--labels", help="train and link only these entity labels"),
    kb_pairs: int = typer.Option(0, "--kb-pairs", help="self-supervised pairs per KB entity (alias in context -> name)"),
    epochs: int = typer.Option(2, help="passes over the training pairs"),
    max_steps: int = typer.Option(0, help="stop after this many steps (0: use epochs)"),
    batch_size: int = typer.Option(32, help="mentions per step"),
    lr: float = typer.Option(1e-4, "--lr", help="AdamW learning rate (linear warm-up and decay)"),
    eval_every: int = typer.Option(500, help="evaluate on dev every N steps"),
    dev_limit: int = typer.Option(0, help="evaluate on the first N dev mentions only (0: all)"),
    candidates: str = typer.Option("span,kb,abbreviation,fuzzy", help="candidate sources, comma-separated"),
    max_candidates: int = typer.Option(32, "--max-candidates", help="score at most this many candidates per mention"),
    dense_model: str = typer.Option("", "--dense-model", help="encoder of the dense candidates: a train-retriever folder, a Hugging Face name, or empty for the embedded MiniLM"),
    extra_dense_model: Optional[str] = typer.Option(None, "--extra-dense-model", help="encoder of the \"dense_extra\" candidates (a second index; empty: the embedded MiniLM)"),
    train_precision: str = typer.Option("float32", "--train-precision", help="forward passes of training: float32, bfloat16 or auto (bf16 autocast where the hardware has it; weights stay float32)"),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="JSON file for the training history"),
    seed: int = typer.Option(0, help="random seed"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on, as spacy train's --gpu-id (-1: CPU)"),
) -> None:
    """Train an entlink_linker from gold mentions (and KB pairs), with progress and dev selection."""
    import random

    import spacy
    import srsly
    import torch
    from spacy.training import Corpus

    from .linking.train import train_linker

    for path, what in ((kb, "--kb"), (train, "--train"), (dev, "--dev")):
        if path is not None and not path.exists():
            raise EntlinkError(f"{what}: {path} does not exist")
    random.seed(seed)
    torch.manual_seed(seed)
    use_gpu(gpu_id)
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker", config={
        "model": {"@architectures": "spacy_entlink.GenreLinker.v2", "name": model, "decoder_layers": decoder_layers,
                  "max_context_tokens": 128, "max_name_tokens": 32},
        "candidates": [c for c in candidates.split(",") if c], "labels": list(labels or []),
        "batch_size": batch_size, "learning_rate": lr, "max_candidates": max_candidates, "dense_model": dense_model,
        "extra_dense_model": extra_dense_model, "train_precision": train_precision,
    })
    if train is None and kb_pairs < 1:
        raise EntlinkError("train-linker: without --train, give --kb-pairs N (self-supervised pairs per KB entity)")
    linker.set_kb(kb, progress=True)
    train_egs = list(Corpus(train)(nlp)) if train is not None else []
    dev_egs = list(Corpus(dev)(nlp)) if dev is not None else []
    result = train_linker(nlp, "entlink_linker", train_egs, dev_egs, output=output, kb_pairs_per_entity=kb_pairs,
                          kb_types=labels or None, epochs=epochs, max_steps=max_steps, eval_every=eval_every,
                          dev_limit=dev_limit, seed=seed, labels=labels or None)
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(metrics, {"steps": result.steps, "seconds": round(result.seconds, 1),
                                   "best_dev_acc": result.best_dev, "history": result.history})
    best = f"best dev accuracy@1 {100 * result.best_dev:.2f}" if result.best_dev >= 0 else "no --dev: the last step is kept"
    typer.echo(f"✔ {output}: {result.steps} steps in {result.seconds / 60:.1f} min, {best}")


@app.command("train-retriever")
def train_retriever_cmd(
    kb: Path = typer.Argument(..., help="KB folder (build-kb)"),
    output: Path = typer.Argument(..., help="folder for the trained encoder (Hugging Face format, safetensors)"),
    model: str = typer.Option("", "--model", help="Hugging Face encoder to start from (empty: embedded MiniLM)"),
    train: Optional[Path] = typer.Option(None, "--train", help="optional .spacy file: gold mentions with kb_ids as extra anchors"),
    labels: Optional[List[str]] = typer.Option(None, "--labels", help="KB types (and mention labels) to train on (repeatable)"),
    steps: int = typer.Option(1000, help="optimiser steps"),
    batch_size: int = typer.Option(64, help="entities per step (two names each, plus hard negatives)"),
    lr: float = typer.Option(5e-5, "--lr", help="AdamW learning rate (linear warm-up and decay)"),
    temperature: float = typer.Option(0.05, help="softmax temperature of the contrastive loss"),
    hard_negatives: int = typer.Option(1, help="hard negatives per anchor, mined from the current index (0: in-batch only)"),
    mine_every: int = typer.Option(500, help="re-mine hard negatives (and report held-out recall) every N steps"),
    holdout: float = typer.Option(0.05, help="share of entities with 3+ names that keep one alias out, for held-out recall@1"),
    max_length: int = typer.Option(24, help="tokens per name"),
    uninvert: bool = typer.Option(False, "--uninvert/--no-uninvert", help='also train on inverted entry terms in text order ("Neoplasms, Abdominal" -> "Abdominal Neoplasms")'),
    interpolate: float = typer.Option(1.0, help="weight of the trained weights in the saved encoder, the rest from the starting encoder (WiSE-FT; 1: the trained weights)"),
    precision: str = typer.Option("auto", help="float32, bfloat16 or auto (bf16 autocast where the hardware has it)"),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="JSON file for the training history"),
    seed: int = typer.Option(0, help="random seed"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on, as spacy train's --gpu-id (-1: CPU)"),
) -> None:
    """Train a dense retriever (bi-encoder) on the KB's synonyms, optionally also on mentions."""
    from .kb import KnowledgeBase
    from .linking.retriever import RetrieverTraining, train_retriever

    if not kb.exists():
        raise EntlinkError(f"KB: {kb} does not exist")
    if train is not None and not train.exists():
        raise EntlinkError(f"--train: {train} does not exist")
    use_gpu(gpu_id)
    settings = RetrieverTraining(steps=steps, batch_size=batch_size, lr=lr, temperature=temperature,
                                 hard_negatives=hard_negatives, mine_every=mine_every, holdout=holdout,
                                 max_length=max_length, uninvert=uninvert, interpolate=interpolate,
                                 precision=precision, seed=seed)
    knowledge = KnowledgeBase.from_disk(kb)
    mentions = None
    if train is not None:
        import spacy
        from spacy.tokens import DocBin

        docs = DocBin(store_user_data=True).from_disk(train).get_docs(spacy.blank("en").vocab)
        mentions = []
        for doc in docs:
            for ent in doc.ents:
                if (not labels or ent.label_ in labels) and ent.kb_id_ and knowledge.row_of(ent.kb_id_) is not None:
                    mentions.append((ent.text, knowledge.row_of(ent.kb_id_)))
    result = train_retriever(knowledge, output, model=model, settings=settings, mentions=mentions,
                             types=list(labels) if labels else None)
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(metrics, {"steps": result.steps, "seconds": round(result.seconds, 1), "names": result.names,
                                   "entities": result.entities, "held_out": result.held_out,
                                   "history": result.history})
    last = result.history[-1] if result.history else {}
    recall = f", held-out alias recall@1 {100 * last['holdout_recall@1']:.2f}" if "holdout_recall@1" in last else ""
    typer.echo(f"✔ {output}: {result.steps} steps in {result.seconds / 60:.1f} min{recall}")


@app.command("calibrate-linker")
def calibrate_linker_cmd(
    pipeline: Path = typer.Argument(..., help="pipeline folder with an entlink_linker"),
    output: Path = typer.Argument(..., help="pipeline folder to write"),
    dev: Optional[Path] = typer.Option(None, "--dev", help=".spacy file with gold kb_ids to fit the calibration on"),
    kb_pairs: Optional[Path] = typer.Option(None, "--kb-pairs", help='or: JSONL of {"id", "text"} aliases the KB was built without (a retriever\'s holdout.jsonl), as pseudo-mentions: calibration without annotated text'),
    train: Optional[Path] = typer.Option(None, "--train", help=".spacy training file: entity frequencies (prior)"),
    name: str = typer.Option("entlink_linker", help="the linker's name in the pipeline"),
    candidates: Optional[str] = typer.Option(None, help="override the candidate sources, comma-separated"),
    dense_model: Optional[str] = typer.Option(None, "--dense-model", help="rebuild the dense index with this encoder (a train-retriever folder, a Hugging Face name; empty: embedded MiniLM)"),
    extra_dense_model: Optional[str] = typer.Option(None, "--extra-dense-model", help="build a second dense index with this encoder for the \"dense_extra\" candidate source (e.g. empty: the embedded MiniLM a retriever was trained from); candidates only, the name-similarity feature stays --dense-model's"),
    kb: Optional[Path] = typer.Option(None, "--kb", help="use this KB instead of the pipeline's (e.g. the same one rebuilt with its hierarchy); the name trie and dense index are rebuilt for it"),
    final_kb: Optional[Path] = typer.Option(None, "--final-kb", help="after calibrating, link with this KB (e.g. the full KB that the --kb-pairs aliases were held out of, so the saved linker knows every name); the name trie and dense index are rebuilt for it"),
    nil: bool = typer.Option(True, "--nil/--no-nil", help="fit a NIL option (mentions whose gold is not among their candidates); --no-nil for closed-world normalisation, where every mention has an id"),
    out_of_kb: float = typer.Option(0.0, "--out-of-kb", help="with a NIL option: take this share of the calibration mentions' entities out of the KB while calibrating (drawn at random; the KB is restored afterwards), so that NIL is fitted on mentions of entities the KB lacks, e.g. 0.1 if you expect one entity in ten of your texts to be missing from the KB"),
    max_candidates: Optional[int] = typer.Option(None, "--max-candidates", help="score at most this many candidates per mention, in the order the sources give them (saved with the pipeline)"),
    dense_k: Optional[int] = typer.Option(None, "--dense-k", help="entities the dense source adds per mention (saved with the pipeline)"),
    folds: int = typer.Option(5, help="also measure accuracy@1 of calibrations fitted on the other folds' documents (0: skip)"),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="fit a cascade gate: mentions whose features alone decide (at no loss of accuracy on these mentions) skip the model"),
    context: bool = typer.Option(False, "--context-model/--no-context-model", help="learn a sparse context model (which words around a mention favour which words of a candidate's name) from --train, as one more calibration feature"),
    kb_share: float = typer.Option(0.5, "--kb-share", help="with --kb-pairs: share of the pseudo-mentions that are names the KB has (drawn at random, one per entity), beside the held-out aliases"),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="JSON file for the calibration and its cross-validated accuracy"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on, as spacy train's --gpu-id (-1: CPU)"),
) -> None:
    """Fit the linker's calibration (model score, frequency and KB priors, name similarity,
    NIL) on dev, or without annotated text on held-out KB aliases mixed with KB names."""
    import spacy
    from spacy.training import Corpus

    for path, what in ((pipeline, "PIPELINE"), (dev, "--dev"), (train, "--train"), (kb_pairs, "--kb-pairs"), (kb, "--kb"),
                       (final_kb, "--final-kb")):
        if path is not None and not path.exists():
            raise EntlinkError(f"{what}: {path} does not exist")
    if (dev is None) == (kb_pairs is None):
        raise EntlinkError("calibrate-linker: give either --dev (annotated mentions) or --kb-pairs (held-out KB aliases)")
    if output.resolve() == pipeline.resolve():
        raise EntlinkError("OUTPUT must differ from PIPELINE (the model weights are read from PIPELINE)")
    use_gpu(gpu_id)
    if folds == 1 or folds < 0:
        raise EntlinkError(f"--folds: use 0 (no cross-validation) or at least 2, got {folds}")
    for value, what in ((max_candidates, "--max-candidates"), (dense_k, "--dense-k")):
        if value is not None and value < 1:
            raise EntlinkError(f"{what} must be at least 1, got {value}")
    if not 0.0 <= kb_share < 1.0:
        raise EntlinkError(f"--kb-share must be in [0, 1), got {kb_share}")
    if not 0.0 <= out_of_kb < 1.0:
        raise EntlinkError(f"--out-of-kb must be in [0, 1), got {out_of_kb}")
    if out_of_kb and not nil:
        raise EntlinkError("--out-of-kb fits NIL on entities taken out of the KB: it needs a NIL option (drop --no-nil)")
    if context and train is None:
        raise EntlinkError("--context-model learns from annotated training documents: give --train")
    nlp = spacy.load(pipeline)
    if name not in nlp.pipe_names:
        raise EntlinkError(f"--name: no component {name!r} in {pipeline} (it has {nlp.pipe_names})")
    linker = nlp.get_pipe(name)
    if kb is not None:
        linker.set_kb(kb, progress=True)
    if dense_model is not None:
        linker.build_dense(progress=True, model=dense_model)
        nlp.get_pipe_config(name)["dense_model"] = dense_model
    if extra_dense_model is not None:
        linker.build_dense(progress=True, model=extra_dense_model, extra=True)
        nlp.get_pipe_config(name)["extra_dense_model"] = extra_dense_model
    if candidates is not None:
        linker.set_candidates([c for c in candidates.split(",") if c], progress=True)
        nlp.get_pipe_config(name)["candidates"] = [c for c in candidates.split(",") if c]
    for key, value in (("max_candidates", max_candidates), ("dense_k", dense_k)):
        if value is not None:
            linker.configure(**{key: value})
            nlp.get_pipe_config(name)[key] = value
    if train is not None:
        counts = linker.set_counts(Corpus(train)(nlp))
        typer.echo(f"frequency prior from {train}: {len(counts):,} entities")
        if context:
            model = linker.fit_context_model(Corpus(train)(nlp), progress=True)
            typer.echo(f"context model from {train}: {model.fitted_on:,} mentions with several candidates")
    if kb_pairs is not None:
        from .linking.examples import pseudo_mention_examples
        from .linking.retriever import read_holdout

        pairs = read_holdout(kb_pairs, linker.kb)
        hits = sum(1 for text, row in pairs if row in {c.row for c in linker.kb.get_candidates(text)})
        if hits > len(pairs) // 2:
            typer.echo(f"⚠ {hits:,} of {len(pairs):,} held-out aliases are still exact aliases of their entity in the "
                       "KB: build the KB with --exclude-aliases on the same file", err=True)
        examples = pseudo_mention_examples(nlp, pairs, linker.kb, kb_share=kb_share)
        typer.echo(f"calibrating on {len(examples):,} pseudo-mentions: {len(pairs):,} held-out KB aliases from "
                   f"{kb_pairs}, the others names the KB has")
    else:
        examples = list(Corpus(dev)(nlp))
    cal = linker.calibrate(examples, folds=folds, with_nil=nil, gate=gate, out_of_kb=out_of_kb)
    if out_of_kb:
        typer.echo(f"NIL fitted with {len(linker.calibration_out_of_kb):,} of the calibration mentions' entities "
                   "taken out of the KB (restored afterwards); the accuracies below count their mentions as wrong")
    if final_kb is not None:
        linker.set_kb(final_kb, progress=True)
        typer.echo(f"linking with {final_kb} from now on ({len(linker.kb):,} entities); the calibration is kept")
    nlp.to_disk(output)
    typer.echo(f"✔ {output}: scale {cal.scale:.3f}, prior weights {[round(w, 3) for w in cal.prior_weights]}, "
               f"NIL score {cal.nil_score}, gate {cal.gate}"
               + (f" (assumed model score {cal.gate_score:.3f})" if cal.nil_score is not None and cal.gate_score is not None else "")
               + f", fitted on {cal.fitted_on:,} mentions")
    cv = linker.calibration_cv if folds else None
    if cv:
        typer.echo(f"  accuracy@1 on {dev or kb_pairs}: {100 * cv['fit_and_apply_acc']:.2f} fitted and applied on all of it, "
                   f"{100 * cv['cross_validated_acc']:.2f} with {folds}-fold cross-validation by document "
                   f"(NIL answers counted wrong: {100 * cv['fit_and_apply_acc_with_nil']:.2f} / "
                   f"{100 * cv['cross_validated_acc_with_nil']:.2f})")
        if "cross_validated_acc_without_context" in cv:
            typer.echo(f"  without the context model's feature: {100 * cv['cross_validated_acc_without_context']:.2f} "
                       "cross-validated (keep the context model only if it helps there)")
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(metrics, {"calibration": cal.to_dict(), "cross_validation": cv})


@app.command("calibrate-relations")
def calibrate_relations_cmd(
    pipeline: Path = typer.Argument(..., help="pipeline folder with an entlink_relations"),
    output: Path = typer.Argument(..., help="pipeline folder to write"),
    dev: Path = typer.Option(..., "--dev", help=".spacy file of held-out annotated documents to fit on (e.g. a held-out part of train; never the documents you report)"),
    name: str = typer.Option("entlink_relations", help="the component's name in the pipeline"),
    aggregator: bool = typer.Option(True, "--aggregator/--no-aggregator", help="with aggregate = \"kb_id\": fit the id-pair aggregator over all mention pairs (else the best pair's score)"),
    thresholds: bool = typer.Option(True, "--thresholds/--no-thresholds", help="fit per-label thresholds (after the aggregator)"),
    at_least_one: str = typer.Option("auto", "--at-least-one", help="keep each document's most probable relation even below the threshold: on, off, or auto (on when it scores better on --dev, cross-validated by document: thresholds and aggregator refitted on the other folds)"),
    l2: str = typer.Option("auto", "--l2", help="L2 penalty of the aggregator's standardised weights: a number, or auto (the best of 0.03-10 by F1 on --dev, cross-validated by document over 3 fold splits, decided together with --at-least-one auto)"),
    kb: Optional[Path] = typer.Option(None, "--kb", help="a KB with a hierarchy (e.g. CTD MEDIC's parents): the aggregator's hierarchy features read it; saved with the component"),
    train: Optional[Path] = typer.Option(None, "--train", help=".spacy file of the reader's annotated training documents: how often each id pair was related there, as aggregator features (saved in the cfg)"),
    entities: str = typer.Option("auto", "--entities", help="the entities to fit with: gold (--dev's annotated entities, as an upstream NER would give them), own (the reader's span classifier), pipeline (what the components before it in PIPELINE, e.g. NER, dictionary and linker, find in --dev's text), or auto (the component's `entities` setting); the shipped setting is kept either way"),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="JSON file for what was fitted and the F1 on --dev"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on, as spacy train's --gpu-id (-1: CPU)"),
) -> None:
    """Fit the relation extractor's id-pair aggregator and per-label thresholds on held-out
    annotated documents."""
    import spacy
    from spacy.training import Corpus, Example

    from .scoring import score_relations

    for path, what in ((pipeline, "PIPELINE"), (dev, "--dev"), (kb, "--kb"), (train, "--train")):
        if path is not None and not path.exists():
            raise EntlinkError(f"{what}: {path} does not exist")
    if output.resolve() == pipeline.resolve():
        raise EntlinkError("OUTPUT must differ from PIPELINE (the model weights are read from PIPELINE)")
    try:
        l2_value = None if l2 == "auto" else float(l2)
    except ValueError:
        raise EntlinkError(f"--l2 must be a number >= 0 or auto, got {l2!r}") from None
    if l2_value is not None and l2_value < 0:
        raise EntlinkError(f"--l2 must be a number >= 0 or auto, got {l2!r}")
    if at_least_one not in ("auto", "on", "off"):
        raise EntlinkError(f"--at-least-one must be auto, on or off, got {at_least_one!r}")
    if entities not in ("auto", "gold", "own", "pipeline"):
        raise EntlinkError(f"--entities must be gold, own, pipeline or auto, got {entities!r}")
    use_gpu(gpu_id)
    nlp = spacy.load(pipeline)
    rel = _relation_extractor(nlp, name, pipeline)
    shipped_entities = rel.cfg["entities"]
    if entities == "own" and not rel.cfg.get("entity_labels"):
        raise EntlinkError(f"--entities own: {name} in {pipeline} has no entity labels, so no span classifier to fit with")
    upstream = nlp.pipe_names[: nlp.pipe_names.index(name)]
    if entities == "pipeline" and not upstream:
        raise EntlinkError(f"--entities pipeline: no component runs before {name} in {pipeline} to find the entities")
    if entities != "auto":
        rel.cfg["entities"] = "predict" if entities == "own" else "doc"
    if aggregator and rel.cfg["aggregate"] != "kb_id":
        typer.echo(f"ℹ {name} relates mentions (aggregate = {rel.cfg['aggregate']!r}): no aggregator to fit")
        aggregator = False
    if kb is not None:
        from .kb import KnowledgeBase

        rel.set_kb(KnowledgeBase.from_disk(kb))
        if not rel.kb.has_hierarchy:
            typer.echo(f"⚠ --kb: {kb} has no hierarchy (parents): the hierarchy features stay 0", err=True)
    if train is not None:
        counts = rel.set_relation_counts(Corpus(train)(nlp))
        typer.echo(f"relation counts from {train}: {sum(counts.related.values()):,} relations, {len(counts.documents):,} ids")
    examples = list(Corpus(dev)(nlp))
    if not examples:
        raise EntlinkError(f"--dev: {dev} has no documents")
    if entities == "pipeline":
        examples = _with_upstream_entities(nlp, upstream, examples)
        rel._fit_on_given = True

    def f1() -> float:
        docs = [rel(d) for d in rel._fitting_docs(examples)]
        return score_relations([Example(d, eg.reference) for d, eg in zip(docs, examples)])["rel_micro_f"]

    report = {"dev": str(dev), "documents": len(examples),
              "entities": "pipeline" if entities == "pipeline" else "own" if rel.cfg["entities"] == "predict" else "gold",
              "f_before": f1()}
    typer.echo(f"{dev}: {len(examples):,} documents, relation F1 before {100 * report['f_before']:.2f}")
    cv = None
    # one prediction pass that keeps every scored pair, shared by every fit below
    every_pair = rel._every_pair(examples) if aggregator or thresholds or at_least_one == "auto" else None
    if aggregator:
        agg = rel.fit_aggregator(examples, l2=1.0 if l2_value is None else l2_value, every_pair=every_pair)
        if l2_value is None and len(examples) >= 2:
            from .pipeline.relations import L2_GRID

            table = rel.cross_validate_l2(examples, L2_GRID, refit_thresholds=thresholds, every_pair=every_pair)
            rules = (False, True) if at_least_one == "auto" else (at_least_one == "on",)
            # the best (penalty, rule) out of fold; on a tie the stronger penalty
            l2_value = max(((p, r) for p in table for r in rules), key=lambda pr: (table[pr[0]][int(pr[1])], pr[0]))[0]
            cv = table[l2_value]
            report["l2_cv"] = {str(p): {"without": a, "with": b} for p, (a, b) in table.items()}
            typer.echo("aggregator L2 penalty, F1 on --dev cross-validated by document (3 fold splits), without / with at "
                       "least one relation per document: "
                       + ", ".join(f"{p:g}: {100 * a:.2f} / {100 * b:.2f}" for p, (a, b) in table.items())
                       + f"; chosen {l2_value:g}")
            agg = rel.fit_aggregator(examples, l2=l2_value, every_pair=every_pair)
        report["l2"] = 1.0 if l2_value is None else l2_value
        report["aggregator"] = agg.to_dict()
        typer.echo(f"aggregator fitted on {agg.fitted_on:,} id pairs ({agg.positives:,} related): weights "
                   + ", ".join(f"{k} {w:+.2f}" for k, w in zip(report["aggregator"]["features"], agg.weights)))
    if thresholds:
        report["thresholds"] = rel.fit_thresholds(examples, every_pair=every_pair)
        typer.echo(f"thresholds: {report['thresholds']}")
    if at_least_one == "auto" and len(examples) >= 2:
        f_off, f_on = cv if cv is not None else rel.cross_validate_at_least_one(
            examples, refit_aggregator=aggregator, refit_thresholds=thresholds, l2=report.get("l2", 1.0),
            every_pair=every_pair)
        report["at_least_one_cv"] = {"without": f_off, "with": f_on}
        typer.echo(f"at least one relation per document, {min(5, len(examples))}-fold cross-validated F1 on --dev: "
                   f"{100 * f_on:.2f} with, {100 * f_off:.2f} without")
        rel.cfg["at_least_one"] = f_on > f_off
    else:
        rel.cfg["at_least_one"] = at_least_one == "on"
    report["at_least_one"] = bool(rel.cfg["at_least_one"])
    report["f_after"] = f1()
    typer.echo(f"relation F1 on {dev} after fitting (the documents fitted on, {report['entities']} entities): "
               f"{100 * report['f_after']:.2f}{' (at least one relation per document)' if report['at_least_one'] else ''}")
    rel.cfg["entities"] = shipped_entities
    rel._fit_on_given = False
    nlp.to_disk(output)
    typer.echo(f"✔ {output}")
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(metrics, report)


@app.command("copy-calibration")
def copy_calibration_cmd(
    calibrated: Path = typer.Argument(..., help="pipeline whose entlink_relations calibrate-relations fitted on held-out documents"),
    pipeline: Path = typer.Argument(..., help="pipeline with an entlink_relations of the same config, e.g. trained on all the documents (the held-out ones too)"),
    output: Path = typer.Argument(..., help="pipeline folder to write: PIPELINE with CALIBRATED's calibration"),
    name: str = typer.Option("entlink_relations", help="the component's name in both pipelines"),
    train: Optional[Path] = typer.Option(None, "--train", help=".spacy file of PIPELINE's annotated training documents: the aggregator's relation counts (else PIPELINE's own, or where it has none CALIBRATED's)"),
) -> None:
    """Give a relation extractor the aggregator, thresholds, at-least-one rule and KB that
    calibrate-relations fitted for another one, e.g. for the final model trained on the
    calibration documents too."""
    import spacy
    from spacy.training import Corpus

    for path, what in ((calibrated, "CALIBRATED"), (pipeline, "PIPELINE"), (train, "--train")):
        if path is not None and not path.exists():
            raise EntlinkError(f"{what}: {path} does not exist")
    if output.resolve() == pipeline.resolve():
        raise EntlinkError("OUTPUT must differ from PIPELINE (the model weights are read from PIPELINE)")
    source = _relation_extractor(spacy.load(calibrated), name, calibrated)
    nlp = spacy.load(pipeline)
    rel = _relation_extractor(nlp, name, pipeline)
    if not (source.cfg.get("aggregator") or source.cfg.get("thresholds") or source.cfg.get("at_least_one")):
        typer.echo(f"⚠ {calibrated}: {name} has no fitted aggregator, thresholds or at-least-one rule "
                   "(calibrate-relations writes them)", err=True)
    try:
        rel.copy_calibration(source)
    except ConfigError as err:
        raise EntlinkError(f"{pipeline} vs {calibrated}: {err}") from None
    if train is not None:
        counts = rel.set_relation_counts(Corpus(train)(nlp))
        typer.echo(f"relation counts from {train}: {sum(counts.related.values()):,} relations, {len(counts.documents):,} ids")
    nlp.to_disk(output)
    typer.echo(f"✔ {output}: {name} with the calibration of {calibrated} (threshold {rel.cfg['threshold']}, "
               f"thresholds {rel.cfg['thresholds']}, at least one {bool(rel.cfg.get('at_least_one'))}, "
               f"aggregator {'yes' if rel.cfg.get('aggregator') else 'no'})")


def _relation_extractor(nlp, name: str, path: Path):
    """The entlink_relations component `name` of the pipeline loaded from `path`."""
    if name not in nlp.pipe_names or type(nlp.get_pipe(name)).__name__ != "RelationExtractor":
        raise EntlinkError(f"--name: no entlink_relations component {name!r} in {path} (it has {nlp.pipe_names})")
    return nlp.get_pipe(name)


def _with_upstream_entities(nlp, names: List[str], examples: List) -> List:
    """The examples with the entities (and KB ids) that the components `names` of `nlp` find in
    their predicted docs (the corpus reader's tokens, no entities yet)."""
    from spacy.training import Example
    from tqdm import tqdm

    with nlp.select_pipes(enable=names):
        docs = nlp.pipe(eg.predicted.copy() for eg in examples)
        return [Example(doc, eg.reference) for doc, eg in
                zip(tqdm(docs, total=len(examples), desc="--entities pipeline", disable=len(examples) < 50, leave=False), examples)]


@app.command("visualize")
def visualize_cmd(
    input: Path = typer.Argument(..., help="annotate output (JSONL), a .spacy DocBin, or with --model any annotate input"),
    output: Path = typer.Argument(..., help="HTML file to write"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="pipeline to annotate INPUT with first"),
    format: str = typer.Option("auto", "--format", "-f", help="input format with --model: auto, text, jsonl or pubtator"),
    kb_url: Optional[str] = typer.Option(None, "--kb-url", help="link template for KB ids, e.g. 'https://meshb.nlm.nih.gov/record/ui?ui={}'"),
    limit: int = typer.Option(50, help="at most this many documents (0: all)"),
    title: str = typer.Option("spacy-entlink", help="page title"),
) -> None:
    """Write an HTML page of entities with KB ids and relations as arcs (displaCy)."""
    from itertools import islice

    from .files import iter_jsonl
    from .io import doc_from_json
    from .visualize import render

    if not input.exists():
        raise EntlinkError(f"INPUT: {input} does not exist")
    if kb_url is not None and "{}" not in kb_url:
        raise EntlinkError(f"--kb-url: {kb_url!r} has no '{{}}' for the KB id")
    stop = limit if limit > 0 else None
    names: List[str] = []
    if model is not None:
        import spacy

        from .annotate import read_records, warn_to_stderr

        nlp = spacy.load(model)
        records = list(islice(read_records(input, format, warn=warn_to_stderr), stop))
        names = [f"{input.name} · {rid}" for rid, _ in records]
        docs = list(nlp.pipe(text for _, text in records))
    elif input.suffix == ".spacy":
        import spacy
        from spacy.tokens import DocBin

        try:
            docs = list(islice(DocBin().from_disk(input).get_docs(spacy.blank("en").vocab), stop))
        except (ValueError, KeyError, OSError) as err:
            raise EntlinkError(f"INPUT: {input} is not a readable DocBin ({err})") from err
    else:
        docs = []
        for n, record in iter_jsonl(input):
            if "ents" not in record:
                raise EntlinkError(f"{input}, line {n}: not an annotate output record (no 'ents'); "
                                   "pass --model to annotate raw input first")
            docs.append(doc_from_json(record, path=input, line=n))
            names.append(f"{input.name} · {record.get('id', n)}")
            if stop is not None and len(docs) >= stop:
                break
    with atomic_file(output) as tmp:
        tmp.write_text(render(docs, title=title, kb_url_template=kb_url, names=names or None), encoding="utf8")
    n_rel = sum(len(d._.entlink_relations) for d in docs)
    typer.echo(f"✔ {output}: {len(docs):,} documents, {sum(len(d.ents) for d in docs):,} entities, {n_rel:,} relations")


def main(argv: Optional[List[str]] = None) -> None:
    """Run the CLI; errors about bad input are printed without a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except EntlinkError as err:
        typer.echo(f"✘ {err}", err=True)
        sys.exit(1)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except OSError as err:  # a full disk, a folder that became read-only, ...
        where = f"{err.filename}: " if err.filename else ""
        typer.echo(f"✘ {where}{err.strerror or err}", err=True)
        sys.exit(1)
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise
