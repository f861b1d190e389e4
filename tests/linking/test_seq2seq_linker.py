"""The seq2seq wrapper and the linker core with tiny random BART and BERT2BERT models."""

import numpy as np
import pytest
import torch

from spacy_entlink.linking.examples import kb_pairs
from spacy_entlink.linking.linker import Linker, LinkerSettings, build_name_trie
from spacy_entlink.linking.name_trie import PrefixConstraint
from spacy_entlink.errors import ConfigError
from spacy_entlink.linking.seq2seq import Seq2Seq

from .conftest import tiny_bart, tiny_bert2bert, tiny_t5

CONTEXTS = [
    "The patient had [START_ENT] T2DM [END_ENT] for years .",
    "[START_ENT] heart attack [END_ENT] after surgery",
    "Treated with [START_ENT] adriamycin [END_ENT] .",
]


def make_linker(seq2seq, kb, tmp_path, **settings):
    return Linker(seq2seq, kb, build_name_trie(seq2seq, kb, tmp_path / "trie"), LinkerSettings(**settings))


def test_targets_follow_the_model_conventions(tiny_seq2seq):
    (ids,) = tiny_seq2seq.target_ids(["Hypertension"])
    assert ids[-1] == tiny_seq2seq.eos_id and tiny_seq2seq.eos_id not in ids[:-1]
    assert ids[0] != tiny_seq2seq.start_id or tiny_seq2seq.start_id != tiny_seq2seq.eos_id


def test_unconstrained_search_returns_only_kb_names(tiny_seq2seq, demo_kb, tmp_path):
    linker = make_linker(tiny_seq2seq, demo_kb, tmp_path, beam_size=4, top_k=4)
    constraint = PrefixConstraint(linker.trie, skip=1, fallback=[tiny_seq2seq.pad_id])
    found = tiny_seq2seq.generate(CONTEXTS, constraint, num_beams=4, num_return=4)
    assert constraint.calls > 0
    for seqs in found:
        assert seqs, "every context gets a name"
        for seq in seqs:
            assert linker.trie.sequence_id(seq) is not None
    ranked = linker.rank(CONTEXTS, [None] * len(CONTEXTS))
    for r in ranked:
        assert r and all(0 <= row < len(demo_kb) for row, _ in r)
        assert [s for _, s in r] == sorted((s for _, s in r), reverse=True)
    assert linker.stats.generated == len(CONTEXTS)


def test_candidates_restrict_and_single_candidates_skip_decoding(tiny_seq2seq, demo_kb, tmp_path):
    linker = make_linker(tiny_seq2seq, demo_kb, tmp_path)
    d1, d2, d3 = (demo_kb.row_of(i) for i in ("DEMO:D001", "DEMO:D002", "DEMO:D003"))
    ranked = linker.rank(CONTEXTS, [[d1, d2], [d3], [d3, d1, d2]])
    assert {r for r, _ in ranked[0]} == {d1, d2}
    assert ranked[1] == [(d3, 0.0)]
    assert {r for r, _ in ranked[2]} == {d1, d2, d3}
    assert linker.stats.skipped == 1 and linker.stats.scored == 2 and linker.stats.generated == 0


def test_type_filter_and_empty_candidates(tiny_seq2seq, demo_kb, tmp_path):
    linker = make_linker(tiny_seq2seq, demo_kb, tmp_path, fallback="nil")
    chem = demo_kb.row_of("DEMO:C001")
    dis = demo_kb.row_of("DEMO:D001")
    assert linker.filter_type([chem, dis], "Chemical") == [chem]
    assert linker.filter_type([chem, dis], "NOT_A_TYPE") == [chem, dis]
    assert linker.rank(CONTEXTS[:1], [[]]) == [[]]


def test_alias_scores_of_one_entity_are_merged(tiny_seq2seq, demo_kb, tmp_path):
    linker = make_linker(tiny_seq2seq, demo_kb, tmp_path, candidate_names="all", max_names_per_candidate=4)
    d1, d2 = demo_kb.row_of("DEMO:D001"), demo_kb.row_of("DEMO:D002")
    merged = dict(linker.rank(CONTEXTS[:1], [[d1, d2]])[0])
    names = linker.name_targets(d1)
    assert len(names) > 1
    each = tiny_seq2seq.score(CONTEXTS[:1], [names])[0]
    assert abs(merged[d1] - float(torch.logsumexp(torch.tensor(each, dtype=torch.float64), 0))) < 1e-4


def test_a_few_training_steps_reduce_the_loss(tiny_seq2seq, demo_kb, tmp_path):
    linker = make_linker(tiny_seq2seq, demo_kb, tmp_path)
    pairs = list(kb_pairs(demo_kb, per_entity=1))[:16]
    opt = torch.optim.AdamW(tiny_seq2seq.model.parameters(), lr=3e-3)
    tiny_seq2seq.model.train()
    losses = []
    for _ in range(40):
        loss = linker.loss(pairs)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.6 * losses[0]


