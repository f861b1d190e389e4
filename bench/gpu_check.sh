#!/usr/bin/env bash
# The GPU check of the torch components (docs/benchmarks.md, "GPU"): train the NER, the linker,
# the CID reader and the CoNLL04 reader for a few hundred steps with `spacy train --gpu-id`,
# assemble the BC5CDR chain, and run bench/pipeline.py, bench/linking.py and bench/relations.py
# on the GPU (each prints where every torch module ran), with a CPU pass of bench/pipeline.py on
# the same pipeline beside it, and bench/train_speed.py: CID reader steps in float32 and bfloat16.
#
# Needs: a CUDA build of torch, cupy for that CUDA (pip install cupy-cuda12x) and this package;
# the inputs the project workflow writes (spacy project run bc5cdr-convert, bc5cdr-kb-ner,
# bc5cdr-kb-train-aliases, conll04-convert):
#   corpus/bc5cdr_{train,dev}.spacy, corpus/bc5cdr_{train,dev}_disease.spacy,
#   corpus/conll04_{train,dev}.spacy, kb/bc5cdr, kb/medic_train
#
#   OUT=metrics/gpu bash bench/gpu_check.sh              # on the GPU machine
#   GPU=-1 STEPS=4 LIMIT=20 OUT=/tmp/gpu_dry bash bench/gpu_check.sh   # dry run on a CPU
set -euo pipefail
GPU=${GPU:-0}          # spacy train --gpu-id (-1: CPU, for a dry run)
STEPS=${STEPS:-300}    # training steps of each model
LIMIT=${LIMIT:-0}      # dev documents of bench/pipeline.py and of the evaluations, mentions of bench/linking.py (0: all)
OUT=${OUT:-metrics/gpu}
RUN=${RUN:-training/gpu_check}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUN"

python - "$GPU" <<'EOF'
import sys, torch
gpu = int(sys.argv[1])
if gpu >= 0:
    import cupy  # noqa: F401 - spaCy's GPU ops
    assert torch.cuda.is_available(), "no CUDA device visible to torch"
    print("GPU:", torch.cuda.get_device_name(gpu), "torch", torch.__version__)
else:
    print("dry run on the CPU")
EOF

dev_limit() { if [ "$LIMIT" -gt 0 ]; then echo "--corpora.dev.limit $LIMIT"; fi; }
timed() { local name=$1; shift; python scripts/timed.py "$OUT/time_$name.json" -- "$@"; }
common="--gpu-id $GPU --training.max_steps $STEPS --training.eval_frequency $STEPS"

timed ner python -m spacy train configs/ner_trf.cfg --output "$RUN/ner" $common $(dev_limit) \
  --paths.train corpus/bc5cdr_train.spacy --paths.dev corpus/bc5cdr_dev.spacy \
  --training.optimizer.learn_rate.warmup_steps 30 --training.optimizer.learn_rate.total_steps "$STEPS"
python -m spacy assemble configs/ner_trf_fusion.cfg "$RUN/ner_fused" --paths.pipeline "$RUN/ner/model-best" \
  --paths.kb kb/bc5cdr --paths.train corpus/bc5cdr_train.spacy
timed linker python -m spacy train configs/linker.cfg --output "$RUN/linker" $common \
  --paths.train corpus/bc5cdr_train_disease.spacy --paths.dev corpus/bc5cdr_dev_disease.spacy \
  --paths.kb kb/medic_train --corpora.dev.limit $([ "$LIMIT" -gt 0 ] && echo "$LIMIT" || echo 100)
timed cid python -m spacy train configs/relations_cid.cfg --output "$RUN/cid" $common $(dev_limit) \
  --paths.train corpus/bc5cdr_train.spacy --paths.dev corpus/bc5cdr_dev.spacy
timed conll04 python -m spacy train configs/relations_conll04.cfg --output "$RUN/conll04" $common $(dev_limit) \
  --paths.train corpus/conll04_train.spacy --paths.dev corpus/conll04_dev.spacy
python -m spacy assemble configs/all.cfg "$RUN/all" --paths.ner "$RUN/ner_fused" \
  --paths.linker "$RUN/linker/model-best" --paths.relations "$RUN/cid/model-best"

python bench/pipeline.py --pipeline "$RUN/all" --dev corpus/bc5cdr_dev.spacy --limit "$LIMIT" --repeat 3 \
  --gpu-id "$GPU" --output "$OUT/pipeline_gpu.json"
python bench/pipeline.py --pipeline "$RUN/all" --dev corpus/bc5cdr_dev.spacy --limit "$LIMIT" --no-shares \
  --output "$OUT/pipeline_cpu.json"
python bench/linking.py --kb kb/medic_train --train corpus/bc5cdr_train_disease.spacy \
  --dev corpus/bc5cdr_dev_disease.spacy --linker "gpu=$RUN/linker/model-best" --skip-spacy --gpu-id "$GPU" --limit "$LIMIT" \
  --output "$OUT/linking_gpu.json"
python bench/relations.py --task conll04 "$RUN/conll04/model-best" corpus/conll04_train.spacy \
  corpus/conll04_dev.spacy --skip-baseline --gpu-id "$GPU" --output "$OUT/relations_gpu.json"
python bench/train_speed.py configs/relations_cid.cfg --gpu-id "$GPU" --steps 10 --warmup 2 \
  --paths.train corpus/bc5cdr_train.spacy --paths.dev corpus/bc5cdr_dev.spacy --output "$OUT/train_speed_cid.json"
python - "$OUT" "$STEPS" <<'EOF'
import json, sys
from pathlib import Path
out, steps = Path(sys.argv[1]), int(sys.argv[2])
for name in ("ner", "linker", "cid", "conll04"):
    t = json.loads((out / f"time_{name}.json").read_text())
    print(f"{name}: {steps} steps in {t['seconds']:.0f} s (with start-up and evaluation)")
for name in ("pipeline_gpu", "pipeline_cpu"):
    r = json.loads((out / f"{name}.json").read_text())
    print(f"{name}: {r['words_per_s']:,.0f} words/s, torch modules on {r['torch_devices']}")
EOF
