"""The dense name index: exact search and per-row name similarities."""

import numpy as np

from spacy_entlink.linking.dense import DenseIndex


class BagOfLetters:
    """A deterministic stand-in encoder: L2-normalised letter counts."""

    name = ""

    def encode(self, texts, batch_size=256, progress=False):
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for i, t in enumerate(texts):
            for c in t.lower():
                if "a" <= c <= "z":
                    out[i, ord(c) - 97] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def test_similarities_are_the_best_name_of_each_row(demo_kb, tmp_path):
    enc = BagOfLetters()
    index = DenseIndex.build(demo_kb, tmp_path / "dense", enc)
    assert list(index.rows) == sorted(index.rows)
    row = demo_kb.row_of("DEMO:D006")
    names = [demo_kb.get_name(row)] + demo_kb.get_aliases(row)
    (q,) = enc.encode(["high blood pressure"])
    other = demo_kb.row_of("DEMO:D001")
    sims = index.similarities(q, [row, other])
    expected = max(float(enc.encode([n])[0] @ q) for n in names if n)
    assert abs(sims[0] - expected) < 1e-3 and sims[0] > sims[1]
    assert index.similarities(q, []).shape == (0,)
    # the row searched first is the one with the highest similarity
    assert index.search(["high blood pressure"], k=1) == [[row]]