def test_save_and_reload_score_identically(tiny_seq2seq, demo_kb, tmp_path):
    targets = [tiny_seq2seq.target_ids(["Hypertension", "Anemia"])]
    before = tiny_seq2seq.score(CONTEXTS[:1], targets)[0]
    tiny_seq2seq.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "model.safetensors").exists()
    again = Seq2Seq.from_saved(tmp_path / "saved", max_context_tokens=64, max_name_tokens=24)
    assert again.fingerprint == tiny_seq2seq.fingerprint
    assert (again.score(CONTEXTS[:1], targets)[0] == before).all()


@pytest.mark.parametrize("kind", ["bart", "bert2bert", "t5"])
def test_scores_equal_the_full_softmax(kind, demo_kb, tmp_path):
    """Scoring skips the vocabulary projection of repeated prefixes; the numbers must equal
    those of the model's own logits (BART with a non-zero final_logits_bias, T5 rescaled)."""
    seq2seq = {"bart": tiny_bart, "bert2bert": tiny_bert2bert, "t5": tiny_t5}[kind](tmp_path / kind)
    if kind == "bart":
        seq2seq.model.final_logits_bias.normal_()
    names = ["Hypertension", "Hypotension", "Heart failure", "Heart attack", "Myocardial infarction"]
    targets = [seq2seq.target_ids(names), seq2seq.target_ids(names[2:4]), []]
    got = seq2seq.score(CONTEXTS, targets, chunk=3)
    with torch.no_grad():
        for text, seqs, scores in zip(CONTEXTS, targets, got):
            for seq, value in zip(seqs, scores):
                batch = seq2seq.contexts([text])
                dec_in = torch.tensor([[seq2seq.start_id] + seq[:-1]])
                logits = seq2seq.model(**batch, decoder_input_ids=dec_in).logits[0]
                ref = torch.log_softmax(logits, -1)[torch.arange(len(seq)), torch.tensor(seq)].mean()
                assert value == pytest.approx(float(ref), abs=1e-4)
    assert [len(s) for s in got] == [5, 2, 0]
    assert seq2seq.model.get_output_embeddings().forward.__func__ is type(seq2seq.model.get_output_embeddings()).forward


def test_bfloat16_precision_ranks_like_float32(demo_kb, tmp_path):
    seq2seq = tiny_bert2bert(tmp_path / "b2b")
    names = ["Hypertension", "Hypotension", "Heart failure", "Heart attack"]
    targets = [seq2seq.target_ids(names)] * len(CONTEXTS)
    full = seq2seq.score(CONTEXTS, targets)
    seq2seq.precision = "bfloat16"
    half = seq2seq.score(CONTEXTS, targets)
    for a, b in zip(full, half):
        assert np.allclose(a, b, atol=0.05)
    with pytest.raises(ConfigError, match="precision"):
        Seq2Seq(seq2seq.model, seq2seq.tokenizer, precision="float8")


def test_warm_start_copies_self_attention_into_cross_attention(tmp_path):
    """An encoder folder becomes an encoder-decoder whose cross-attention starts as the
    pretrained self-attention of each decoder layer, with the mention markers added."""
    from transformers import BertConfig, BertModel

    seed = tiny_bert2bert(tmp_path / "b2b")
    folder = tmp_path / "encoder"
    cfg = BertConfig(vocab_size=len(seed.tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256)
    BertModel(cfg).save_pretrained(folder)
    seed.tokenizer.save_pretrained(folder)
    s2s = Seq2Seq.load(str(folder), decoder_layers=2)
    layers = s2s.model.decoder.bert.encoder.layer
    assert len(layers) == 2
    for layer in layers:
        for name, value in layer.attention.state_dict().items():
            assert torch.equal(value, layer.crossattention.state_dict()[name])
    assert "[START_ENT]" in s2s.tokenizer.get_vocab()
    assert len(s2s.score(CONTEXTS[:1], [s2s.target_ids(["Hypertension", "Asthma"])])[0]) == 2


def test_kb_alias_sample_draws_names_the_kb_has_one_per_entity(demo_kb):
    from spacy_entlink.linking.examples import kb_alias_sample

    skip = [demo_kb.row_of("DEMO:D001")]
    sample = kb_alias_sample(demo_kb, 5, exclude=skip, seed=1)
    assert len(sample) == 5 and len({row for _, row in sample}) == 5 and skip[0] not in {r for _, r in sample}
    for alias, row in sample:  # each pseudo-mention is an exact alias of its entity
        assert row in {c.row for c in demo_kb.get_candidates(alias)}
    assert kb_alias_sample(demo_kb, 5, exclude=skip, seed=1) == sample
    assert len(kb_alias_sample(demo_kb, 10 ** 6)) == len(demo_kb)
