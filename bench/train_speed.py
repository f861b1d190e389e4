"""Training speed of a torch-backed component under each `train_precision`, side by side.

Builds the pipeline of a training config the way `spacy train` does (`init_nlp`, the config's
`[training.optimizer]` and batcher), then steps it on the same training batches under each
precision in turn: batch i is updated once per precision, one after the other, so that the
model, the batch and any disturbance of the shared machine are the same for all of them. The
first `--warmup` batches are not timed. Prints seconds per step and training words/s per
precision, and each one's multiple of float32.

    python bench/train_speed.py configs/relations_cid.cfg --steps 20 \
        --paths.train corpus/bc5cdr_train_fit.spacy --paths.dev corpus/bc5cdr_train_cal.spacy
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch
from spacy import util
from spacy.cli._util import parse_config_overrides
from spacy.training.initialize import init_nlp
from thinc.api import fix_random_seed

sys.path.insert(0, str(Path(__file__).parent))
from _output import torch_devices, use_gpu, write_json  # noqa: E402

from spacy_entlink.models.hf import PRECISIONS, inference_dtype  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--component", default=None, help="the component to time (default: the config's first torch pipe)")
    ap.add_argument("--precisions", default="float32,bfloat16", help=f"comma-separated, from {', '.join(PRECISIONS)}")
    ap.add_argument("--steps", type=int, default=20, help="timed batches per precision")
    ap.add_argument("--warmup", type=int, default=2, help="batches per precision before timing")
    ap.add_argument("--gpu-id", type=int, default=-1)
    ap.add_argument("--output", type=Path)
    args, rest = ap.parse_known_args()
    precisions = args.precisions.split(",")
    for p in precisions:
        if p not in PRECISIONS:
            ap.error(f"--precisions: {p!r} is not one of {', '.join(PRECISIONS)}")
    overrides = parse_config_overrides(rest)
    where = use_gpu(args.gpu_id)
    config = util.load_config(args.config, overrides=overrides, interpolate=False)
    nlp = init_nlp(config, use_gpu=args.gpu_id)
    fix_random_seed(0)
    resolved = nlp.config.interpolate()
    T = util.registry.resolve(resolved["training"], schema=None)
    train_corpus, _ = util.resolve_dot_names(resolved, [T["train_corpus"], T["dev_corpus"]])
    optimizer = T["optimizer"]
    name = args.component or next(n for n, p in nlp.pipeline if hasattr(p, "train_precision"))
    pipe = nlp.get_pipe(name)
    device = next(iter(pipe.devices.values()))
    batches = T["batcher"](train_corpus(nlp))
    seconds = {p: 0.0 for p in precisions}
    words = {p: 0 for p in precisions}
    losses = {p: 0.0 for p in precisions}
    for i, batch in enumerate(itertools.islice(batches, args.warmup + args.steps)):
        n_words = sum(len(eg.reference) for eg in batch)
        for p in precisions:
            pipe.cfg["train_precision"] = p
            step_losses: dict = {}
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            nlp.update(batch, sgd=optimizer, losses=step_losses, exclude=[n for n, _ in nlp.pipeline if n != name])
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                seconds[p] += time.perf_counter() - t
                words[p] += n_words
                losses[p] += step_losses.get(name, 0.0)
        if i >= args.warmup:
            print(f"step {i + 1 - args.warmup}: " + ", ".join(f"{p} {seconds[p] / (i + 1 - args.warmup):.2f} s"
                                                               for p in precisions), flush=True)
    base = seconds[precisions[0]]
    rows = {p: {"autocast_dtype": str(inference_dtype(p, device)).replace("torch.", ""),
                "seconds_per_step": seconds[p] / args.steps, "words_per_second": words[p] / seconds[p],
                "mean_loss": losses[p] / args.steps, f"speedup_vs_{precisions[0]}": base / seconds[p]}
            for p in precisions}
    print(f"{name} on {where} ({device}), {args.steps} steps of {args.config} after {args.warmup} warm-up:")
    for p, r in rows.items():
        print(f"  {p:9s} ({r['autocast_dtype']}): {r['seconds_per_step']:.2f} s/step, {r['words_per_second']:,.0f} words/s, "
              f"{r[f'speedup_vs_{precisions[0]}']:.2f}x, mean loss {r['mean_loss']:.4f}")
    write_json(args.output, {"config": str(args.config), "overrides": overrides, "component": name, "device": where,
                             "torch_devices": torch_devices(nlp), "steps": args.steps, "warmup": args.warmup,
                             "threads": torch.get_num_threads(), "precisions": rows})


if __name__ == "__main__":
    main()
