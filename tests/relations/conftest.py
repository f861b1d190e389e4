"""Tiny random encoders for the relation extractor (never downloaded)."""

from pathlib import Path

import pytest
import torch

WORDS = ("john smith works for acme corp in paris . mary jones lives in london and ibm is based in new york "
         "city which is located in usa the killed by met").split()


def tiny_encoder(folder: Path, *, layers: int = 1, hidden: int = 32, max_positions: int = 512):
    """A tiny BERT and its word-level tokenizer, saved in `folder` (a Hugging Face folder)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz0123456789.,:;-")
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + sorted(set(WORDS))
    vocab = list(dict.fromkeys(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=max_positions)
    model = BertModel(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


@pytest.fixture
def encoder_dir(tmp_path) -> Path:
    tiny_encoder(tmp_path / "enc")
    return tmp_path / "enc"


def tiny_roberta(folder: Path, *, hidden: int = 32):
    """A tiny RoBERTa with a byte-level BPE tokenizer (4 special tokens around a pair, no
    token type ids), saved in `folder`."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)] * 4, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tok = RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"),
                               add_prefix_space=True)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=130, pad_token_id=tok.pad_token_id)
    model = RobertaModel(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok
