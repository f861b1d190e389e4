"""A Hugging Face seq2seq model (BART, T5 or `EncoderDecoderModel`) that reads a mention in
context and scores or generates entity names.

The embedded default warm-starts an `EncoderDecoderModel` from the bundled all-MiniLM-L6-v2:
the encoder is MiniLM, the decoder is MiniLM's first `decoder_layers` layers with new
cross-attention, and `[START_ENT]`/`[END_ENT]` are added as special tokens. A checkpoint that
already is a seq2seq model (e.g. `facebook/genre-linking-blink`) is used as it is, with the
mention markers as plain text, as the public GENRE checkpoints expect.
"""

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import srsly
import torch

from ..errors import ConfigError
from ..models.hf import check_precision, from_pretrained as hf_load, inference_dtype, inference_precision, resolve_model_name

START_ENT = "[START_ENT]"
END_ENT = "[END_ENT]"
LENGTHS_FILE = "entlink_lengths.json"  # the context and name lengths, saved with the weights


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence "newly initialized weights" notices while warm-starting."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


class Seq2Seq:
    """A seq2seq model and its tokenizer, with the target conventions of that model."""

    def __init__(self, model, tokenizer, *, max_context_tokens: int = 128, max_name_tokens: int = 32,
                 precision: str = "float32"):
        check_precision(precision, type(self).__name__)
        self.model = model
        self.precision = precision
        self.tokenizer = tokenizer
        self.max_context_tokens = max_context_tokens
        self.max_name_tokens = max_name_tokens
        cfg = model.config
        self.start_id = _first_int(cfg.decoder_start_token_id, getattr(model.generation_config, "decoder_start_token_id", None))
        self.eos_id = _first_int(tokenizer.eos_token_id, tokenizer.sep_token_id, getattr(cfg, "eos_token_id", None))
        self.pad_id = _first_int(tokenizer.pad_token_id, cfg.pad_token_id, self.eos_id)
        if self.start_id is None or self.eos_id is None:
            raise ConfigError(
                f"{type(model).__name__}: the model config needs decoder_start_token_id and the tokenizer "
                "an eos (or sep) token"
            )
        gen = model.generation_config
        gen.decoder_start_token_id = self.start_id
        gen.eos_token_id = self.eos_id
        gen.pad_token_id = self.pad_id
        self.model.eval()

    # --- construction -----------------------------------------------------------------
    @classmethod
    def load(cls, name: Optional[str] = None, *, decoder_layers: int = 2, **kwargs) -> "Seq2Seq":
        """Load a seq2seq checkpoint, or warm-start one from an encoder (default: MiniLM).

        `name` is a Hugging Face name or local folder; empty means the embedded MiniLM.
        """
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

        path = resolve_model_name(name)
        try:
            config = AutoConfig.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise ConfigError(f"linker model {name!r}: cannot load a Hugging Face config/tokenizer from "
                              f"{path!r} ({err})") from err
        if getattr(config, "is_encoder_decoder", False):
            model = AutoModelForSeq2SeqLM.from_pretrained(path)
            return cls(model, tokenizer, **kwargs)
        return cls.warm_start(path, tokenizer, decoder_layers=decoder_layers, **kwargs)

    @classmethod
    def warm_start(cls, path: str, tokenizer, *, decoder_layers: int = 2, **kwargs) -> "Seq2Seq":
        """An `EncoderDecoderModel` whose encoder and decoder start from the encoder at `path`."""
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

        with _quiet_transformers():
            encoder = AutoModel.from_pretrained(path)
            dec_cfg = AutoConfig.from_pretrained(path)
            dec_cfg.is_decoder = True
            dec_cfg.add_cross_attention = True
            dec_cfg.num_hidden_layers = min(int(decoder_layers), dec_cfg.num_hidden_layers)
            try:
                decoder = AutoModelForCausalLM.from_pretrained(path, config=dec_cfg)
            except ValueError as err:
                raise ConfigError(f"linker model {path!r}: {type(encoder).__name__} has no causal-LM "
                                  f"head to warm-start a decoder from ({err})") from err
            _cross_from_self_attention(decoder)
        return cls.from_encoder_decoder(encoder, decoder, tokenizer, **kwargs)

    @classmethod
    def from_encoder_decoder(cls, encoder, decoder, tokenizer, **kwargs) -> "Seq2Seq":
        """Join an encoder and a decoder (with cross-attention); add the mention markers."""
        from transformers import EncoderDecoderModel

        tokenizer.add_special_tokens({"additional_special_tokens": [START_ENT, END_ENT]})
        with _quiet_transformers():
            model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
            model.encoder.resize_token_embeddings(len(tokenizer))
            model.decoder.resize_token_embeddings(len(tokenizer))
        model.config.decoder.vocab_size = len(tokenizer)
        start = _first_int(tokenizer.cls_token_id, tokenizer.bos_token_id)
        model.config.decoder_start_token_id = start
        model.config.pad_token_id = tokenizer.pad_token_id
        model.config.eos_token_id = _first_int(tokenizer.sep_token_id, tokenizer.eos_token_id)
        model.generation_config.decoder_start_token_id = start
        return cls(model, tokenizer, **kwargs)

    def save(self, path: Union[str, Path]) -> None:
        """Model weights as safetensors, config and tokenizer files (no pickle)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        srsly.write_json(path / LENGTHS_FILE, {"max_context_tokens": self.max_context_tokens,
                                               "max_name_tokens": self.max_name_tokens})

    @classmethod
    def from_saved(cls, path: Union[str, Path], **kwargs) -> "Seq2Seq":
        """A saved model; the context and name lengths it was saved with win over `kwargs`."""
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        lengths = Path(path) / LENGTHS_FILE
        if lengths.exists():
            saved = srsly.read_json(lengths)
            for key in ("max_context_tokens", "max_name_tokens"):
                if not isinstance(saved.get(key), int) or isinstance(saved[key], bool) or saved[key] < 2:
                    raise ConfigError(f"{lengths}: {key!r} must be an integer >= 2, not {saved.get(key)!r}")
                kwargs[key] = saved[key]
        path = str(path)
        with _quiet_transformers():
            model = hf_load(AutoModelForSeq2SeqLM, path, "linker model", saved=True)
        return cls(model, hf_load(AutoTokenizer, path, "linker tokenizer"), **kwargs)

    # --- conventions --------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def fingerprint(self) -> str:
        """Identifies the tokenizer's vocabulary and target conventions (for the name trie)."""
        vocab = self.tokenizer.get_vocab()
        probe = self.target_ids(["Abc def-1 ß"])[0]
        return f"{type(self.tokenizer).__name__}:{len(vocab)}:{self.start_id}:{self.eos_id}:{probe}"

    def target_ids(self, names: Sequence[str]) -> List[List[int]]:
        """Decoder targets for names, as the model generates them after its start token:
        the tokenizer's own special tokens (e.g. BART's `<s>`), the name, then eos."""
        if not names:
            return []
        enc = self.tokenizer(text_target=list(names), truncation=True, max_length=self.max_name_tokens + 2)
        out = []
        for ids in enc["input_ids"]:
            ids = list(ids)
            if ids and ids[0] == self.start_id:
                ids = ids[1:]
            ids = [i for i in ids if i != self.eos_id][: self.max_name_tokens]
            out.append(ids + [self.eos_id])
        return out

    def contexts(self, texts: Sequence[str]) -> dict:
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_context_tokens,
                             padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    # --- scoring ------------------------------------------------------------------------
    def _targets(self, seqs: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        labels = torch.full((len(seqs), width), -100, dtype=torch.long)
        dec_in = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            labels[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            dec_in[i, 0] = self.start_id
            if len(s) > 1:
                dec_in[i, 1 : len(s)] = torch.tensor(s[:-1], dtype=torch.long)
        return labels.to(self.device), dec_in.to(self.device)

    def _decode(self, encoder_hidden, attention_mask, rows: torch.Tensor, seqs: Sequence[Sequence[int]]):
        from transformers.modeling_outputs import BaseModelOutput

        labels, dec_in = self._targets(seqs)
        out = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden[rows]),
            attention_mask=attention_mask[rows],
            decoder_input_ids=dec_in,
            decoder_attention_mask=(labels != -100).long(),
            use_cache=False,
        )
        return out.logits, labels

    def loss(self, texts: Sequence[str], targets: Sequence[Sequence[int]]) -> torch.Tensor:
        """Mean token cross-entropy of `targets[i]` given `texts[i]` (with gradients)."""
        batch = self.contexts(texts)
        hidden = self.model.get_encoder()(**batch).last_hidden_state
        rows = torch.arange(len(texts), device=self.device)
        logits, labels = self._decode(hidden, batch["attention_mask"], rows, targets)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                                 ignore_index=-100)  # float32 also under bfloat16 autocast

    @torch.no_grad()
    def score(self, texts: Sequence[str], targets: Sequence[Sequence[Sequence[int]]],
              chunk: int = 256) -> List[np.ndarray]:
        """Length-normalised log-probability (mean per token) of each candidate target of
        each text: the encoder runs once per text, the decoder once per chunk of targets, and
        the output softmax's normaliser once per distinct (text, prefix) in the chunk."""
        out: List[np.ndarray] = [np.zeros(len(t), dtype=np.float32) for t in targets]
        pairs = [(i, j) for i, ts in enumerate(targets) for j in range(len(ts))]
        if not pairs:
            return out
        pairs.sort(key=lambda p: len(targets[p[0]][p[1]]))  # little padding per chunk
        with self._precision():
            batch = self.contexts(texts)
            hidden = self.model.get_encoder()(**batch).last_hidden_state
            for start in range(0, len(pairs), chunk):
                part = pairs[start : start + chunk]
                rows = torch.tensor([i for i, _ in part], device=self.device)
                seqs = [targets[i][j] for i, j in part]
                with _head_inputs(self.model) as captured, _shared_cross_kv(self.model, hidden, rows):
                    _, labels = self._decode(hidden, batch["attention_mask"], rows, seqs)
                tok = self._token_logprobs(captured[-1], part, seqs, labels)
                mask = labels != -100
                mean = (tok.sum(-1) / mask.sum(-1)).cpu().numpy()
                for (i, j), v in zip(part, mean):
                    out[i][j] = v
        return out

    def _token_logprobs(self, states: torch.Tensor, part, seqs, labels: torch.Tensor) -> torch.Tensor:
        """log p(label | prefix) from the states entering the output projection, with the
        normaliser computed once per distinct (text, prefix); padding positions are 0."""
        weight, bias = _output_projection(self.model)
        mask = labels != -100
        index = np.zeros(tuple(labels.shape), dtype=np.int64)
        first: dict = {}
        where = []  # (row, position) of each distinct (text, prefix): its last occurrence
        for p, ((i, _), seq) in enumerate(zip(part, seqs)):
            for k in range(len(seq)):
                key = (i, tuple(seq[:k]))
                if key not in first:
                    first[key] = len(first)
                    where.append((p, k))
                where[first[key]] = (p, k)
                index[p, k] = first[key]
        rows_cols = torch.as_tensor(np.asarray(where, dtype=np.int64).reshape(-1, 2), device=states.device)
        index = torch.as_tensor(index, device=states.device)
        states = states.float()
        unique = states[rows_cols[:, 0], rows_cols[:, 1]]
        lse = torch.empty(len(first), dtype=torch.float32, device=states.device)
        for s in range(0, len(first), 2048):
            z = torch.nn.functional.linear(unique[s : s + 2048], weight.to(unique.dtype), None).float()
            if bias is not None:
                z += bias
            m = z.amax(-1, keepdim=True)
            lse[s : s + 2048] = z.sub_(m).exp_().sum(-1).log_() + m.squeeze(-1)
        gold = labels.clamp(min=0)
        logit = (states * weight.float()[gold]).sum(-1)
        if bias is not None:
            logit = logit + bias[gold]
        return (logit - lse[index]) * mask

    @property
    def inference_dtype(self) -> torch.dtype:
        """bfloat16 when asked for, or with `auto` on hardware that computes it natively."""
        return inference_dtype(self.precision, self.device)

    def _precision(self):
        return inference_precision(self.precision, self.device)

    @torch.no_grad()
    def generate(self, texts: Sequence[str], allowed, *, num_beams: int, num_return: int) -> List[List[List[int]]]:
        """Constrained beam search; `allowed` is a `prefix_allowed_tokens_fn`. Returns, per
        text, up to `num_return` target sequences (without the start token, ending in eos)."""
        batch = self.contexts(texts)
        with self._precision():
            seqs = self.model.generate(
                **batch, num_beams=num_beams, num_return_sequences=num_return, do_sample=False,
                max_new_tokens=self.max_name_tokens + 2, prefix_allowed_tokens_fn=allowed, early_stopping=True,
            )
        result: List[List[List[int]]] = [[] for _ in texts]
        for k, row in enumerate(seqs.tolist()):
            row = row[1:]
            if self.eos_id in row:
                row = row[: row.index(self.eos_id) + 1]
            else:
                continue  # ran out of length: not a complete name
            result[k // num_return].append(row)
        return result


@contextmanager
def _head_inputs(model) -> Iterator[List[torch.Tensor]]:
    """Run `model` without its vocabulary projection, collecting the states that would enter
    it (after any head transform or scaling); logits come back as zeros of width 1."""
    head = model.get_output_embeddings()
    captured: List[torch.Tensor] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        captured.append(x)
        return x.new_zeros(x.shape[:-1] + (1,))

    owners = [m for m in (model, getattr(model, "model", None)) if isinstance(getattr(m, "final_logits_bias", None), torch.Tensor)]
    saved = [m.final_logits_bias for m in owners]
    head.forward = forward
    for m in owners:  # BART adds this after the projection; keep the zeros narrow
        m.final_logits_bias = m.final_logits_bias.new_zeros((1, 1))
    try:
        yield captured
    finally:
        del head.forward
        for m, b in zip(owners, saved):
            m.final_logits_bias = b


def _cross_from_self_attention(decoder) -> int:
    """Start each new cross-attention block as a copy of its layer's pretrained self-attention
    (same shapes only): the decoder then attends to the context from the first step instead of
    through random projections. Returns the number of blocks copied."""
    copied = 0
    for module in decoder.modules():
        own, cross = getattr(module, "attention", None), getattr(module, "crossattention", None)
        if own is None or cross is None:
            continue
        src, dst = own.state_dict(), cross.state_dict()
        if src.keys() == dst.keys() and all(src[k].shape == dst[k].shape for k in src):
            cross.load_state_dict(src)
            copied += 1
    return copied


# The key/value projections of encoder states in the cross-attention of BERT-style decoders,
# BART/mBART/Marian and T5.
_CROSS_KV = (".crossattention.self.key", ".crossattention.self.value", ".encoder_attn.k_proj",
             ".encoder_attn.v_proj", ".EncDecAttention.k", ".EncDecAttention.v")


@contextmanager
def _shared_cross_kv(model, encoder_hidden: torch.Tensor, rows: torch.Tensor) -> Iterator[None]:
    """While decoding many targets per text (`rows` maps targets to texts), project each
    text's encoder states once per cross-attention layer instead of once per target."""
    modules = [m for name, m in model.named_modules()
               if name.endswith(_CROSS_KV) and isinstance(m, torch.nn.Linear)]
    shape = (len(rows),) + tuple(encoder_hidden.shape[1:])

    def shared(module: torch.nn.Linear):
        projected: List[torch.Tensor] = []

        def forward(x: torch.Tensor) -> torch.Tensor:
            if tuple(x.shape) != shape:  # not the encoder states (e.g. a projected encoder)
                return torch.nn.functional.linear(x, module.weight, module.bias)
            if not projected:
                projected.append(torch.nn.functional.linear(encoder_hidden, module.weight, module.bias))
            return projected[0][rows]  # advanced indexing: many times faster than index_select on CPU

        return forward

    for m in modules:
        m.forward = shared(m)
    try:
        yield
    finally:
        for m in modules:
            del m.forward


def _output_projection(model) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Weight and total bias of the vocabulary projection (incl. BART's `final_logits_bias`)."""
    head = model.get_output_embeddings()
    bias = head.bias.float() if getattr(head, "bias", None) is not None else None
    extra = getattr(model, "final_logits_bias", None)
    if isinstance(extra, torch.Tensor):
        extra = extra.reshape(-1).float()
        bias = extra if bias is None else bias + extra
    return head.weight, bias


def _first_int(*values) -> Optional[int]:
    for v in values:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return int(v)
    return None
