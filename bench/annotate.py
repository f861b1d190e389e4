"""`annotate` at scale: generated PubMed-sized documents through a pipeline, memory over time.

Writes N synthetic abstracts (about 200-300 words, sentences built from a fixed vocabulary plus
entity names drawn from the pipeline's KB when it has one) as JSONL, runs
`python -m spacy_entlink annotate` on them in a subprocess, samples the subprocess's RSS every
second, and prints throughput and RSS at 10 %, 50 % and 100 % of the run (flat memory means the
last two are close). Baseline in the same command: `spacy.Language.pipe` over the same texts
with nothing written, to show the cost of reading, serialising and resuming bookkeeping.

    python bench/annotate.py --pipeline training/bc5cdr_dictionary_all --docs 100000 \\
        --output metrics/bench_annotate.json
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the patient patients was were treated with after before during of in and or a an study "
         "group dose doses daily weeks months increased decreased significantly observed induced "
         "associated risk clinical trial therapy administration renal hepatic cardiac effect effects "
         "adverse reported case cases mg kg rats mice model response levels serum plasma").split()


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def names_of(pipeline: Path, limit: int = 5000):
    import spacy

    nlp = spacy.load(pipeline)
    for _, pipe in nlp.pipeline:
        kb = getattr(pipe, "kb", None)
        if kb is not None:
            return [kb.get_name(r) for r in range(min(len(kb), limit))]
    return ["cisplatin", "acute renal failure", "hypertension"]


def generate(path: Path, n: int, names, seed: int = 0) -> int:
    rng = random.Random(seed)
    words = 0
    with path.open("w", encoding="utf8") as f:
        for i in range(n):
            sents = []
            for _ in range(rng.randint(9, 13)):
                toks = [rng.choice(WORDS) for _ in range(rng.randint(12, 20))]
                toks.insert(rng.randrange(len(toks)), rng.choice(names))
                sents.append(" ".join(toks).capitalize() + ".")
            text = " ".join(sents)
            words += len(text.split())
            f.write(json.dumps({"id": f"PMID{i}", "text": text}) + "\n")
    return words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n-process", type=int, default=1)
    ap.add_argument("--baseline-docs", type=int, default=2000, help="documents for the nlp.pipe baseline")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "docs.jsonl", Path(tmp) / "out.jsonl"
        words = generate(src, args.docs, names_of(args.pipeline))
        print(f"{args.docs:,} documents, {words:,} words ({words / args.docs:.0f} per document)")
        cmd = [sys.executable, "-m", "spacy_entlink", "annotate", str(args.pipeline), str(src), str(out),
               "--batch-size", str(args.batch_size), "--n-process", str(args.n_process),
               "--stats", str(Path(tmp) / "stats.json")]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples = []  # (seconds, bytes written, rss)
        while proc.poll() is None:
            samples.append((time.perf_counter() - t0, out.stat().st_size if out.exists() else 0, rss_mb(proc.pid)))
            time.sleep(1.0)
        stdout = proc.stdout.read()
        if proc.returncode != 0:
            raise SystemExit(f"annotate failed ({proc.returncode}): {stdout}")
        stats = json.loads((Path(tmp) / "stats.json").read_text())
        lines = sum(1 for _ in out.open("rb"))

        final = out.stat().st_size

        def at(frac: float) -> float:
            target = frac * final
            hits = [s for s in samples if s[1] >= target]
            return (hits[0] if hits else samples[-1])[2]

        rss = {f"{int(f * 100)}%": at(f) for f in (0.1, 0.5, 1.0)}
        print(f"annotate: {lines:,} lines, {stats['docs_per_s']:,.1f} docs/s, {words / stats['seconds']:,.0f} words/s; "
              f"RSS at 10/50/100 %: {rss['10%']:.0f} / {rss['50%']:.0f} / {rss['100%']:.0f} MB")
        import spacy

        nlp = spacy.load(args.pipeline)
        texts = [json.loads(line)["text"] for _, line in zip(range(args.baseline_docs), src.open())]
        t = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=args.batch_size):
            pass
        base_s = time.perf_counter() - t
        base_words = sum(len(x.split()) for x in texts)
        print(f"baseline nlp.pipe (no output), {len(texts):,} documents: {len(texts) / base_s:,.1f} docs/s, "
              f"{base_words / base_s:,.0f} words/s")
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps({"docs": args.docs, "words": words, "lines": lines, "stats": stats,
                                               "rss_mb": rss, "baseline_docs_per_s": len(texts) / base_s,
                                               "baseline_words_per_s": base_words / base_s}, indent=2))


if __name__ == "__main__":
    main()
