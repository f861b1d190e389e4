"""Tiny randomly initialised seq2seq models (BART and a BERT2BERT `EncoderDecoderModel`) with
tokenizers built on the fly from the demo KB's names, and the demo KB."""

import json
from pathlib import Path

import pytest
import torch

from spacy_entlink.kb import KnowledgeBase, read_source
from spacy_entlink.linking.seq2seq import Seq2Seq

ASSETS = Path(__file__).parents[2] / "assets"
EXTRA_TEXT = [
    "The patient was treated for the disease and recovered .",
    "Patients with a history of the condition received the drug daily .",
]


def kb_texts():
    texts = list(EXTRA_TEXT)
    for line in (ASSETS / "demo_kb.jsonl").read_text(encoding="utf8").splitlines():
        rec = json.loads(line)
        texts.append(rec["name"])
        texts.extend(rec.get("aliases", []))
        texts.append(rec.get("description", ""))
    return texts


@pytest.fixture(scope="session")
def demo_kb(tmp_path_factory) -> KnowledgeBase:
    return KnowledgeBase.build(read_source(ASSETS / "demo_kb.jsonl"), tmp_path_factory.mktemp("kb") / "demo")


def tiny_bart(folder: Path) -> Seq2Seq:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizerFast

    torch.manual_seed(0)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(kb_texts() + ["[START_ENT] [END_ENT]"], vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    tok = BartTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    cfg = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     decoder_start_token_id=tok.eos_token_id, forced_bos_token_id=None, forced_eos_token_id=None)
    return Seq2Seq(BartForConditionalGeneration(cfg), tok, max_context_tokens=64, max_name_tokens=24)


def tiny_bert2bert(folder: Path) -> Seq2Seq:
    from transformers import BertConfig, BertLMHeadModel, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    words = sorted({w.lower() for t in kb_texts() for w in t.replace("-", " - ").replace(",", " , ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz0123456789") + [
        "##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + words
    vocab = list(dict.fromkeys(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    enc_cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=256)
    dec_cfg = BertConfig(**{**enc_cfg.to_dict(), "is_decoder": True, "add_cross_attention": True})
    return Seq2Seq.from_encoder_decoder(BertModel(enc_cfg), BertLMHeadModel(dec_cfg), tok,
                                        max_context_tokens=64, max_name_tokens=24)


@pytest.fixture(params=["bart", "bert2bert"])
def tiny_seq2seq(request, tmp_path) -> Seq2Seq:
    return tiny_bart(tmp_path / "bart") if request.param == "bart" else tiny_bert2bert(tmp_path / "b2b")


def tiny_t5(folder: Path) -> Seq2Seq:
    """A tiny T5 (tied embeddings: the decoder output is rescaled before the projection)."""
    from transformers import T5Config, T5ForConditionalGeneration

    bart = tiny_bart(folder)
    tok = bart.tokenizer
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_heads=2,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    return Seq2Seq(T5ForConditionalGeneration(cfg), tok, max_context_tokens=64, max_name_tokens=24)
