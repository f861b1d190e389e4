"""Probe (docs/benchmarks.md (s)): would KB-only generality features (log descendants, hierarchy
depth, log number of names) raise the linker calibration's cross-validated accuracy@1?

    python scripts/probes/generality_features.py PIPELINE (CORPUS.spacy | pseudo)

`pseudo`: the zero-shot pseudo-mentions (training/retriever_medic/holdout.jsonl over
kb/medic_zs); otherwise the annotated mentions of CORPUS. Prints 5-fold CV over 3 fold splits."""
import sys
import numpy as np
import spacy
from _examples import calibration_examples  # scripts/probes/_examples.py
from spacy_entlink.linking.calibration import CalibrationData, cross_validate

path, mode = sys.argv[1], sys.argv[2]
nlp = spacy.load(path)
linker = nlp.get_pipe("entlink_linker")
examples = calibration_examples(nlp, linker, mode)
kb = linker.kb
data = linker.calibration_data(examples)
n = len(kb)
children = np.zeros(n)
depth = np.zeros(n)
for r in range(n):
    for p in kb.get_parents(r):
        children[p] += 1
    anc = kb.ancestors(r, 50)
    depth[r] = max(anc.values(), default=0)
desc = np.zeros(n)
for r in range(n):
    for a in kb.ancestors(r, 50):
        desc[a] += 1
names = np.array([1 + len(kb.get_aliases(r)) for r in range(n)], dtype=float)
spans = [s for _, s in linker._gold_mentions(examples)]
ranked = linker.rank_spans(spans, gate=False)
extra = {"desc": np.log1p(desc), "depth": depth, "names": np.log1p(names), "children": np.log1p(children)}
def with_cols(cols):
    feats = []
    for f, r in zip(data.features, ranked):
        rows = [row for row, _ in r]
        add = np.stack([extra[c][rows] for c in cols], axis=1) if cols else np.zeros((len(rows), 0))
        feats.append(np.concatenate([f, add], axis=1) if len(rows) else np.zeros((0, f.shape[1] + len(cols))))
    return CalibrationData(data.scores, feats, data.gold, data.groups)
for cols in ([], ["desc"], ["depth"], ["names"], ["desc", "depth", "names"]):
    accs = [cross_validate(with_cols(cols), 5, with_nil=False, seed=s)["cross_validated_acc"] for s in range(3)]
    print(mode, cols, " ".join(f"{100*a:.2f}" for a in accs), f"mean {100*np.mean(accs):.2f}", flush=True)
