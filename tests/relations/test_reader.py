import pytest
import torch

from spacy_entlink.errors import ConfigError, KBFormatError
from spacy_entlink.relations.labels import BUILTIN, load_relation_types
from spacy_entlink.relations.reader import ReaderInput, RelationReader
from spacy_entlink.errors import DataError


def reader(folder) -> RelationReader:
    torch.manual_seed(0)
    return RelationReader.from_pretrained(str(folder), entity_labels=["Org", "Peop"], max_candidates=4,
                                          hidden=16, max_text_tokens=32).eval()


def test_one_pass_scores_every_pair_and_candidate(encoder_dir):
    r = reader(encoder_dir)
    x = ReaderInput("john smith works for acme corp".split(), [(0, 2), (4, 6), (3, 4)], ["work for", "kill", "live in"],
                    enumerate_spans=True)
    calls = []
    hook = r.encoder.register_forward_hook(lambda *a: calls.append(1))
    (out,) = r([x])
    hook.remove()
    assert len(calls) == 1
    assert out.relation_logits.shape == (3, 3, 3)
    assert out.entity_logits.shape == (len(out.entity_spans), 3) and (0, 6) in out.entity_spans
    with pytest.raises(ConfigError, match="markers"):
        r([ReaderInput(["x"], [], ["a"] * 5)])


def test_save_and_load_give_identical_scores(encoder_dir, tmp_path):
    r = reader(encoder_dir)
    x = ReaderInput("mary jones lives in london".split(), [(0, 2), (4, 5)], ["live in", "work for"])
    before = r([x])[0].relation_logits
    r.save(tmp_path / "reader")
    again = RelationReader.load(tmp_path / "reader")
    assert torch.allclose(again([x])[0].relation_logits, before, atol=1e-6)
    with pytest.raises(KBFormatError, match="reader.json"):
        RelationReader.load(tmp_path)


