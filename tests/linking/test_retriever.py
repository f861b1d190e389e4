"""The KB-trained dense retriever with a tiny random BERT encoder: the contrastive loss falls,
the saved encoder and the index round-trip, ANN and exact search agree."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spacy_entlink.errors import ConfigError
from spacy_entlink.linking.dense import DenseIndex, SentenceEncoder, kb_names
from spacy_entlink.linking.retriever import (RetrieverTraining, contrastive_loss, kb_name_set,
                                             mine_hard_negatives, read_holdout, train_retriever)
from tests.linking.conftest import kb_texts


def tiny_encoder_folder(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised 1-layer BERT and a word-level tokenizer over the demo KB's words."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    words = sorted({w.lower() for t in kb_texts() for w in t.replace("-", " - ").replace(",", " , ").split()})
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz0123456789")
                               + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + words))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_encoder(tmp_path) -> SentenceEncoder:
    return SentenceEncoder(str(tiny_encoder_folder(tmp_path / "enc")), precision="float32")


def test_name_set_groups_names_by_entity_and_holds_out_aliases(demo_kb):
    names = kb_name_set(demo_kb)
    assert len(names.by_row) == len(demo_kb) and not names.held_out
    row = demo_kb.row_of("DEMO:D001")
    assert [names.texts[i] for i in names.by_row[row]][0] == demo_kb.get_name(row)
    assert all(names.owners[i] == r for r, idx in names.by_row.items() for i in idx)
    held = kb_name_set(demo_kb, holdout=0.99, seed=1)
    assert held.held_out and all(t not in [held.texts[i] for i in held.by_row[r]] for t, r in held.held_out)
    assert all(t != demo_kb.get_name(r) for t, r in held.held_out)  # canonical names stay


def test_inverted_entry_terms_also_train_in_text_order(tmp_path):
    from spacy_entlink.kb import KnowledgeBase, read_source
    from spacy_entlink.linking.retriever import uninverted

    assert uninverted("Neoplasms, Abdominal") == "Abdominal Neoplasms"
    assert uninverted("Diabetes Mellitus") is None and uninverted("a, b, c") is None
    src = tmp_path / "kb.jsonl"
    src.write_text('{"id": "X:1", "name": "Abdominal Neoplasms", "aliases": ["Neoplasms, Abdominal"]}\n'
                   '{"id": "X:2", "name": "Arthritis, Juvenile", "aliases": ["Juvenile Arthritis", "Still Disease"]}\n',
                   encoding="utf8")
    kb = KnowledgeBase.build(read_source(src), tmp_path / "kb")
    plain = kb_name_set(kb)
    flipped = kb_name_set(kb, uninvert=True)
    assert plain.texts == flipped.texts  # the text-order forms are already names
    src.write_text('{"id": "X:1", "name": "Neoplasms, Abdominal", "aliases": ["Abdominal Tumour"]}\n', encoding="utf8")
    kb = KnowledgeBase.build(read_source(src), tmp_path / "kb2")
    flipped = kb_name_set(kb, uninvert=True)
    assert "Abdominal Neoplasms" in flipped.texts and "Abdominal Neoplasms" not in kb_name_set(kb).texts
    assert flipped.owners[flipped.texts.index("Abdominal Neoplasms")] == kb.row_of("X:1")


def test_contrastive_loss_rewards_same_entity_neighbours():
    labels = torch.tensor([0, 0, 1, 1])
    good = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.1], [0, 1], [0.1, 1]]), dim=-1)
    bad = good[[0, 2, 1, 3]]
    assert contrastive_loss(good, labels, 4, 0.1) < contrastive_loss(bad, labels, 4, 0.1)
    assert float(contrastive_loss(good, torch.tensor([0, 1, 2, 3]), 4, 0.1)) == 0.0  # no positives


def test_hard_negatives_belong_to_other_entities():
    v = torch.nn.functional.normalize(torch.randn(20, 8), dim=-1)
    owners = torch.arange(20) // 2
    hard = mine_hard_negatives(v, owners, 3)
    assert hard.shape == (20, 3)
    for i, row in enumerate(hard):
        assert all(owners[j] != owners[i] for j in row.tolist())
        sims = (v[row] @ v[i]).tolist()
        assert sims == sorted(sims, reverse=True)


def test_training_lowers_the_loss_and_saves_a_loadable_encoder(demo_kb, tiny_encoder, tmp_path):
    settings = RetrieverTraining(steps=40, batch_size=12, lr=3e-3, hard_negatives=1, mine_every=20, holdout=0.3,
                                 precision="float32", seed=0)
    names = kb_name_set(demo_kb)
    texts = [names.texts[i] for r in names.multi for i in names.by_row[r][:2]]
    labels = torch.tensor([r for r in names.multi for _ in range(2)])

    def full_loss():
        with torch.no_grad():
            return float(contrastive_loss(tiny_encoder.embed(texts), labels, len(texts), 0.05))

    before = full_loss()
    result = train_retriever(demo_kb, tmp_path / "ret", settings=settings, encoder=tiny_encoder, progress=False)
    assert result.steps == 40 and [h["step"] for h in result.history] == [0, 20, 40]
    assert full_loss() < 0.7 * before  # synonyms of one entity moved together
    saved = tmp_path / "ret"
    assert (saved / "model.safetensors").exists() and not list(saved.glob("*.bin"))
    info = json.loads((saved / "retriever.json").read_text())
    assert info["training"]["steps"] == 40 and info["max_length"] == settings.max_length
    held = read_holdout(saved / "holdout.jsonl", demo_kb)
    assert len(held) == result.held_out > 0
    again = SentenceEncoder(str(saved), precision="float32")
    texts = ["type 2 diabetes", "heart attack"]
    assert np.allclose(again.encode(texts), tiny_encoder.encode(texts), atol=1e-5)


def test_interpolate_saves_the_mix_of_the_trained_and_the_starting_weights(demo_kb, tmp_path):
    """WiSE-FT: with `interpolate` w the saved weights are w × trained + (1 − w) × starting, for
    the same (deterministic) training run."""
    folder = tiny_encoder_folder(tmp_path / "enc")
    start = SentenceEncoder(str(folder), precision="float32").model.state_dict()
    saved = {}
    for weight in (1.0, 0.25):
        settings = RetrieverTraining(steps=6, batch_size=8, lr=3e-3, hard_negatives=0, mine_every=0, holdout=0.3,
                                     interpolate=weight, precision="float32", seed=0)
        result = train_retriever(demo_kb, tmp_path / f"ret{weight}", settings=settings,
                                 encoder=SentenceEncoder(str(folder), precision="float32"), progress=False)
        saved[weight] = SentenceEncoder(str(tmp_path / f"ret{weight}"), precision="float32").model.state_dict()
    assert result.history[-1]["interpolate"] == 0.25 and "holdout_recall@1" in result.history[-1]
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(saved[1.0][key], start[key])  # training moved it
    assert torch.allclose(saved[0.25][key], 0.25 * saved[1.0][key] + 0.75 * start[key], atol=1e-6)
    with pytest.raises(ConfigError, match="interpolate"):
        RetrieverTraining(interpolate=0.0)


def test_interpolate_weights_mixes_tied_weights_once():
    from spacy_entlink.linking.retriever import interpolate_weights

    model = torch.nn.Sequential(torch.nn.Embedding(4, 3), torch.nn.Linear(3, 4, bias=False))
    model[1].weight = model[0].weight  # tied, as T5's shared input embeddings are
    start = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    before = model[0].weight.detach().clone()
    interpolate_weights(model, start, 0.5)
    assert torch.allclose(model[1].weight, 0.5 * before)  # not 0.25: the tied tensor is mixed once
    with pytest.raises(ConfigError, match="differ"):
        interpolate_weights(model, {"other": torch.zeros(1)}, 0.5)


def test_training_needs_synonyms(demo_kb, tiny_encoder, tmp_path):
    with pytest.raises(ConfigError, match="batch_size"):
        RetrieverTraining(batch_size=1)
    with pytest.raises(ConfigError, match="holdout"):
        RetrieverTraining(holdout=1.5)
    with pytest.raises(ConfigError, match="two or more"):
        train_retriever(demo_kb, tmp_path / "x", settings=RetrieverTraining(steps=1), types=["NoSuchType"],
                        encoder=tiny_encoder, progress=False)


def test_index_with_a_local_encoder_round_trips_and_ann_agrees_with_exact(demo_kb, tiny_encoder, tmp_path):
    pytest.importorskip("faiss")
    exact = DenseIndex.build(demo_kb, tmp_path / "exact", tiny_encoder)
    ann = DenseIndex.build(demo_kb, tmp_path / "ann", tiny_encoder, ann_threshold=1)
    assert not exact.uses_ann and ann.uses_ann and (tmp_path / "ann" / "encoder" / "model.safetensors").exists()
    texts, _ = kb_names(demo_kb)
    q = tiny_encoder.encode(texts[:30])
    a = ann.search_vectors(q, k=3)
    e = exact.search_vectors(q, k=3)
    assert [[r for r, _ in x][:1] for x in a] == [[r for r, _ in x][:1] for x in e]
    for x, y in zip(a, e):
        assert np.allclose([s for _, s in x], [s for _, s in y], atol=2e-2)
    ann.to_disk(tmp_path / "copy")
    loaded = DenseIndex(tmp_path / "copy")  # the encoder comes from the copied folder
    assert loaded.uses_ann and loaded.search(["heart attack"], k=2) == ann.search(["heart attack"], k=2)
    assert loaded.encoder.path == str((tmp_path / "copy" / "encoder").resolve())


def test_exact_search_orders_by_cosine_and_dedups_rows(demo_kb, tiny_encoder, tmp_path):
    index = DenseIndex.build(demo_kb, tmp_path / "d", tiny_encoder)
    (hits,) = index.search_scored(["juvenile diabetes"], k=5)
    rows = [r for r, _ in hits]
    assert len(rows) == len(set(rows)) == 5
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert hits[0][0] == demo_kb.row_of("DEMO:D002") and hits[0][1] == pytest.approx(1.0, abs=2e-3)
    assert index.search([], k=3) == []
