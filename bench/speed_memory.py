"""Speed and memory of `entlink_dictionary` against spaCy's PhraseMatcher and brute-force rapidfuzz.

Two dictionaries: CTD MEDIC and N synthetic entities (default 10^6, ~2 aliases each). For each:

- KB build time, peak RSS of the build, KB folder size, KB load time (`from_disk` in a fresh
  process);
- words/second of `entlink_dictionary` exact only, exact+fuzzy and exact+fuzzy+abbreviations
  over the BC5CDR development abstracts (synthetic names are inserted into the texts for the
  synthetic dictionary), and the peak RSS of the process that loads the KB and annotates;
- the same for spaCy's `PhraseMatcher(attr="LOWER")` over the same names and aliases, with
  `spacy.util.filter_spans` as longest-span resolution;
- queries/second of `kb.fuzzy_search(key, 2)` against brute-force
  `rapidfuzz.process.extractOne(..., scorer=Levenshtein.distance, score_cutoff=2)`, and
  whether the two agree.

Every measurement runs in its own subprocess (`python speed_memory.py --worker ...`), so
each peak RSS (`ru_maxrss`) belongs to one configuration only. Texts and name lists are
handed to the workers through files in a temporary work directory, never the repository.

    python bench/speed_memory.py --output bench_speed.json          # full run (~15 min, 2 cores)
    python bench/speed_memory.py --quick                            # 10^5 synthetic entities
"""

import argparse
import gc
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

MEDIC = "/work/shared/data/ctd_medic/CTD_diseases.tsv.gz"
BC5CDR_DEV = "/work/shared/data/bc5cdr/CDR_DevelopmentSet.PubTator.txt"
RESULT_TAG = "@@RESULT "

ENTLINK_CONFIGS = {
    "exact": {"fuzzy": False, "abbreviations": False},
    "exact+fuzzy": {"fuzzy": True, "abbreviations": False},
    "exact+fuzzy+abbr": {"fuzzy": True, "abbreviations": True},
}

# Real words mixed into synthetic names, so that the text's words also occur in the KB
# vocabulary (as in any large real dictionary) and the matcher has to try prefixes there.
COMMON_WORDS = """
acute chronic disease syndrome disorder deficiency type of the and in with to by for
cell cells protein receptor gene factor virus infection tumor cancer carcinoma injury
failure heart kidney renal liver hepatic cardiac brain lung pulmonary blood serum
induced associated related primary secondary familial congenital hereditary juvenile
adult infantile early late onset severe mild progressive malignant benign toxic
muscle nerve bone skin eye ear nose neural spinal cord artery vein vascular
alpha beta gamma delta kinase inhibitor channel pathway complex family member
acid amino human mouse rat group factor level activity dose patients treatment
drug therapy effect effects response high low increased decreased normal
""".split()

ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
          "br", "cr", "dr", "tr", "st", "ph", "th", "ch", "gl", "pl", "sk", "sp", "qu", "x", ""]
NUCLEI = ["a", "e", "i", "o", "u", "y", "ae", "ia", "ou", "ei", "io"]
CODAS = ["", "", "", "n", "r", "s", "l", "x", "m", "t", "nd", "st", "rk"]


# ----------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------
def bc5cdr_texts(path: str = BC5CDR_DEV) -> List[str]:
    """Title and abstract of each BC5CDR document, joined by a space."""
    texts, cur = [], []
    with open(path, encoding="utf8") as f:
        for line in f:
            parts = line.rstrip("\n").split("|", 2)
            if len(parts) == 3 and parts[1] in ("t", "a"):
                cur.append(parts[2])
                if parts[1] == "a":
                    texts.append(" ".join(cur))
                    cur = []
    return texts


def _pseudo_words(rng: random.Random, n: int) -> List[str]:
    seen, out = set(), []
    while len(out) < n:
        w = "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS)
                    for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if len(w) >= 4 and w not in seen:
            seen.add(w)
            out.append(w)
    return out


