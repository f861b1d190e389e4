"""Probe (docs/benchmarks.md (s)): would a second cosine feature, from another encoder's index,
raise the linker calibration's cross-validated accuracy@1?

    python scripts/probes/second_cosine_feature.py PIPELINE (CORPUS.spacy | pseudo) [ENCODER]

Uses the pipeline's `dense_extra` index, or builds one with ENCODER (default: the embedded
MiniLM). Prints 5-fold CV over 3 fold splits, with and without the feature."""
import sys
import numpy as np
import spacy
from _examples import calibration_examples  # scripts/probes/_examples.py
from spacy_entlink.linking.calibration import CalibrationData, cross_validate

path, mode = sys.argv[1], sys.argv[2]
nlp = spacy.load(path)
linker = nlp.get_pipe("entlink_linker")
examples = calibration_examples(nlp, linker, mode)
if linker.dense_extra is None:
    linker.build_dense(model=sys.argv[3] if len(sys.argv) > 3 else "", extra=True)
data = linker.calibration_data(examples)
spans = [s for _, s in linker._gold_mentions(examples)]
ranked = linker.rank_spans(spans, gate=False)
texts = [linker._expanded_text(s) for s in spans]
vecs = linker.dense_extra.encoder.encode(texts)
feats2 = []
for f, r, v in zip(data.features, ranked, vecs):
    rows = [row for row, _ in r]
    c = linker.dense_extra.similarities(v, rows)[:, None]
    feats2.append(np.concatenate([f, c], axis=1))
two = CalibrationData(data.scores, feats2, data.gold, data.groups)
for name, d in (("one cosine", data), ("two cosines", two)):
    accs = [cross_validate(d, 5, with_nil=False, seed=s)["cross_validated_acc"] for s in range(3)]
    print(mode, name, " ".join(f"{100*a:.2f}" for a in accs), f"mean {100*np.mean(accs):.2f}", flush=True)
