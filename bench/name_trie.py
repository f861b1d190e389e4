"""Name trie at scale: build time, disk size, peak RSS and per-step lookup time of the linker's
`NameTrie` (marisa-trie + numpy child table), beside a nested Python-dict trie, on synthetic
names tokenised with the embedded MiniLM tokenizer. Each structure is built in its own
subprocess, so the peak RSS of one does not hide in the other's.

    python bench/name_trie.py --sizes 1000000 5000000 --output metrics/bench_name_trie.json
"""

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

from _output import write_json  # bench/_output.py (bench/ is on sys.path when a script runs)


def synthetic_names(n: int, seed: int = 0) -> List[str]:
    from transformers import AutoTokenizer

    from spacy_entlink.models.hf import embedded_model_path

    vocab = AutoTokenizer.from_pretrained(embedded_model_path()).get_vocab()
    words = sorted(w for w in vocab if w.isalpha() and len(w) >= 3)
    rng = random.Random(seed)
    names = set()
    while len(names) < n:
        names.add(" ".join(rng.choice(words) for _ in range(rng.choice((2, 3, 3, 4)))))
    return sorted(names)


def tokenize(names: List[str]):
    from transformers import AutoTokenizer

    from spacy_entlink.models.hf import embedded_model_path

    tok = AutoTokenizer.from_pretrained(embedded_model_path())
    eos = tok.sep_token_id
    out = []
    for i in range(0, len(names), 100_000):
        enc = tok(names[i : i + 100_000], add_special_tokens=False)["input_ids"]
        out.extend(ids + [eos] for ids in enc)
    return out, eos


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_child(folder: str) -> None:
    """RSS of a loaded (memory-mapped) trie before and after 2,000 decoding walks."""
    from spacy_entlink.linking.name_trie import NameTrie

    base = current_rss_mb()
    t = time.perf_counter()
    trie = NameTrie(folder)
    load_s = time.perf_counter() - t
    loaded = current_rss_mb()
    rng = random.Random(2)
    for _ in range(2000):
        node = 0
        for tok in trie.sequence(rng.randrange(len(trie))):
            trie.children(node)
            node = trie.step(node, tok)
    print(json.dumps({"load_s": load_s, "rss_loaded_mb": loaded - base, "rss_after_walks_mb": current_rss_mb() - base}))


def child(kind: str, n: int, folder: str) -> None:
    names = synthetic_names(n)
    seqs, eos = tokenize(names)
    del names
    base = peak_rss_mb()
    rng = random.Random(1)
    probes = [seqs[rng.randrange(len(seqs))] for _ in range(2000)]
    t = time.perf_counter()
    if kind == "marisa":
        from spacy_entlink.linking.name_trie import NameTrie

        trie = NameTrie.build(seqs, list(range(len(seqs))), folder, n_entities=len(seqs), eos_token_id=eos)
        build = time.perf_counter() - t
        del seqs
        disk = sum(f.stat().st_size for f in Path(folder).iterdir())
        t = time.perf_counter()
        steps = 0
        for p in probes:  # one step per token, as constrained decoding does
            node = 0
            for tok in p:
                trie.children(node)
                node = trie.step(node, tok)
                steps += 1
        step_us = (time.perf_counter() - t) / steps * 1e6
    else:
        root: dict = {}
        for s in seqs:
            node = root
            for tok in s:
                node = node.setdefault(tok, {})
        build = time.perf_counter() - t
        del seqs
        disk = float("nan")
        t = time.perf_counter()
        steps = 0
        for p in probes:
            node = root
            for tok in p:
                list(node)
                node = node[tok]
                steps += 1
        step_us = (time.perf_counter() - t) / steps * 1e6
    print(json.dumps({"kind": kind, "names": n, "build_s": build, "disk_mb": disk / 2**20,
                      "peak_rss_mb": peak_rss_mb(), "rss_before_build_mb": base, "step_us": step_us}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--kinds", nargs="+", default=["marisa", "dict"])
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child[0] == "load":
            load_child(args.child[2])
        else:
            child(args.child[0], int(args.child[1]), args.child[2])
        return
    rows = []
    for n in args.sizes:
        for kind in args.kinds:
            with tempfile.TemporaryDirectory() as tmp:
                res = subprocess.run([sys.executable, __file__, "--child", kind, str(n), tmp], capture_output=True, text=True)
                if res.returncode != 0:
                    print(res.stderr[-2000:], file=sys.stderr)
                    rows.append({"kind": kind, "names": n, "error": res.stderr.strip().splitlines()[-1:]})
                    continue
                row = json.loads(res.stdout.strip().splitlines()[-1])
                if kind == "marisa":
                    res = subprocess.run([sys.executable, __file__, "--child", "load", str(n), tmp],
                                         capture_output=True, text=True)
                    if res.returncode == 0:
                        row.update(json.loads(res.stdout.strip().splitlines()[-1]))
                        print(f"        loaded: {row['load_s'] * 1000:.0f} ms, RSS +{row['rss_loaded_mb']:.1f} MB, "
                              f"+{row['rss_after_walks_mb']:.1f} MB after 2,000 random name walks")
            rows.append(row)
            print(f"{kind:<7} {n:>10,} names: build {row['build_s']:7.1f} s   disk {row['disk_mb']:8.1f} MB   "
                  f"peak RSS {row['peak_rss_mb']:8.0f} MB (tokenised names alone {row['rss_before_build_mb']:.0f} MB)"
                  f"   step {row['step_us']:.2f} µs")
    write_json(args.output, rows)


if __name__ == "__main__":
    main()