def test_long_text_is_windowed_without_the_tokenizer_length_warning(encoder_dir):
    import logging

    class Records(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    r = reader(encoder_dir)
    r.tokenizer.model_max_length = 16
    words = ("john smith works for acme corp in paris . " * 10).split()
    records = Records()
    hf_logger = logging.getLogger("transformers")
    hf_logger.addHandler(records)
    try:
        pieces = r.word_pieces(words)
        assert r._length(tuple(words)) == sum(pieces)
    finally:
        hf_logger.removeHandler(records)
    assert len(pieces) == len(words) and sum(pieces) > 16
    assert not [m for m in records.messages if "longer than the specified maximum" in m]


def test_word_pieces_of_several_texts_in_one_call(encoder_dir):
    r = reader(encoder_dir)
    texts = [["john", "smithsonian", "works"], [], ["acme", "corporation", "in", "paris", "."], ["x"]]
    assert r.word_pieces_of(texts) == [r.word_pieces(t) for t in texts]
    assert r.word_pieces_of(texts)[1] == [] and r.word_pieces_of([]) == []


def _encodings(r, inputs):
    """Outputs and wordpiece positions with the windows' own wordpieces and with the tokenizer's."""
    import copy

    with torch.no_grad():
        assembled = r(inputs), r._encode(inputs)
        plain = [copy.copy(x) for x in inputs]
        for x in plain:
            x.piece_ids = None
        return assembled, (r(plain), r._encode(plain))


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_inputs_assembled_from_known_wordpieces_equal_the_tokenizers(tmp_path, kind):
    from .conftest import tiny_encoder, tiny_roberta

    (tiny_encoder if kind == "bert" else tiny_roberta)(tmp_path / kind)
    r = reader(tmp_path / kind)
    assert r._pair_template() is not None
    texts = [("john smithsonian works for acme corporation in paris . " * 6).split(),  # cut to max_text_tokens
             "mary \n jones lives in london".split(" "), "ibm".split()]
    ids = r.word_piece_ids(texts)
    assert (ids[1][1] == []) == (kind == "bert")  # BERT's tokenizer gives a line break no wordpiece
    assert [max(len(p), 1) for p in ids[0]] == r.word_pieces(texts[0])
    inputs = [ReaderInput(texts[0], [(0, 2), (4, 6), (50, 52)], ["work for", "kill"], piece_ids=ids[0]),
              ReaderInput(texts[1], [(0, 3), (5, 6)], ["live in", "work for", "located in"], piece_ids=ids[1]),
              ReaderInput(texts[2], [(0, 1)], ["x"], piece_ids=ids[2])]
    (outs, (hidden, *positions)), (plain, (plain_hidden, *plain_positions)) = _encodings(r, inputs)
    assert positions == plain_positions and hidden.shape == plain_hidden.shape
    assert positions[0][0] and max(positions[1][0]) < len(texts[0]) - 1  # the first text is truncated
    assert torch.equal(hidden, plain_hidden)
    for a, b in zip(outs, plain):
        assert torch.equal(a.relation_logits, b.relation_logits)


def test_a_tokenizer_padding_on_the_left_is_asked_to_tokenise(encoder_dir):
    r = reader(encoder_dir)
    r.tokenizer.padding_side = "left"
    assert r._pair_template() is None
    words = "mary jones lives in london".split()
    inputs = [ReaderInput(words, [(0, 2), (4, 5)], ["live in"], piece_ids=r.word_piece_ids([words])[0]),
              ReaderInput(["ibm"], [(0, 1)], ["x", "y"], piece_ids=r.word_piece_ids([["ibm"]])[0])]
    (outs, _), (plain, _) = _encodings(r, inputs)
    assert torch.equal(outs[0].relation_logits, plain[0].relation_logits)


def test_entity_markers_surround_each_span_and_the_spans_read_them(encoder_dir, tmp_path):
    torch.manual_seed(0)
    r = RelationReader.from_pretrained(str(encoder_dir), entity_labels=["Org", "Peop"], max_candidates=4, hidden=16,
                                       max_text_tokens=32, entity_marker="-").eval()
    words = "john smith works for acme corp in paris".split()
    x = ReaderInput(words, [(0, 2), (4, 6), (5, 6), (7, 8)], ["work for", "live in"], piece_ids=r.word_piece_ids([words])[0])
    m = r._marked(x)
    assert m.words == "- john smith - works for - acme - corp - in - paris -".split()
    assert m.spans == [(0, 4), (6, 11), (8, 11), (12, 15)] and len(m.piece_ids) == len(m.words)
    assert x.spans == [(0, 2), (4, 6), (5, 6), (7, 8)]  # the caller's input is left as it was
    assert r.marker_pieces() == 1
    (out, _), (plain, _) = _encodings(r, [x])
    assert out[0].relation_logits.shape == (4, 4, 2) and torch.equal(out[0].relation_logits, plain[0].relation_logits)
    unmarked = reader(encoder_dir)
    unmarked.load_state_dict(r.state_dict())
    with torch.no_grad():
        assert not torch.allclose(unmarked([x])[0].relation_logits, out[0].relation_logits)
    r.save(tmp_path / "marked")
    again = RelationReader.load(tmp_path / "marked")
    assert again.entity_marker == "-"
    with torch.no_grad():
        assert torch.allclose(again([x])[0].relation_logits, out[0].relation_logits, atol=1e-6)
    spans = ReaderInput(words, [], ["x"], enumerate_spans=True)
    assert r._marked(spans) is spans  # enumerated spans are not known before the pass: no markers
    with pytest.raises(ConfigError, match="entity_marker"):
        RelationReader.from_pretrained(str(encoder_dir), entity_labels=[], max_candidates=2, entity_marker="a b")


def test_relation_type_sources(tmp_path):
    assert [t.name for t in load_relation_types("conll04")] == [t.name for t in BUILTIN["conll04"]]
    path = tmp_path / "types.jsonl"
    path.write_text('{"name": "Treats", "description": "drug treats disease"}\n\n{"description": "x"}\n')
    with pytest.raises(DataError, match="types.jsonl, line 3"):
        load_relation_types(path)
    path.write_text('{"name": "Treats", "head_types": ["Chemical"]}\n')
    (t,) = load_relation_types(path)
    assert t.allows("Chemical", "Disease") and not t.allows("Disease", "Chemical")
    with pytest.raises(ConfigError, match="twice"):
        load_relation_types([{"name": "A"}, {"name": "A"}])
    with pytest.raises(ConfigError, match="no such file"):
        load_relation_types("nonexistent_types.jsonl")


def test_windows_longer_than_the_encoder_takes_are_refused_by_name(encoder_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(encoder_dir))
    tok.model_max_length = 40
    tok.save_pretrained(str(encoder_dir))
    with pytest.raises(ConfigError, match="max_text_tokens = 38"):
        RelationReader.from_pretrained(str(encoder_dir), entity_labels=["Org"], max_candidates=4, hidden=16,
                                       max_text_tokens=38)
    r = reader(encoder_dir)  # 32 text wordpieces: fits with a short candidate
    (out,) = r([ReaderInput("john works for acme".split(), [(0, 1), (3, 4)], ["met"])])
    assert out.relation_logits.shape == (2, 2, 1)
    with pytest.raises(ConfigError, match="lower max_text_tokens"):
        r([ReaderInput("john works for acme".split(), [(0, 1), (3, 4)], ["works for acme corp in paris"])])


def _brute_bags(logits, groups, gold):
    """Per pair of distinct bags: the log-sum-exp over its mention pairs, and its target."""
    out = {}
    for i, gi in enumerate(groups):
        for j, gj in enumerate(groups):
            if i != j and gi != gj:
                for c in range(logits.shape[-1]):
                    out.setdefault((gi, gj, c), ([], 0.0))
                    vals, t = out[(gi, gj, c)]
                    out[(gi, gj, c)] = (vals + [logits[i, j, c]], max(t, gold.get((i, j, c), 0.0)))
    return {k: (torch.logsumexp(torch.stack(v), 0), t) for k, (v, t) in out.items()}


def test_bag_logits_are_the_log_sum_exp_of_each_id_pairs_mention_pairs():
    torch.manual_seed(0)
    logits = torch.randn(5, 5, 2)
    groups = [7, 7, 3, 9, 9]  # bag 3 is a single mention: paired with itself it has no mention pair
    gold = {(0, 3, 1): 1.0, (1, 4, 1): 1.0}
    x = ReaderInput(list("abcde"), [(i, i + 1) for i in range(5)], ["p", "q"], gold_relations=gold, span_groups=groups)
    pooled, target = (t.reshape(-1) for t in RelationReader._bag_logits(x, logits))
    expected = _brute_bags(logits, groups, gold)
    assert len(pooled) == len(expected) == 3 * 2 * 2  # 3 bags: 6 ordered pairs of distinct bags, 2 candidates
    got = sorted(zip(pooled.tolist(), target.tolist()))
    want = sorted((float(v), t) for v, t in expected.values())
    assert all(abs(a[0] - b[0]) < 1e-5 and a[1] == b[1] for a, b in zip(got, want))
    assert sum(target.tolist()) == 1.0  # both gold mention pairs lie in the bag pair (7, 9) on candidate 1


def test_logsumexp_pair_loss_on_single_mention_bags_is_the_mention_loss(encoder_dir):
    torch.manual_seed(0)
    bag = RelationReader.from_pretrained(str(encoder_dir), entity_labels=[], max_candidates=2, hidden=16,
                                         max_text_tokens=32, pair_loss="logsumexp").eval()
    words = "aspirin caused asthma and aspirin worsened rash".split()
    spans = [(0, 1), (2, 3), (4, 5), (6, 7)]
    gold = {(0, 1, 0): 1.0, (2, 1, 0): 1.0}
    single = ReaderInput(words, spans, ["cid"], gold_relations=gold, span_groups=[0, 1, 2, 3])
    mention = ReaderInput(words, spans, ["cid"], gold_relations=gold)
    assert torch.allclose(bag.loss([single]), bag.loss([mention]))
    by_id = ReaderInput(words, spans, ["cid"], gold_relations=gold, span_groups=[0, 1, 0, 2])
    loss = bag.loss([by_id])
    assert not torch.allclose(loss, bag.loss([mention]))
    bag.zero_grad()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in bag.parameters() if p.grad is not None)
    with pytest.raises(ConfigError, match="pair_loss"):
        RelationReader.from_pretrained(str(encoder_dir), entity_labels=[], max_candidates=2, pair_loss="max")


def test_mention_plus_logsumexp_pair_loss_is_the_sum_of_both(encoder_dir):
    def make(pair_loss):
        torch.manual_seed(0)
        return RelationReader.from_pretrained(str(encoder_dir), entity_labels=[], max_candidates=2, hidden=16,
                                              max_text_tokens=32, pair_loss=pair_loss).eval()

    words = "aspirin caused asthma and aspirin worsened rash".split()
    spans = [(0, 1), (2, 3), (4, 5), (6, 7)]
    gold = {(0, 1, 0): 1.0, (2, 1, 0): 1.0}
    x = ReaderInput(words, spans, ["cid"], gold_relations=gold, span_groups=[0, 1, 0, 2])
    both, bag, mention = make("mention+logsumexp"), make("logsumexp"), make("mention")
    assert torch.allclose(both.loss([x]), bag.loss([x]) + mention.loss([x]))
    assert both.loss([x]) > bag.loss([x]) > 0
    # without bags (no span groups) only the mention terms are left
    plain = ReaderInput(words, spans, ["cid"], gold_relations=gold)
    assert torch.allclose(both.loss([plain]), mention.loss([plain]))
