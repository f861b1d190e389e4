import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_entlink.errors import KBFormatError
from spacy_entlink.linking.name_trie import NameTrie, PrefixConstraint, decode_tokens, encode_tokens

EOS = 2


def dict_trie(seqs):
    root = {}
    for s in seqs:
        node = root
        for t in s:
            node = node.setdefault(t, {})
    return root


@pytest.fixture(scope="module")
def random_trie(tmp_path_factory):
    rng = random.Random(0)
    seqs = [[rng.randint(3, 30) for _ in range(rng.randint(1, 6))] + [EOS] for _ in range(1500)]
    rows = [i % 400 for i in range(len(seqs))]
    trie = NameTrie.build(seqs, rows, tmp_path_factory.mktemp("trie"), n_entities=400, eos_token_id=EOS)
    return trie, seqs, rows


def test_token_encoding_round_trips_and_keeps_order():
    ids = [0, 1, 55, 0xD7FE, 0xD7FF, 0xD800, 60000, 250000]
    assert decode_tokens(encode_tokens(ids)) == ids
    assert sorted(encode_tokens([i]) for i in ids) == [encode_tokens([i]) for i in sorted(ids)]


def test_children_match_a_dict_trie(random_trie):
    trie, seqs, _ = random_trie
    ref = dict_trie(seqs)

    def check(node_ref, node, prefix):
        assert trie.children(node).tolist() == sorted(node_ref)
        for tok, sub in node_ref.items():
            check(sub, trie.step(node, tok), prefix + [tok])
        if not node_ref:
            assert trie.sequence(trie.sequence_at(node)) == prefix

    check(ref, 0, [])
    assert trie.step(0, 31) == -1


def test_sequences_map_to_all_their_entities(random_trie):
    trie, seqs, rows = random_trie
    by_seq = {}
    for s, r in zip(seqs, rows):
        by_seq.setdefault(tuple(s), []).append(r)
    for s, rs in by_seq.items():
        sid = trie.sequence_id(s)
        assert sorted(trie.entities_of(sid).tolist()) == sorted(set(rs))
        for r in rs:
            assert sid in trie.sequences_of(r).tolist()
    assert trie.sequence_id([3, 3, 3, 3, 3, 3, 3, EOS]) is None


def test_canonical_name_comes_first(tmp_path):
    trie = NameTrie.build([[5, EOS], [4, EOS], [4, EOS]], [0, 0, 1], tmp_path, n_entities=2, eos_token_id=EOS)
    assert trie.sequence(trie.sequences_of(0)[0]) == [5, EOS]
    assert trie.entities_of(trie.sequence_id([4, EOS])).tolist() == [0, 1]


def test_reopened_trie_is_identical(random_trie, tmp_path):
    trie, seqs, _ = random_trie
    trie.to_disk(tmp_path / "copy")
    again = NameTrie(tmp_path / "copy")
    assert again.n_nodes == trie.n_nodes
    for s in seqs[:100]:
        assert again.walk(s) == trie.walk(s) >= 0


def test_bad_sequences_and_folders_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="must end with the eos"):
        NameTrie.build([[5, 6]], [0], tmp_path / "a", n_entities=1, eos_token_id=EOS)
    with pytest.raises(ValueError, match="must end with the eos"):
        NameTrie.build([[5, EOS, 6, EOS]], [0], tmp_path / "b", n_entities=1, eos_token_id=EOS)
    with pytest.raises(KBFormatError, match="not a name trie"):
        NameTrie(tmp_path / "nothing")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=9))
def test_allowed_tokens_are_never_empty(random_trie, prefix):
    trie, _, _ = random_trie
    fn = PrefixConstraint(trie, skip=1, fallback=[1])
    allowed = fn(0, torch.tensor([EOS] + prefix))
    assert len(allowed) > 0
    node = trie.walk(prefix)
    if node >= 0 and trie.node_count[node] > 0:
        assert allowed == trie.children(node).tolist()
    else:
        assert allowed == [1, EOS]


def test_following_allowed_tokens_always_spells_a_name(random_trie):
    trie, seqs, _ = random_trie
    names = {tuple(s) for s in seqs}
    fn = PrefixConstraint(trie, skip=1)
    rng = random.Random(1)
    for _ in range(200):
        prefix = [EOS]
        while prefix[-1] != EOS or len(prefix) == 1:
            prefix.append(rng.choice(fn(0, torch.tensor(prefix))))
        assert tuple(prefix[1:]) in names
    # cached states: each call is one step from the parent's state, never a walk from the root
    assert fn.steps <= fn.calls
