"""Dense retrieval of KB entities for gold mentions, and the ANN index at scale.

Mode 1 (`--dev`): for each encoder (empty = the embedded all-MiniLM-L6-v2 as it ships, or a
folder written by `train-retriever`), embed every KB name, then search the nearest names of
each gold mention (a short form defined in its document searched by its long form, as the
linker does): accuracy@1 (the retriever alone) and recall@k, index build time, mentions/s.

    python bench/retriever.py --kb kb/medic --dev corpus/bc5cdr_dev_disease.spacy --labels Disease \
        --encoders "" training/retriever_medic --output metrics/bench_retriever_bc5cdr.json

Mode 2 (`--scale N`): N synthetic name vectors (clustered unit vectors of the encoder's width,
384) in a faiss HNSW index beside exact matrix search, in one process: build time, queries/s,
RSS, recall@k of ANN against exact search. Encoding N names costs N / (names/s of mode 1).

    python bench/retriever.py --scale 1000000 --output metrics/bench_retriever_scale.json

Mode 3 (`--names N`): the same, on real embeddings: N synthetic names (the generator of
bench/speed_memory.py, two names per entity: a name and a synonym or variant) embedded by the
encoder (`--encoders`, first one), queries = names with one typo; besides recall of exact search's
entities it reports how often exact and ANN search find the query's own entity. `--cache F.npy`
keeps the vectors for a rerun.

    python bench/retriever.py --names 1000000 --queries 2000 --ef 64 128 256 \
        --cache /tmp/names_1m.npy --output metrics/bench_retriever_names_1m.json
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from _output import write_json  # bench/_output.py (bench/ is on sys.path when a script runs)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dev_mode(args) -> dict:
    import spacy
    from spacy.training import Corpus

    from spacy_entlink.candidates import AbbreviationCache
    from spacy_entlink.kb import KnowledgeBase
    from spacy_entlink.linking.dense import DenseIndex, SentenceEncoder
    from spacy_entlink.linking.train import gold_mentions

    kb = KnowledgeBase.from_disk(args.kb)
    nlp = spacy.blank("en")
    mentions = gold_mentions(Corpus(args.dev)(nlp), args.labels)
    abbreviations = AbbreviationCache()
    texts = [abbreviations.expanded(s) for s, _ in mentions]
    gold = [kb.row_of(g) for _, g in mentions]
    print(f"{len(mentions):,} gold mentions; {sum(g is None for g in gold)} with an id missing from the KB")
    ks = sorted(set(args.k))
    rows = []
    for name in args.encoders:
        label = name or "all-MiniLM-L6-v2 (embedded, untrained)"
        encoder = SentenceEncoder(name or None)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            index = DenseIndex.build(kb, Path(tmp) / "dense", encoder, progress=True)
            build_s = time.perf_counter() - t
            t = time.perf_counter()
            found = index.search(texts, k=max(ks))
            search_s = time.perf_counter() - t
        recall = {f"recall@{k}": sum(1 for f, g in zip(found, gold) if g in f[:k]) / len(gold) for k in ks}
        row = {"encoder": label, "names": int(index.meta["names"]), "index_build_s": round(build_s, 1),
               "names_per_s": round(index.meta["names"] / build_s, 1), "mentions_per_s": round(len(texts) / search_s, 1),
               "acc@1": recall.get("recall@1"), **recall}
        rows.append(row)
        print(f"{label:<45} acc@1 {100 * row['acc@1']:6.2f}  " +
              "  ".join(f"R@{k} {100 * recall[f'recall@{k}']:6.2f}" for k in ks) +
              f"  | index {build_s:6.1f} s ({row['names_per_s']:,.0f} names/s), {row['mentions_per_s']:,.0f} mentions/s")
    return {"kb": str(args.kb), "dev": str(args.dev), "mentions": len(mentions), "rows": rows}


def synthetic_vectors(args):
    """Clustered unit vectors, two per entity, and noisy copies of some as queries."""
    rng = np.random.default_rng(0)
    n, dim = args.scale, 384
    centres = rng.standard_normal((n // 10 + 1, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(n) // 2  # two names per entity
    queries = vectors[rng.integers(0, n, args.queries)] + 0.3 * rng.standard_normal((args.queries, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return vectors, rows, queries, None, {}


def embedded_names(args):
    """`args.names` synthetic names embedded by the encoder, two per entity; typo'd names as queries."""
    import random

    from speed_memory import SyntheticNames, _typo

    from spacy_entlink.linking.dense import SentenceEncoder

    gen = SyntheticNames(1)
    names = []
    for _ in range(args.names // 2):
        name = gen.name()
        names += [name, gen.alias(name)]
    rows = np.arange(len(names)) // 2
    rng = random.Random(2)
    picked = [rng.randrange(len(names)) for _ in range(args.queries)]
    query_texts = [_typo(rng, names[i]) for i in picked]
    encoder = SentenceEncoder(args.encoders[0] or None)
    info = {"encoder": args.encoders[0] or "all-MiniLM-L6-v2 (embedded)", "example_names": names[:6],
            "example_queries": query_texts[:6]}
    if args.cache and args.cache.exists():
        vectors = np.load(args.cache, mmap_mode="r")
        if vectors.shape != (len(names), encoder.dim):
            raise SystemExit(f"{args.cache}: shape {vectors.shape}, expected {(len(names), encoder.dim)}")
        vectors = np.ascontiguousarray(vectors)
        info["encode_s"] = "cached"
    else:
        t = time.perf_counter()
        vectors = encoder.encode(names, progress=True)
        info["encode_s"] = round(time.perf_counter() - t, 1)
        info["names_per_s"] = round(len(names) / info["encode_s"], 1)
        print(f"embedded {len(names):,} names in {info['encode_s']} s ({info['names_per_s']:,.0f} names/s)")
        if args.cache:
            np.save(args.cache, vectors)
    queries = encoder.encode(query_texts)
    return vectors, rows, queries, rows[picked], info


def scale_mode(args) -> dict:
    import faiss

    from spacy_entlink.linking.dense import DenseIndex

    vectors, rows, queries, truth, info = embedded_names(args) if args.names else synthetic_vectors(args)
    n, dim = vectors.shape
    before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        hnsw = {"m": args.hnsw_m, "ef_construction": args.ef_construction}
        index = DenseIndex.from_vectors(vectors, rows, Path(tmp) / "d", entities=n // 2, ann_threshold=1, progress=True,
                                        hnsw=hnsw)
        build_s = time.perf_counter() - t
        size_mb = sum(f.stat().st_size for f in (Path(tmp) / "d").iterdir()) / 2**20
        index.search_vectors(queries[:10], k=10)  # load the ANN index
        out = {"names": n, "dim": dim, "queries": len(queries), "build_s": round(build_s, 1),
               "index_mb": round(size_mb, 1), "rss_after_build_mb": round(rss_mb(), 1),
               "rss_before_mb": round(before, 1), "faiss": faiss.__version__,
               "vectors": "embedded synthetic names" if args.names else "clustered Gaussian",
               "hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction, **info, "rows": []}
        t = time.perf_counter()
        exact = index.search_vectors(queries, k=10, exact=True)
        exact_s = time.perf_counter() - t
        out["exact_queries_per_s"] = round(len(queries) / exact_s, 1)
        if truth is not None:
            out["exact_own_entity@1"] = own_entity(exact, truth, 1)
            out["exact_own_entity@10"] = own_entity(exact, truth, 10)
        print(f"{n:,} names: build {build_s:.1f} s (faiss HNSW M={args.hnsw_m}, efConstruction {args.ef_construction}), {size_mb:,.0f} MB on disk; "
              f"exact search {len(queries) / exact_s:,.1f} queries/s")
        for ef in args.ef:
            index._hnsw().hnsw.efSearch = ef
            t = time.perf_counter()
            ann = index.search_vectors(queries, k=10, exact=False)
            ann_s = time.perf_counter() - t
            rec = {}
            for k in (1, 10):
                rec[f"recall@{k}_vs_exact"] = float(np.mean([len({r for r, _ in a[:k]} & {r for r, _ in e[:k]}) / k
                                                             for a, e in zip(ann, exact)]))
            row = {"ef_search": ef, "queries_per_s": round(len(queries) / ann_s, 1), **rec}
            if truth is not None:
                row["own_entity@1"] = own_entity(ann, truth, 1)
                row["own_entity@10"] = own_entity(ann, truth, 10)
                print(f"    query's own entity: @1 {100 * row['own_entity@1']:.2f} %, @10 {100 * row['own_entity@10']:.2f} % "
                      f"(exact search {100 * out['exact_own_entity@1']:.2f} %, {100 * out['exact_own_entity@10']:.2f} %)")
            out["rows"].append(row)
            print(f"  ANN efSearch {ef:4d}: {row['queries_per_s']:10,.1f} queries/s, recall@1 {100 * rec['recall@1_vs_exact']:.2f} %, "
                  f"recall@10 {100 * rec['recall@10_vs_exact']:.2f} % of exact search's entities")
        out["peak_rss_mb"] = round(rss_mb(), 1)
        out["fresh_process"] = fresh_process_search(Path(tmp) / "d", queries, args.ef)
    return out


def _proc_status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (getrusage's maxrss survives exec on Linux, so a
    spawned child would report its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _search_in_child(path: str, queries_file: str, efs, conn) -> None:
    """In a fresh process: open the saved index, search with each efSearch; RSS and queries/s."""
    from spacy_entlink.linking.dense import DenseIndex

    base = _proc_status_mb("VmRSS")
    t = time.perf_counter()
    index = DenseIndex(path)
    queries = np.load(queries_file)
    index.search_vectors(queries[:1], k=10, exact=False)  # maps the ANN index
    load_s = time.perf_counter() - t
    rows = []
    for ef in efs:
        index._hnsw().hnsw.efSearch = ef
        t = time.perf_counter()
        index.search_vectors(queries, k=10, exact=False)
        rows.append({"ef_search": ef, "queries_per_s": round(len(queries) / (time.perf_counter() - t), 1)})
    conn.send({"rss_after_imports_mb": round(base, 1), "load_s": round(load_s, 2), "rows": rows,
               "rss_after_search_mb": round(_proc_status_mb("VmRSS"), 1),
               "peak_rss_mb": round(_proc_status_mb("VmHWM"), 1)})


def fresh_process_search(path: Path, queries: np.ndarray, efs) -> dict:
    """What a process that only loads and searches the index uses (the build's memory aside)."""
    import multiprocessing as mp

    qfile = path.parent / "queries.npy"
    np.save(qfile, np.asarray(queries, dtype=np.float32))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_search_in_child, args=(str(path), str(qfile), list(efs), child))
    proc.start()
    result = parent.recv()
    proc.join()
    print(f"  fresh process: index opened in {result['load_s']} s; RSS {result['rss_after_imports_mb']:,.0f} MB after imports, "
          f"{result['rss_after_search_mb']:,.0f} MB after the searches, {result['peak_rss_mb']:,.0f} MB peak; " + ", ".join(f"efSearch {r['ef_search']}: {r['queries_per_s']:,.0f} q/s"
                                                          for r in result["rows"]))
    return result


def own_entity(found, truth, k: int) -> float:
    """Share of queries whose own entity is among the first `k` results."""
    return float(np.mean([t in {r for r, _ in f[:k]} for f, t in zip(found, truth)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kb", type=Path)
    ap.add_argument("--dev", type=Path)
    ap.add_argument("--labels", nargs="*", default=None)
    ap.add_argument("--encoders", nargs="+", default=[""], help='encoders to compare ("" = embedded MiniLM)')
    ap.add_argument("--k", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    ap.add_argument("--scale", type=int, default=0, help="synthetic names for the ANN benchmark")
    ap.add_argument("--names", type=int, default=0, help="synthetic names embedded by the encoder")
    ap.add_argument("--cache", type=Path, default=None, help="vectors of --names kept here (.npy)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--hnsw-m", type=int, default=32, help="HNSW graph degree (the index's default: 32)")
    ap.add_argument("--ef-construction", type=int, default=80, help="HNSW efConstruction (the index's default: 80)")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    if args.scale or args.names:
        result = scale_mode(args)
    elif args.kb and args.dev:
        result = dev_mode(args)
    else:
        ap.error("give --kb and --dev, or --scale N")
    write_json(args.output, result)


if __name__ == "__main__":
    main()
