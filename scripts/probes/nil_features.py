"""Probe (docs/benchmarks.md (s)): a NIL score that depends on the mention's features (each
feature's maximum over its candidates, with its own weights) against the constant NIL score,
both fitted with 10 % of the calibration mentions' entities out of the KB; out-of-fold (5 folds
by document) NIL precision, recall and accuracy on the mentions whose gold is a candidate.

    python scripts/probes/nil_features.py PIPELINE (CORPUS.spacy | pseudo)"""
import random, sys
import numpy as np
import spacy
from _examples import calibration_examples  # scripts/probes/_examples.py
import torch

path, mode = sys.argv[1], sys.argv[2]
nlp = spacy.load(path)
linker = nlp.get_pipe("entlink_linker")
examples = calibration_examples(nlp, linker, mode)
data = linker._calibration_data_out_of_kb(examples, 0.1, 0)
print("mentions", len(data.gold), "NIL examples", sum(g is None for g in data.gold), flush=True)


def fit(idx, nil_feats):
    width = max(max(len(data.scores[m]) for m in idx), 1)
    nf = data.features[idx[0]].shape[1]
    n = len(idx)
    mat = torch.zeros((n, width), dtype=torch.float64); valid = torch.zeros((n, width), dtype=torch.bool)
    feat = torch.zeros((n, width, nf), dtype=torch.float64); tgt = torch.empty(n, dtype=torch.long)
    for r, m in enumerate(idx):
        k = len(data.scores[m])
        if k:
            mat[r, :k] = torch.tensor(data.scores[m]); valid[r, :k] = True
            feat[r, :k] = torch.as_tensor(data.features[m])
        tgt[r] = width if data.gold[m] is None else data.gold[m]
    g = torch.where(valid[..., None], feat, torch.full_like(feat, -1e9)).max(dim=1).values
    g = torch.where(valid.any(1, keepdim=True), g, torch.zeros_like(g))
    la = torch.zeros(1, dtype=torch.float64, requires_grad=True); b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    w = torch.zeros(nf, dtype=torch.float64, requires_grad=True); v = torch.zeros(nf, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([la, b, w, v], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        s = (mat * la.clamp(-5, 5).exp() + feat @ w).masked_fill(~valid, float("-inf"))
        nil = b + (g @ v if nil_feats else 0.0)
        loss = torch.nn.functional.cross_entropy(torch.cat([s, nil.reshape(-1, 1).expand(n, 1)], 1), tgt)
        loss.backward(); return loss
    opt.step(closure)
    return float(la.clamp(-5, 5).exp()), float(b), w.detach().numpy(), v.detach().numpy() if nil_feats else np.zeros(nf)


def predict(params, m):
    a, b, w, v = params
    s = np.asarray(data.scores[m]); f = np.asarray(data.features[m])
    if len(s) == 0:
        return None, True
    z = a * s + f @ w
    nil = b + f.max(0) @ v
    best = int(np.argmax(z))
    return best, nil > z[best]


groups = sorted(set(data.groups)); random.Random(0).shuffle(groups)
fold = {g: i % 5 for i, g in enumerate(groups)}
for nil_feats in (False, True):
    called = right_nil = ok = kept = 0
    for k in range(5):
        train = [m for m in range(len(data.gold)) if fold[data.groups[m]] != k]
        test = [m for m in range(len(data.gold)) if fold[data.groups[m]] == k]
        params = fit(train, nil_feats)
        for m in test:
            best, is_nil = predict(params, m)
            called += is_nil
            right_nil += is_nil and data.gold[m] is None
            if data.gold[m] is not None:
                kept += 1; ok += (not is_nil) and best == data.gold[m]
    n_nil = sum(g is None for g in data.gold)
    P, R = right_nil / max(called, 1), right_nil / max(n_nil, 1)
    print(mode, "feature NIL" if nil_feats else "constant NIL", f"P {100*P:.1f} R {100*R:.1f} F {200*P*R/max(P+R,1e-9):.1f}"
          f" acc on in-candidate mentions {100*ok/kept:.2f} ({called} NIL answers)", flush=True)