class SyntheticNames:
    """Deterministic multiword names made of pseudo-words (Zipf-like) and common words."""

    def __init__(self, seed: int, vocab_size: int = 200_000):
        self.rng = random.Random(seed)
        self.vocab = _pseudo_words(self.rng, vocab_size)
        # Zipf-like frequencies: cumulative weights 1/rank^0.9.
        acc, cum = 0.0, []
        for r in range(1, vocab_size + 1):
            acc += r ** -0.9
            cum.append(acc)
        self.cum = cum

    def word(self) -> str:
        return self.rng.choices(self.vocab, cum_weights=self.cum)[0]

    def name(self) -> str:
        rng = self.rng
        n = rng.choices((1, 2, 3, 4, 5), weights=(15, 35, 28, 15, 7))[0]
        words = [self.word() for _ in range(n)]
        if n > 1 and rng.random() < 0.5:
            words[rng.randrange(n)] = rng.choice(COMMON_WORDS)
        if rng.random() < 0.5:
            words[0] = words[0].capitalize()
        if rng.random() < 0.05:
            words.append(str(rng.randint(1, 12)))
        return " ".join(words)

    def alias(self, name: str) -> str:
        rng = self.rng
        words = name.split(" ")
        r = rng.random()
        if r < 0.45:
            return self.name()  # an unrelated synonym
        if r < 0.75 and len(words) > 1:
            words = list(words)
            words[rng.randrange(len(words))] = self.word()  # a variant
            return " ".join(words)
        if r < 0.85 and len(words) > 1:
            return "".join(w[0] for w in words if w[0].isalpha()).upper()  # an acronym
        return name.lower() + " " + rng.choice(("disease", "syndrome", "protein", "gene", "type 2"))


def synthetic_records(n: int, aliases_per_entity: float, seed: int):
    from spacy_entlink.kb import EntityRecord

    gen = SyntheticNames(seed)
    rng = gen.rng
    a = aliases_per_entity
    lo = max(0, int(a) - 1)
    out = []
    for i in range(n):
        name = gen.name()
        k = rng.choice((lo, int(a), int(a) + 1)) if a >= 1 else int(rng.random() < a)
        aliases = [gen.alias(name) for _ in range(k)]
        out.append(EntityRecord(id=f"SYN:{i:08d}", name=name, aliases=aliases, type="Synthetic",
                                prior=rng.random()))
    return out


def _typo(rng: random.Random, s: str) -> str:
    """One substitution inside the longest word (a fuzzy hit for fuzzy matching)."""
    words = s.split(" ")
    k = max(range(len(words)), key=lambda j: len(words[j]))
    w = words[k]
    if len(w) < 6:
        return s
    p = rng.randrange(1, len(w) - 1)
    c = rng.choice([x for x in "aeiourstnl" if x != w[p].lower()])
    words[k] = w[:p] + c + w[p + 1 :]
    return " ".join(words)


def insert_names(texts: List[str], surfaces: List[str], per_doc: int, seed: int) -> List[str]:
    """Insert `per_doc` dictionary names (every fifth with a typo) between words of each text."""
    rng = random.Random(seed)
    out = []
    for t in texts:
        words = t.split(" ")
        for j in range(per_doc):
            s = rng.choice(surfaces)
            if j % 5 == 4:
                s = _typo(rng, s)
            words.insert(rng.randrange(1, len(words)), s)
        out.append(" ".join(words))
    return out


