"""Speed of `entlink_relations` readers beside the encoder floor, interleaved in one process.

For each reader pipeline (gold entities: `entities = "doc"`), `nlp.pipe` over the dev documents,
and the encoder floor (the embedded MiniLM alone over the same texts, in the reader's default
inference precision, as `bench/relations.py` measures it); every system once per round, the
fastest of `--repeats` rounds counts (the machine is shared; the rounds interleave the systems so
that a disturbance hits all of them alike). Prints words/s and each reader's multiple of the floor.

    python bench/relations_speed.py corpus/conll04_dev.spacy \
        descriptions=training/relations_conll04/model-best names=training/relations_conll04_names/model-best
"""

import argparse
import json
import sys
import time
from pathlib import Path

import spacy
import torch
from spacy.tokens import DocBin

sys.path.insert(0, str(Path(__file__).parent))
from relations import PairwiseBaseline, encoder_floor, with_ents  # noqa: E402

from spacy_entlink.models.hf import inference_precision  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dev", type=Path, help="dev .spacy file with gold entities")
    ap.add_argument("readers", nargs="+", help="NAME=PIPELINE pairs")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--precision", default="auto", choices=["float32", "bfloat16", "auto"],
                    help="the floor's inference precision (the readers use their component setting)")
    ap.add_argument("--output", type=Path)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    nlps = {}
    for item in args.readers:
        name, _, path = item.partition("=")
        if not path:
            ap.error(f"{item!r}: expected NAME=PIPELINE")
        nlps[name] = spacy.load(path)
        nlps[name].get_pipe("entlink_relations").cfg["entities"] = "doc"
    first = next(iter(nlps.values()))
    gold = list(DocBin(store_user_data=True).from_disk(args.dev).get_docs(first.vocab))
    words = sum(len(d) for d in gold)
    floor_model = PairwiseBaseline("", ["none"])
    best = {}
    for rnd in range(args.repeats):
        for name, nlp in nlps.items():
            docs = [with_ents(d, d.ents) for d in gold]
            t = time.perf_counter()
            list(nlp.pipe(docs))
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
        with inference_precision(args.precision, torch.device("cpu")):
            best["floor"] = min(best.get("floor", float("inf")), encoder_floor(floor_model, gold))
        print(f"round {rnd + 1}: " + ", ".join(f"{k} {words / v:,.0f}" for k, v in best.items()) + " words/s",
              flush=True)
    result = {"docs": len(gold), "words": words, "words_per_s": {k: words / v for k, v in best.items()}}
    result["x_floor"] = {k: result["words_per_s"][k] / result["words_per_s"]["floor"] for k in nlps}
    print(json.dumps(result, indent=1))
    if args.output:
        args.output.write_text(json.dumps(result, indent=1), encoding="utf8")


if __name__ == "__main__":
    main()