def fuzzy_queries(keys: List[str], texts: List[str], n: int, seed: int, normalize) -> List[str]:
    """n normalised query strings: half KB keys with 1-2 edits, half word n-grams of the texts."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    long_keys = [k for k in keys if len(k) >= 8]
    out = []
    while len(out) < n // 2 and long_keys:
        k = list(rng.choice(long_keys))
        for _ in range(rng.choice((1, 2))):
            p = rng.randrange(len(k))
            op = rng.random()
            if op < 0.5:
                k[p] = rng.choice(letters)
            elif op < 0.75:
                k.insert(p, rng.choice(letters))
            elif len(k) > 8:
                del k[p]
        out.append("".join(k))
    while len(out) < n:
        words = normalize(rng.choice(texts)).split(" ")
        m = rng.choice((1, 2, 3))
        if len(words) <= m:
            continue
        i = rng.randrange(len(words) - m)
        q = " ".join(words[i : i + m])
        if len(q) >= 6:
            out.append(q)
    return out


# ----------------------------------------------------------------------------------------
# workers (each runs in a fresh process and prints one JSON result)
# ----------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 2**20


def _docs(nlp, texts_file: str, first: int, count: Optional[int]):
    texts = json.loads(Path(texts_file).read_text(encoding="utf8"))
    texts = texts[first:] if count is None else texts[first : first + count]
    docs = [nlp.make_doc(t) for t in texts]
    words = sum(1 for d in docs for t in d if not t.is_space)
    return docs, words


def worker_prepare(a: Dict[str, Any]) -> Dict[str, Any]:
    """Read or generate the records, write the surfaces and texts, build the KB (timed)."""
    from spacy_entlink.kb import KnowledgeBase, read_source

    t0 = time.perf_counter()
    if a["dict"] == "medic":
        records = list(read_source(a["medic"], "medic"))
    else:
        records = synthetic_records(a["n"], a["aliases_per_entity"], a["seed"])
    read_s = time.perf_counter() - t0
    surfaces = list(dict.fromkeys(s for r in records for s in [r.name, *r.aliases] if s.strip()))
    Path(a["surfaces"]).write_text("\n".join(surfaces), encoding="utf8")
    texts = bc5cdr_texts(a["corpus"])
    if a["dict"] != "medic":
        texts = insert_names(texts, surfaces, a["insert_per_doc"], a["seed"] + 1)
    Path(a["texts"]).write_text(json.dumps(texts), encoding="utf8")
    n_entities = len(records)
    n_aliases = sum(len(r.aliases) for r in records)
    rss_before = _rss_now_mb()
    gc.collect()
    t0 = time.perf_counter()
    kb = KnowledgeBase.build(records, a["kb"], fuzzy_index=True)
    build_s = time.perf_counter() - t0
    return {
        "read_or_generate_s": read_s, "build_s": build_s, "build_peak_rss_mb": _peak_rss_mb(),
        "rss_before_build_mb": rss_before, "kb_mb": _folder_mb(Path(a["kb"])),
        "n_entities": n_entities, "n_raw_aliases": n_aliases, "n_surfaces": len(surfaces),
        "n_alias_keys": kb.n_aliases, "n_texts": len(texts),
    }


def worker_baseline_rss(a: Dict[str, Any]) -> Dict[str, Any]:
    """RSS of Python + spaCy + the made docs alone, the floor under every other worker."""
    import spacy
    import spacy_entlink  # noqa: F401

    nlp = spacy.blank("en")
    docs, words = _docs(nlp, a["texts"], 0, None)
    return {"peak_rss_mb": _peak_rss_mb(), "words": words, "docs": len(docs)}


def _time_annotation(nlp, a: Dict[str, Any], make_annotate) -> Tuple[List, int, float, float]:
    """Time `make_annotate()` over the documents, a["repeats"] times, each pass with a new
    annotator (no cache carried over from an earlier pass over the same texts) warmed up on
    the first a["warmup"] docs and fresh Docs: (docs, words, wall s, CPU s) of the fastest
    pass (the machine is shared; the fastest pass is the least disturbed one)."""
    best = None
    for _ in range(max(1, a.get("repeats", 1))):
        annotate = make_annotate()
        warm, _ = _docs(nlp, a["texts"], 0, a["warmup"])
        for doc in warm:
            annotate(doc)
        docs, words = _docs(nlp, a["texts"], a["warmup"], a.get("max_docs"))
        t0, c0 = time.perf_counter(), time.process_time()
        for doc in docs:
            annotate(doc)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[2]:
            best = (docs, words, wall, cpu)
    return best


def worker_entlink(a: Dict[str, Any]) -> Dict[str, Any]:
    import spacy
    from spacy_entlink.kb import KnowledgeBase

    rss0 = _rss_now_mb()
    t0 = time.perf_counter()
    kb = KnowledgeBase.from_disk(a["kb"])
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_now_mb()
    nlp = spacy.blank("en")
    setups: List[float] = []

    def make_component():
        t0 = time.perf_counter()
        if "entlink_dictionary" in nlp.pipe_names:
            nlp.remove_pipe("entlink_dictionary")
        comp = nlp.add_pipe("entlink_dictionary", config={**ENTLINK_CONFIGS[a["config"]], "fusion": "dictionary_only"})
        comp.set_kb(kb)
        setups.append(time.perf_counter() - t0)
        return comp

    docs, words, secs, cpu = _time_annotation(nlp, a, make_component)
    comp = nlp.get_pipe("entlink_dictionary")
    setup_s = setups[0]
    return {
        "load_s": load_s, "setup_s": setup_s, "rss_before_load_mb": rss0, "rss_after_load_mb": rss_loaded,
        "docs": len(docs), "words": words, "seconds": secs, "words_per_s": words / secs,
        "cpu_seconds": cpu, "words_per_cpu_s": words / cpu,
        "ents": sum(len(d.ents) for d in docs), "candidates": sum(len(d.spans[comp.cfg["spans_key"]]) for d in docs),
        "peak_rss_mb": _peak_rss_mb(), "output_sha256": _digest(docs, comp.cfg["spans_key"]),
        "compiled": _compiled_paths(kb),
    }


def _digest(docs, key: str) -> str:
    """SHA-256 of everything the component wrote: entities with KB ids, candidate spans with
    their scores, sources and candidates."""
    import hashlib

    h = hashlib.sha256()
    for doc in docs:
        h.update(repr([(e.start_char, e.end_char, e.label_, e.kb_id_) for e in doc.ents]).encode())
        h.update(repr([(s.start_char, s.end_char, s.label_, s.kb_id_, round(s._.entlink_score, 9),
                        s._.entlink_source, tuple(s._.entlink_candidates)) for s in doc.spans[key]]).encode())
    return h.hexdigest()


def _compiled_paths(kb) -> Dict[str, bool]:
    grams = kb._grams
    from spacy_entlink.kb import grams as grams_module

    return {"exact": kb.word_index is not None,
            "fuzzy": grams is not None and grams.key_text is not None and grams_module._scan is not None}


def worker_phrasematcher(a: Dict[str, Any]) -> Dict[str, Any]:
    import spacy
    from spacy.matcher import PhraseMatcher
    from spacy.util import filter_spans

    nlp = spacy.blank("en")
    names = Path(a["surfaces"]).read_text(encoding="utf8").split("\n")
    rss0 = _rss_now_mb()
    t0 = time.perf_counter()
    matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
    batch: List = []
    for doc in nlp.tokenizer.pipe(names, batch_size=10_000):
        batch.append(doc)
        if len(batch) >= 50_000:
            matcher.add("ENTITY", batch)
            batch = []
    if batch:
        matcher.add("ENTITY", batch)
    del batch
    build_s = time.perf_counter() - t0
    rss_built = _rss_now_mb()

    def annotate(doc):
        spans = matcher(doc, as_spans=True)
        doc.ents = filter_spans(spans)
        return doc

    docs, words, secs, cpu = _time_annotation(nlp, a, lambda: annotate)
    return {
        "build_s": build_s, "patterns": len(names), "rss_before_build_mb": rss0, "rss_after_build_mb": rss_built,
        "docs": len(docs), "words": words, "seconds": secs, "words_per_s": words / secs,
        "cpu_seconds": cpu, "words_per_cpu_s": words / cpu,
        "ents": sum(len(d.ents) for d in docs), "peak_rss_mb": _peak_rss_mb(),
    }


def worker_fuzzy_search(a: Dict[str, Any]) -> Dict[str, Any]:
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    from spacy_entlink.kb import KnowledgeBase

    kb = KnowledgeBase.from_disk(a["kb"])
    keys = [kb.alias_key(r) for r in range(kb.n_aliases)]
    texts = json.loads(Path(a["texts"]).read_text(encoding="utf8"))
    queries = fuzzy_queries(keys, texts, a["n_queries"], a["seed"] + 2, kb.normalize)
    d = a["max_edits"]
    for q in fuzzy_queries(keys, texts, 10, a["seed"] + 3, kb.normalize):
        kb.fuzzy_search(q, d)  # warm up the memory-mapped pages

    t0 = time.perf_counter()
    ours = [kb.fuzzy_search(q, d) for q in queries]
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = [process.extractOne(q, keys, scorer=Levenshtein.distance, score_cutoff=d) for q in queries]
    theirs_s = time.perf_counter() - t0

    # Agreement: same best distance (or both none), and rapidfuzz's choice among our hits.
    agree_best = agree_choice = found = 0
    for q, o, t in zip(queries, ours, theirs):
        ob = o[0][1] if o else None
        tb = t[1] if t else None
        found += t is not None
        if ob == tb:
            agree_best += 1
            if t is None or t[0] in {keys[r] for r, _, _ in kb.fuzzy_search(q, d, limit=10**9)}:
                agree_choice += 1
    # Full result sets for a subsample: every key within d edits, both ways.
    n_sets = min(a["n_set_check"], len(queries))
    agree_sets = 0
    for q in queries[:n_sets]:
        mine = {keys[r] for r, _, _ in kb.fuzzy_search(q, d, limit=10**9)}
        brute = {m[0] for m in process.extract(q, keys, scorer=Levenshtein.distance, score_cutoff=d, limit=None)}
        agree_sets += mine == brute
    n = len(queries)
    return {
        "queries": n, "max_edits": d, "keys": len(keys), "with_hit": found,
        "kb_fuzzy_search_qps": n / ours_s, "rapidfuzz_extractone_qps": n / theirs_s,
        "agree_best_distance": agree_best, "agree_choice_in_results": agree_choice,
        "full_set_checked": n_sets, "full_set_agree": agree_sets, "peak_rss_mb": _peak_rss_mb(),
    }


WORKERS = {
    "prepare": worker_prepare, "baseline_rss": worker_baseline_rss, "entlink": worker_entlink,
    "phrasematcher": worker_phrasematcher, "fuzzy_search": worker_fuzzy_search,
}


# ----------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------
def run_worker(kind: str, args: Dict[str, Any], timeout: Optional[float] = None, pure_python: bool = False) -> Dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--worker-args", json.dumps(args)]
    env = {**os.environ, "SPACY_ENTLINK_PURE_PYTHON": "1" if pure_python else ""}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise RuntimeError(f"worker {kind} failed with exit status {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG) :])
            res["process_wall_s"] = wall
            return res
    raise RuntimeError(f"worker {kind} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bench_dictionary(label: str, prep: Dict[str, Any], opts: argparse.Namespace, work: Path) -> Dict[str, Any]:
    base = {"kb": str(work / f"kb_{label}"), "texts": str(work / f"texts_{label}.json"),
            "surfaces": str(work / f"surfaces_{label}.txt"), "corpus": opts.corpus, "seed": opts.seed,
            "repeats": opts.repeats}
    res: Dict[str, Any] = {"dictionary": label}
    _log(f"{label}: reading/generating records and building the KB")
    res["prepare"] = run_worker("prepare", {**base, **prep})
    p = res["prepare"]
    _log(f"{label}: {p['n_entities']:,} entities, {p['n_alias_keys']:,} alias keys, "
         f"built in {p['build_s']:.1f} s, {p['kb_mb']:.0f} MB")
    res["baseline_rss"] = run_worker("baseline_rss", base)
    res["entlink"], res["entlink_python"] = {}, {}
    for cfg in ENTLINK_CONFIGS:
        for pure, store in ((False, res["entlink"]), (True, res["entlink_python"])):
            max_docs = None if cfg == "exact" else (opts.python_fuzzy_docs if pure else opts.fuzzy_docs)
            r = run_worker("entlink", {**base, "config": cfg, "warmup": opts.warmup, "max_docs": max_docs},
                           pure_python=pure)
            store[cfg] = r
            _log(f"{label}: entlink {cfg}{' (pure Python)' if pure else ''}: {r['words_per_s']:,.0f} words/s over "
                 f"{r['words']:,} words, load {r['load_s'] * 1000:.0f} ms, peak RSS {r['peak_rss_mb']:.0f} MB")
        if res["entlink"][cfg]["docs"] != res["entlink_python"][cfg]["docs"]:  # compare the same documents
            r = run_worker("entlink", {**base, "config": cfg, "warmup": opts.warmup,
                                       "max_docs": res["entlink_python"][cfg]["docs"]})
            res["entlink"][cfg]["same_docs_sha256"] = r["output_sha256"]
        else:
            res["entlink"][cfg]["same_docs_sha256"] = res["entlink"][cfg]["output_sha256"]
    r = run_worker("phrasematcher", {**base, "warmup": opts.warmup, "max_docs": None})
    res["phrasematcher"] = r
    _log(f"{label}: PhraseMatcher: built in {r['build_s']:.1f} s, {r['words_per_s']:,.0f} words/s, "
         f"peak RSS {r['peak_rss_mb']:.0f} MB")
    r = run_worker("fuzzy_search", {**base, "n_queries": opts.fuzzy_queries, "max_edits": 2,
                                    "n_set_check": opts.set_check})
    res["fuzzy_search"] = r
    _log(f"{label}: fuzzy_search {r['kb_fuzzy_search_qps']:,.1f} q/s vs rapidfuzz extractOne "
         f"{r['rapidfuzz_extractone_qps']:,.1f} q/s; best distance agrees {r['agree_best_distance']}/{r['queries']}")
    return res


def machine() -> Dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import marisa_trie  # noqa: F401
    import numpy
    import rapidfuzz
    import spacy

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "spacy": spacy.__version__, "rapidfuzz": rapidfuzz.__version__, "numpy": numpy.__version__,
            "platform": platform.platform()}


def _f(x: float, nd: int = 1) -> str:
    return f"{x:,.{nd}f}"


def tables(results: Dict[str, Any]) -> str:
    """Markdown tables of a result dict."""
    out = []
    dicts = results["dictionaries"]
    out.append("| | " + " | ".join(d["label"] for d in dicts) + " |")
    out.append("|---|" + "---:|" * len(dicts))
    rows = [
        ("entities", lambda d: f"{d['prepare']['n_entities']:,}"),
        ("normalised alias keys", lambda d: f"{d['prepare']['n_alias_keys']:,}"),
        ("KB build time (s)", lambda d: _f(d["prepare"]["build_s"])),
        ("KB build peak RSS (MB)", lambda d: _f(d["prepare"]["build_peak_rss_mb"], 0)),
        ("KB folder size (MB)", lambda d: _f(d["prepare"]["kb_mb"])),
        ("KB load time, `from_disk` in a fresh process (ms, slowest of 3)",
         lambda d: _f(max(r["load_s"] for r in d["entlink"].values()) * 1000)),
        ("KB load + `set_kb`, fresh process (ms, slowest of 3)",
         lambda d: _f(max(r["load_s"] + r["setup_s"] for r in d["entlink"].values()) * 1000)),
        ("PhraseMatcher build time (s)", lambda d: _f(d["phrasematcher"]["build_s"])),
    ]
    for name, get in rows:
        out.append(f"| {name} | " + " | ".join(get(d) for d in dicts) + " |")
    out.append("")
    out.append("| dictionary | matcher | docs | words | words/s (wall) | words/s (CPU) | x PhraseMatcher (CPU) | "
               "peak RSS (MB) | entities found | output = pure-Python path |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for d in dicts:
        pm = d["phrasematcher"]["words_per_cpu_s"]
        out.append(f"| {d['label']} | Python + spaCy + docs only (floor) | {d['baseline_rss']['docs']} | "
                   f"{d['baseline_rss']['words']:,} | | | | {_f(d['baseline_rss']['peak_rss_mb'], 0)} | | |")
        for cfg, r in d["entlink"].items():
            py = d.get("entlink_python", {}).get(cfg)
            same = ""
            if py is not None:
                same = f"{'yes' if r.get('same_docs_sha256') == py['output_sha256'] else 'NO'} ({py['docs']} docs)"
            out.append(f"| {d['label']} | entlink_dictionary {cfg} | {r['docs']} | {r['words']:,} | "
                       f"{_f(r['words_per_s'], 0)} | {_f(r['words_per_cpu_s'], 0)} | {_f(r['words_per_cpu_s'] / pm, 2)} | "
                       f"{_f(r['peak_rss_mb'], 0)} | {r['ents']:,} | {same} |")
        for cfg, r in d.get("entlink_python", {}).items():
            out.append(f"| {d['label']} | entlink_dictionary {cfg}, pure Python (`SPACY_ENTLINK_PURE_PYTHON=1`) | "
                       f"{r['docs']} | {r['words']:,} | {_f(r['words_per_s'], 0)} | {_f(r['words_per_cpu_s'], 0)} | "
                       f"{_f(r['words_per_cpu_s'] / pm, 2)} | {_f(r['peak_rss_mb'], 0)} | {r['ents']:,} | |")
        r = d["phrasematcher"]
        out.append(f"| {d['label']} | PhraseMatcher(LOWER) + filter_spans | {r['docs']} | {r['words']:,} | "
                   f"{_f(r['words_per_s'], 0)} | {_f(r['words_per_cpu_s'], 0)} | 1.00 | {_f(r['peak_rss_mb'], 0)} | "
                   f"{r['ents']:,} | |")
    out.append("")
    out.append("| dictionary | queries | `kb.fuzzy_search(q, 2)` q/s | rapidfuzz `extractOne` q/s | speed-up | "
               "queries with a hit | same best distance | rapidfuzz's choice among ours | full sets equal |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in dicts:
        r = d["fuzzy_search"]
        out.append(
            f"| {d['label']} | {r['queries']} | {_f(r['kb_fuzzy_search_qps'])} | {_f(r['rapidfuzz_extractone_qps'], 2)} | "
            f"{_f(r['kb_fuzzy_search_qps'] / r['rapidfuzz_extractone_qps'], 0)}x | {r['with_hit']} | "
            f"{r['agree_best_distance']}/{r['queries']} | {r['agree_choice_in_results']}/{r['queries']} | "
            f"{r['full_set_agree']}/{r['full_set_checked']} |")
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-synthetic", type=int, default=1_000_000, help="synthetic entities (default 10^6)")
    ap.add_argument("--aliases-per-entity", type=float, default=2.0, help="mean aliases per synthetic entity")
    ap.add_argument("--quick", action="store_true", help="10^5 synthetic entities and fewer fuzzy docs/queries")
    ap.add_argument("--medic", default=MEDIC, help="CTD_diseases.tsv.gz")
    ap.add_argument("--corpus", default=BC5CDR_DEV, help="BC5CDR PubTator file whose titles+abstracts are the texts")
    ap.add_argument("--only", choices=("medic", "synthetic"), help="benchmark one dictionary only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=5, help="docs annotated before timing (not timed)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over the documents; the fastest counts")
    ap.add_argument("--fuzzy-docs", type=int, default=495, help="docs timed for the fuzzy configurations")
    ap.add_argument("--python-fuzzy-docs", type=int, default=100,
                    help="docs timed for the fuzzy configurations on the pure-Python path (the reference)")
    ap.add_argument("--fuzzy-queries", type=int, default=200, help="queries for fuzzy_search vs rapidfuzz")
    ap.add_argument("--set-check", type=int, default=50, help="queries whose full result sets are compared")
    ap.add_argument("--insert-per-doc", type=int, default=5, help="synthetic names inserted per text")
    ap.add_argument("--workdir", help="where KBs and hand-over files go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--output", help="write the results as JSON here")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)

    if opts.worker:
        res = WORKERS[opts.worker](json.loads(opts.worker_args))
        print(RESULT_TAG + json.dumps(res), flush=True)
        return

    if opts.quick:
        if opts.n_synthetic == ap.get_default("n_synthetic"):
            opts.n_synthetic = 100_000
        opts.fuzzy_docs = min(opts.fuzzy_docs, 50)
        opts.fuzzy_queries = min(opts.fuzzy_queries, 100)
        opts.set_check = min(opts.set_check, 20)
    work = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="entlink_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results: Dict[str, Any] = {"machine": machine(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
                               "options": {k: v for k, v in vars(opts).items() if not k.startswith("worker")},
                               "loadavg_start": os.getloadavg(), "dictionaries": []}
    try:
        plan: List[Tuple[str, Dict[str, Any]]] = []
        if opts.only in (None, "medic"):
            plan.append(("medic", {"dict": "medic", "medic": opts.medic}))
        if opts.only in (None, "synthetic"):
            plan.append((f"synthetic_{opts.n_synthetic}", {
                "dict": "synthetic", "n": opts.n_synthetic, "aliases_per_entity": opts.aliases_per_entity,
                "insert_per_doc": opts.insert_per_doc}))
        for label, prep in plan:
            res = bench_dictionary(label, prep, opts, work)
            res["label"] = "CTD MEDIC" if label == "medic" else f"synthetic {opts.n_synthetic:,}"
            results["dictionaries"].append(res)
    finally:
        if not opts.keep and not opts.workdir:
            shutil.rmtree(work, ignore_errors=True)
    results["total_s"] = time.perf_counter() - t_start
    results["loadavg_end"] = os.getloadavg()
    table = tables(results)
    print(f"\nMachine: {results['machine']['cpu']}, {results['machine']['cores']} cores; "
          f"Python {results['machine']['python']}, spaCy {results['machine']['spacy']}\n")
    print(table)
    print(f"\ntotal {results['total_s']:.0f} s; load average at start {results['loadavg_start'][0]:.2f}, "
          f"at end {results['loadavg_end'][0]:.2f}")
    if opts.output:
        results["markdown"] = table
        Path(opts.output).write_text(json.dumps(results, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
