"""The reader: one encoder pass over `text [SEP] [R-0] type₀ [R-1] type₁ …` that scores every
(head span, tail span, candidate type) of a window at once, and optionally classifies
enumerated spans into entity labels (for end-to-end use without an upstream NER).

Span representation: the first wordpiece of its first word, the last wordpiece of its last
word, the mean of its wordpieces and a width embedding; with `typed_spans`, the relation
heads also read an embedding of each span's entity label (from the upstream NER, the gold
entities, or the reader's own span classifier), so "Peop … Loc" and "Org … Loc" need not be
told apart from the words alone. With `entity_marker` (e.g. "*"), each entity span is written between
two markers in the text the encoder reads (`* aspirin * induced * asthma *`), so every layer
sees where the entities are; a span is then represented from its markers (first and last
wordpiece) and what lies between them. A relation logit is
`GELU(H·s_head + T·s_tail + C·c_ht) · R·m_k`, where `c_ht` is the mean of the wordpieces between
the two spans and `m_k` the encoder state of the candidate marker `[R-k]`: all pairs and all
candidates come from one matrix product (means from one cumulative sum), never a pass per pair
or per candidate.

Saved as a folder: `encoder/` (Hugging Face `save_pretrained`, safetensors, with the
tokenizer and its added markers), `heads.safetensors` and `reader.json`.
"""

import inspect
import json
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import ConfigError, KBFormatError, check_choice
from ..files import read_json_file
from ..models.hf import from_pretrained as hf_load, resolve_model_name

Spans = List[Tuple[int, int]]  # word offsets (start, end exclusive) within a window
TYPE_DIM = 32  # size of the entity-label embedding of `typed_spans`
PAIR_LOSSES = ("mention", "logsumexp", "mention+logsumexp")
MASKED = -1e4  # a logit that no pair of a bag has (finite, so that empty bags give no NaN gradient)


def marker(i: int) -> str:
    return f"[R-{i}]"


@dataclass
class ReaderInput:
    """One window: its words, the entity spans to relate, and the candidate type texts."""

    words: List[str]
    spans: Spans
    candidates: List[str]
    enumerate_spans: bool = False
    gold_relations: Dict[Tuple[int, int, int], float] = field(default_factory=dict)  # (head, tail, cand) -> 1
    gold_entities: Dict[Tuple[int, int], int] = field(default_factory=dict)  # span -> entity label index (1-based)
    span_labels: List[int] = field(default_factory=list)  # per span: entity label index (1-based; 0 unknown)
    piece_ids: Optional[List[List[int]]] = None  # per word: its wordpiece ids, where already tokenised
    span_groups: List[int] = field(default_factory=list)  # per span: its bag (e.g. KB id) for `pair_loss = "logsumexp"`


@dataclass
class ReaderOutput:
    relation_logits: torch.Tensor  # [n_spans, n_spans, n_candidates]
    entity_spans: Spans = field(default_factory=list)  # enumerated spans
    entity_logits: Optional[torch.Tensor] = None  # [n_enumerated, 1 + n_entity_labels]
    entities: List[Tuple[float, Tuple[int, int], int]] = field(default_factory=list)  # decoded (score, span, label)


def decode_spans(spans: Spans, logits: torch.Tensor) -> List[Tuple[float, Tuple[int, int], int]]:
    """Spans whose best entity label beats "no entity", the most probable first when they
    overlap; returned in text order as (probability, span, label index from 0)."""
    if not len(spans):
        return []
    probs = torch.softmax(logits.detach().float(), -1)
    best, label = probs[:, 1:].max(-1)
    chosen = sorted(((float(best[k]), spans[k], int(label[k])) for k in torch.nonzero(best > probs[:, 0]).flatten().tolist()),
                    key=lambda c: -c[0])
    taken: set = set()
    keep = []
    for score, (s, e), lab in chosen:
        if any(i in taken for i in range(s, e)):
            continue
        taken.update(range(s, e))
        keep.append((score, (s, e), lab))
    return sorted(keep, key=lambda c: c[1])


def _sequence_limit(tokenizer) -> Optional[int]:
    """The longest input the tokenizer's encoder takes (its `model_max_length`), or None
    where the tokenizer names no real limit (relative positions)."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 100_000 else None


class RelationReader(nn.Module):
    def __init__(self, encoder, tokenizer, *, entity_labels: Sequence[str], max_candidates: int,
                 max_span_width: int = 10, hidden: int = 256, dropout: float = 0.1, max_text_tokens: int = 256,
                 typed_spans: bool = False, entity_marker: str = "", pair_loss: str = "mention"):
        super().__init__()
        self.pair_loss = check_choice("pair_loss", pair_loss, PAIR_LOSSES)
        if entity_marker and (entity_marker.split() != [entity_marker]):
            raise ConfigError(f"entity_marker {entity_marker!r}: expected one word without spaces (e.g. \"*\"), or empty")
        self.entity_marker = entity_marker or ""
        if max_candidates < 1 or max_span_width < 1 or hidden < 1:
            raise ConfigError("max_candidates, max_span_width and hidden must be positive")
        if typed_spans and not entity_labels:
            raise ConfigError("typed_spans needs the entity labels (entity_labels, or training entities to read them from)")
        self.typed_spans = bool(typed_spans)
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.entity_labels = list(entity_labels)
        self.max_candidates = int(max_candidates)
        self.max_span_width = int(max_span_width)
        self.max_text_tokens = int(max_text_tokens)
        self.sequence_limit = _sequence_limit(tokenizer)
        if self.max_text_tokens < 1 or (self.sequence_limit and self.max_text_tokens + 4 > self.sequence_limit):
            raise ConfigError(f"max_text_tokens = {self.max_text_tokens}: a window must fit the encoder's "
                              f"{self.sequence_limit or 'sequence'} wordpieces with the candidates and 4 special tokens")
        self.hidden = int(hidden)
        self.dropout_p = float(dropout)
        markers = [marker(i) for i in range(self.max_candidates)]
        missing = [m for m in markers if m not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": markers}, replace_additional_special_tokens=False)
            encoder.resize_token_embeddings(len(tokenizer))
        self.marker_ids = tokenizer.convert_tokens_to_ids(markers)
        self._marker_index = {m: i for i, m in enumerate(self.marker_ids)}  # token id -> candidate position
        size = encoder.config.hidden_size
        span_dim = 3 * size + 32
        self.width = nn.Embedding(self.max_span_width + 1, 32)
        self.dropout = nn.Dropout(dropout)
        self.entity_head = nn.Sequential(nn.Linear(span_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                         nn.Linear(hidden, len(self.entity_labels) + 1))
        rel_dim = span_dim
        if self.typed_spans:  # index 0: a span of unknown label
            self.span_type = nn.Embedding(len(self.entity_labels) + 1, TYPE_DIM)
            rel_dim += TYPE_DIM
        self.head_proj = nn.Linear(rel_dim, hidden)
        self.tail_proj = nn.Linear(rel_dim, hidden)
        self.between_proj = nn.Linear(size, hidden)
        self.rel_proj = nn.Linear(size, hidden)
        self.rel_bias = nn.Linear(size, 1)

    # --- construction -----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name: Optional[str] = None, **kwargs) -> "RelationReader":
        """A reader on a Hugging Face encoder (name or folder; empty: the embedded MiniLM)."""
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_name(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            encoder = AutoModel.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise ConfigError(f"relation reader model {name!r}: cannot load a Hugging Face encoder from "
                              f"{path!r} ({err})") from err
        return cls(encoder, tokenizer, **kwargs)

    def save(self, path: Union[str, Path]) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(path / "encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(path / "encoder")
        heads = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        save_file(heads, str(path / "heads.safetensors"))
        (path / "reader.json").write_text(json.dumps(self.settings(), indent=2), encoding="utf8")

    def settings(self) -> Dict:
        return {"entity_labels": self.entity_labels, "max_candidates": self.max_candidates,
                "max_span_width": self.max_span_width, "hidden": self.hidden, "dropout": self.dropout_p,
                "max_text_tokens": self.max_text_tokens, "typed_spans": self.typed_spans,
                "entity_marker": self.entity_marker, "pair_loss": self.pair_loss}

    @classmethod
    def load(cls, path: Union[str, Path]) -> "RelationReader":
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        for f in ("reader.json", "heads.safetensors", "encoder"):
            if not (path / f).exists():
                raise KBFormatError(f"{path} is not a relation reader folder (no {f})")
        settings = read_json_file(path / "reader.json")
        tokenizer = hf_load(AutoTokenizer, path / "encoder", "relation reader")
        encoder = hf_load(AutoModel, path / "encoder", "relation reader", saved=True)
        if not isinstance(settings, dict) or set(settings) - set(inspect.signature(cls).parameters):
            raise KBFormatError(f"{path / 'reader.json'}: expected an object with the reader's settings")
        reader = cls(encoder, tokenizer, **settings)
        missing, unexpected = reader.load_state_dict(load_file(str(path / "heads.safetensors")), strict=False)
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise KBFormatError(f"{path}/heads.safetensors does not fit the reader: missing {missing}, "
                                f"unexpected {unexpected}")
        return reader.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- wordpieces ---------------------------------------------------------------------
    def word_pieces(self, words: Sequence[str]) -> List[int]:
        """Wordpieces per word (at least 1), to cut windows by. A text longer than the encoder's
        maximum is expected here (it is cut into windows), so the tokenizer is not asked to warn."""
        return self.word_pieces_of([words])[0]

    def word_pieces_of(self, texts: Sequence[Sequence[str]]) -> List[List[int]]:
        """`word_pieces` of several texts, tokenised in one call."""
        return [[max(len(p), 1) for p in text] for text in self.word_piece_ids(texts)]

    def word_piece_ids(self, texts: Sequence[Sequence[str]]) -> List[List[List[int]]]:
        """Per text, per word: its wordpiece ids (no special tokens), from one tokenizer call.
        Given to the reader as `ReaderInput.piece_ids`, they spare it tokenising the text again."""
        full = [i for i, words in enumerate(texts) if len(words)]
        out: List[List[List[int]]] = [[] for _ in texts]
        if not full:
            return out
        enc = self.tokenizer([list(texts[i]) for i in full], is_split_into_words=True, add_special_tokens=False,
                             verbose=False)
        for b, i in enumerate(full):
            pieces: List[List[int]] = [[] for _ in texts[i]]
            for w, t in zip(enc.word_ids(b), enc["input_ids"][b]):
                if w is not None:
                    pieces[w].append(t)
            out[i] = pieces
        return out

    def _pair_template(self) -> Optional[Tuple[List[int], List[int], List[int], List[int], Tuple[int, int]]]:
        """How the tokenizer joins a text and a candidate block: (special ids before, between,
        after; their token type ids; the type ids of the two sequences), or None where inputs
        cannot be assembled from per-word wordpieces (a slow tokenizer, left padding or
        truncation, or wordpieces that depend on a word's neighbours)."""
        if "_template" in self.__dict__:
            return self.__dict__["_template"]
        template = None
        tok = self.tokenizer
        try:
            if getattr(tok, "is_fast", False) and tok.padding_side == "right" and tok.truncation_side == "right" \
                    and tok.pad_token_id is not None:
                alone = self.word_piece_ids([["paris"], ["london", "paris"]])
                enc = tok(["london"], ["paris"], is_split_into_words=True, return_token_type_ids=True)
                seq = enc.sequence_ids(0)
                ids, types = enc["input_ids"], enc["token_type_ids"]
                regions: List[List[int]] = [[], [], []]  # positions of the specials before, between, after
                part, seqs = 0, [[], []]
                for pos, s in enumerate(seq):
                    if s is None:
                        regions[part].append(pos)
                    else:
                        seqs[s].append(pos)
                        part = s + 1
                context_free = alone[0][0] == alone[1][1]  # "paris" alone and after "london"
                in_order = bool(seqs[0] and seqs[1]) and all(p == list(range(p[0], p[-1] + 1)) for p in seqs) \
                    and seqs[0][-1] < seqs[1][0] and (not regions[1] or seqs[0][-1] < regions[1][0] < seqs[1][0])
                same_pieces = [ids[p] for p in seqs[0]] == alone[1][0] and [ids[p] for p in seqs[1]] == alone[0][0]
                if context_free and in_order and same_pieces:
                    template = ([ids[p] for p in regions[0]], [ids[p] for p in regions[1]], [ids[p] for p in regions[2]],
                                [types[p] for r in regions for p in r], (types[seqs[0][0]], types[seqs[1][0]]))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            template = None
        self.__dict__["_template"] = template
        return template

    def _assembled(self, inputs: Sequence[ReaderInput], cand_words: List[List[str]], max_length: int):
        """The encoder's inputs built from the windows' `piece_ids` and cached candidate-block
        wordpieces, as the tokenizer would make them; with the wordpiece positions of each
        window's words and candidate markers. None where the tokenizer allows no assembly."""
        template = self._pair_template()
        if template is None or any(x.piece_ids is None or len(x.piece_ids) != len(x.words) or not x.words
                                   for x in inputs):
            return None
        before, between, after, special_types, (type_a, type_b) = template
        n_before, n_between, n_after = len(before), len(between), len(after)
        marker_set = self._marker_index
        rows, type_rows, firsts, lasts, markers = [], [], [], [], []
        for x, words in zip(inputs, cand_words):
            cand = self._block_ids(tuple(words))
            room = max(0, max_length - n_before - n_between - n_after - len(cand))
            text: List[int] = []
            first: Dict[int, int] = {}
            last: Dict[int, int] = {}
            for w, pieces in enumerate(x.piece_ids):
                if not pieces:
                    continue
                if len(text) + len(pieces) > room:
                    pieces = pieces[: room - len(text)]
                    if not pieces:
                        break
                first[w] = n_before + len(text)
                text.extend(pieces)
                last[w] = n_before + len(text) - 1
            start = n_before + len(text) + n_between
            found = {marker_set[t]: start + k for k, t in enumerate(cand) if t in marker_set}
            markers.append([found.get(i, 0) for i in range(len(x.candidates))])
            rows.append(before + text + between + cand + after)
            type_rows.append(special_types[:n_before] + [type_a] * len(text) + special_types[n_before : n_before + n_between]
                             + [type_b] * len(cand) + special_types[n_before + n_between :])
            firsts.append(first)
            lasts.append(last)
        width = max(len(r) for r in rows)
        pad, pad_type = self.tokenizer.pad_token_id, getattr(self.tokenizer, "pad_token_type_id", 0)
        batch = {"input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
                 "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])}
        if "token_type_ids" in self.tokenizer.model_input_names:
            batch["token_type_ids"] = torch.tensor([r + [pad_type] * (width - len(r)) for r in type_rows])
        return batch, firsts, lasts, markers

    def _block_ids(self, words: Tuple[str, ...]) -> List[int]:
        """The wordpiece ids of a candidate block (cached: a pipeline has few distinct blocks)."""
        cache = self.__dict__.setdefault("_blocks", {})
        if words not in cache:
            if len(cache) > 10_000:
                cache.clear()
            cache[words] = self.tokenizer(list(words), is_split_into_words=True, add_special_tokens=False,
                                          verbose=False)["input_ids"]
        return cache[words]

    def marker_pieces(self) -> int:
        """Wordpieces of one entity marker (0 without markers), for cutting windows."""
        return len(self._block_ids((self.entity_marker,))) if self.entity_marker else 0

    def _marked(self, x: ReaderInput) -> ReaderInput:
        """`x` with `entity_marker` written before and after its spans, the spans widened to
        their markers (unchanged without markers, or for enumerated spans)."""
        if not self.entity_marker or x.enumerate_spans or not x.spans:
            return x
        starts, ends = {s for s, _ in x.spans}, {e - 1 for _, e in x.spans}
        known = x.piece_ids is not None and len(x.piece_ids) == len(x.words)
        mark = self._block_ids((self.entity_marker,)) if known else []
        words: List[str] = []
        pieces: Optional[List[List[int]]] = [] if known else None
        opened: Dict[int, int] = {}
        closed: Dict[int, int] = {}
        for i, word in enumerate(x.words):
            if i in starts:
                opened[i] = len(words)
                words.append(self.entity_marker)
                if pieces is not None:
                    pieces.append(list(mark))
            words.append(word)
            if pieces is not None:
                pieces.append(x.piece_ids[i])  # type: ignore[index]
            if i in ends:
                words.append(self.entity_marker)
                closed[i] = len(words)
                if pieces is not None:
                    pieces.append(list(mark))
        return replace(x, words=words, spans=[(opened[s], closed[e - 1]) for s, e in x.spans], piece_ids=pieces)

    def _encode(self, inputs: Sequence[ReaderInput]):
        cand_words = []
        for x in inputs:
            if len(x.candidates) > self.max_candidates:
                raise ConfigError(f"{len(x.candidates)} candidates for a window; the reader has "
                                  f"{self.max_candidates} markers")
            words: List[str] = []
            for i, text in enumerate(x.candidates):
                words.append(marker(i))
                words.extend(text.split())
            cand_words.append(words or [self.tokenizer.sep_token or "."])
        longest = max(self._length(tuple(w)) for w in cand_words)
        if self.sequence_limit and self.max_text_tokens + longest + 4 > self.sequence_limit:
            raise ConfigError(
                f"max_text_tokens = {self.max_text_tokens} plus the candidates' {longest} wordpieces and 4 special "
                f"tokens exceed the encoder's {self.sequence_limit}: lower max_text_tokens (or max_candidates)")
        max_length = self.max_text_tokens + longest + 4
        assembled = self._assembled(inputs, cand_words, max_length)
        if assembled is not None:
            batch, firsts, lasts, markers = assembled
            batch = {k: v.to(self.device) for k, v in batch.items()}
            return self.encoder(**batch).last_hidden_state, firsts, lasts, markers
        texts = [x.words or ["."] for x in inputs]
        enc = self.tokenizer(texts, cand_words, is_split_into_words=True, truncation="only_first",
                             max_length=max_length, padding=True, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in enc.items()
                 if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self.encoder(**batch).last_hidden_state
        firsts, lasts, markers = [], [], []
        marker_set = self._marker_index
        ids = enc["input_ids"].tolist()
        for b, x in enumerate(inputs):
            first: Dict[int, int] = {}
            last: Dict[int, int] = {}
            seq = enc.sequence_ids(b)
            for pos, w in enumerate(enc.word_ids(b)):
                if w is None or seq[pos] != 0:
                    continue
                first.setdefault(w, pos)
                last[w] = pos
            firsts.append(first)
            lasts.append(last)
            found = {marker_set[t]: pos for pos, (t, s) in enumerate(zip(ids[b], seq)) if s == 1 and t in marker_set}
            markers.append([found.get(i, 0) for i in range(len(x.candidates))])
        return hidden, firsts, lasts, markers

    def _length(self, words: Tuple[str, ...]) -> int:
        return len(self._block_ids(words))

    def _positions(self, spans: Spans, first: Dict[int, int], last: Dict[int, int], device) -> Tuple[torch.Tensor, torch.Tensor]:
        # a word cut off by truncation falls back to the last encoded position
        end_pos = max(last.values()) if last else 0
        starts = torch.tensor([first.get(s, end_pos) for s, _ in spans], dtype=torch.long, device=device)
        ends = torch.tensor([last.get(e - 1, end_pos) for _, e in spans], dtype=torch.long, device=device)
        return starts, ends

    def _span_repr(self, h: torch.Tensor, cum: torch.Tensor, spans: Spans, first: Dict[int, int],
                   last: Dict[int, int], positions: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        if not spans:
            return h.new_zeros((0, 3 * h.shape[-1] + 32))
        starts, ends = positions if positions is not None else self._positions(spans, first, last, h.device)
        mean = (cum[ends + 1] - cum[starts]) / (ends + 1 - starts).clamp(min=1).unsqueeze(-1).to(h.dtype)
        widths = torch.tensor([min(e - s, self.max_span_width) for s, e in spans], device=h.device)
        return torch.cat([h[starts], h[ends], mean, self.width(widths)], dim=-1)

    @staticmethod
    def _between(cum: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """[n, n, hidden size]: mean of the wordpieces strictly between span i and span j
        (`starts`, `ends`: the spans' first and last wordpiece positions)."""
        lo = torch.minimum(ends[:, None], ends[None, :]) + 1
        hi = torch.maximum(starts[:, None], starts[None, :])
        hi = torch.maximum(hi, lo)
        return (cum[hi] - cum[lo]) / (hi - lo).clamp(min=1).unsqueeze(-1).to(cum.dtype)

    def enumerate_spans(self, n_words: int) -> Spans:
        return [(s, e) for s in range(n_words) for e in range(s + 1, min(n_words, s + self.max_span_width) + 1)]

    def forward(self, inputs: Sequence[ReaderInput], *, decode_entities: bool = False) -> List[ReaderOutput]:
        """Relation logits of each window's spans; with `enumerate_spans`, entity logits of
        every span up to `max_span_width` words. With `decode_entities` the window's spans are
        first replaced, in the same encoder pass, by its best non-overlapping entity spans
        (`ReaderOutput.entities`: (score, span, label index))."""
        inputs = [self._marked(x) for x in inputs]
        hidden, firsts, lasts, markers = self._encode(inputs)
        hidden = self.dropout(hidden)
        size = hidden.shape[-1]
        windows, span_parts, marker_parts = [], [], []
        for b, x in enumerate(inputs):
            h = hidden[b]
            cum = torch.cat([h.new_zeros((1, size)), h.cumsum(0)])
            entity_spans: Spans = []
            entity_logits = None
            entities: List[Tuple[float, Tuple[int, int], int]] = []
            if x.enumerate_spans:
                entity_spans = self.enumerate_spans(len(x.words))
                entity_logits = self.entity_head(self._span_repr(h, cum, entity_spans, firsts[b], lasts[b]))
                if decode_entities:
                    entities = decode_spans(entity_spans, entity_logits)
                    x.spans = [sp for _, sp, _ in entities]
                    x.span_labels = [label + 1 for _, _, label in entities]
            positions = self._positions(x.spans, firsts[b], lasts[b], h.device) if x.spans else None
            spans = self._span_repr(h, cum, x.spans, firsts[b], lasts[b], positions)
            if self.typed_spans:
                labels = x.span_labels if len(x.span_labels) == len(x.spans) else [0] * len(x.spans)
                spans = torch.cat([spans, self.span_type(torch.tensor(labels, dtype=torch.long, device=h.device))], -1)
            span_parts.append(spans)
            marker_parts.append(h[torch.tensor(markers[b], dtype=torch.long, device=h.device)] if x.candidates
                                else h[:0])
            windows.append((cum, positions, entity_spans, entity_logits, entities))
        # the span and candidate projections run once over all the windows (the pair-between
        # means, n² per window, stay per window)
        every_span = torch.cat(span_parts)
        sizes = [len(p) for p in span_parts]
        heads, tails = self.head_proj(every_span).split(sizes), self.tail_proj(every_span).split(sizes)
        every_marker = torch.cat(marker_parts)
        sizes = [len(p) for p in marker_parts]
        rel_w, rel_b = self.rel_proj(every_marker).split(sizes), self.rel_bias(every_marker).squeeze(-1).split(sizes)
        out = []
        for b, (cum, positions, entity_spans, entity_logits, entities) in enumerate(windows):
            pair = heads[b][:, None, :] + tails[b][None, :, :]
            if positions is not None:
                pair = pair + self.between_proj(self._between(cum, *positions))
            logits = self.dropout(torch.nn.functional.gelu(pair)) @ rel_w[b].T + rel_b[b]
            out.append(ReaderOutput(logits, entity_spans, entity_logits, entities))
        return out

    # --- training -------------------------------------------------------------------------
    def loss(self, inputs: Sequence[ReaderInput]) -> torch.Tensor:
        """Binary cross-entropy over every (head, tail, candidate) of every window (the
        diagonal excluded), plus span classification loss where `enumerate_spans` is set. With
        `pair_loss = "logsumexp"`, the terms are per (head bag, tail bag, candidate) instead,
        a bag pair's logit being the log-sum-exp of its mention pairs' (multi-instance
        learning: one mention pair that states the relation suffices); "mention+logsumexp" sums
        both kinds of terms."""
        outputs = self.forward(inputs)
        rel_terms, ent_terms = [], []
        for x, o in zip(inputs, outputs):
            n, k = len(x.spans), len(x.candidates)
            if n > 1 and k:
                relation_logits = o.relation_logits.float()  # bags, targets and loss in float32 under bf16 autocast too
                bags = len(x.span_groups) == n and self.pair_loss != "mention"
                parts = [self._bag_logits(x, relation_logits)] if bags else []
                if not bags or self.pair_loss == "mention+logsumexp":
                    parts.append(self._pair_logits(x, relation_logits))
                for logits, target in parts:
                    if logits.numel():
                        rel_terms.append(nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum")
                                         / max(1, k))
            if o.entity_logits is not None and len(o.entity_spans):
                gold = torch.tensor([x.gold_entities.get(sp, 0) for sp in o.entity_spans], device=o.entity_logits.device)
                ent_terms.append(nn.functional.cross_entropy(o.entity_logits.float(), gold, reduction="sum")
                                 / max(1, len(x.gold_entities) + 1))
        total = sum(rel_terms, torch.zeros((), device=self.device)) + sum(ent_terms, torch.zeros((), device=self.device))
        return total / max(1, len(inputs))

    @staticmethod
    def _pair_logits(x: ReaderInput, logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Every off-diagonal (head, tail, candidate) logit and its target."""
        n = logits.shape[0]
        target = _dense_target(logits.shape, x.gold_relations, logits)
        off_diag = ~torch.eye(n, dtype=torch.bool, device=logits.device)
        return logits[off_diag], target[off_diag]

    @staticmethod
    def _bag_logits(x: ReaderInput, logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per pair of distinct bags (`x.span_groups`) and candidate: the log-sum-exp of the
        logits of its mention pairs, and its target (1 if any of its mention pairs is gold)."""
        n = logits.shape[0]
        names = sorted(set(x.span_groups))
        index = {g: b for b, g in enumerate(names)}
        bag_of = [index[g] for g in x.span_groups]
        groups = torch.tensor(bag_of, device=logits.device)
        member = groups[None, :] == torch.arange(len(names), device=logits.device)[:, None]  # [bags, n]
        off = torch.full_like(member, MASKED, dtype=logits.dtype).masked_fill(member, 0.0)  # 0 in, MASKED out
        eye = torch.eye(n, dtype=torch.bool, device=logits.device)
        masked = logits.masked_fill(eye[:, :, None], MASKED)
        by_head = torch.logsumexp(masked[None] + off[:, :, None, None], dim=1)  # [bags, n, k]
        pooled = torch.logsumexp(by_head[:, None] + off[None, :, :, None], dim=2)  # [bags, bags, k]
        gold: Dict[Tuple[int, int, int], float] = {}
        for (i, j, c), v in x.gold_relations.items():
            key = (bag_of[i], bag_of[j], c)
            gold[key] = max(gold.get(key, 0.0), v)
        target = _dense_target(pooled.shape, gold, pooled)
        distinct = ~torch.eye(len(names), dtype=torch.bool, device=logits.device)
        return pooled[distinct], target[distinct]


def _dense_target(shape: Sequence[int], gold: Dict[Tuple[int, int, int], float], like: torch.Tensor) -> torch.Tensor:
    """Zeros of `shape` with the values of `gold` at their (head, tail, candidate) indices, built on
    the host and moved to `like`'s device and dtype at once (no per-relation device writes)."""
    target = torch.zeros(tuple(shape))
    for key, v in gold.items():
        target[key] = v
    return target.to(device=like.device, dtype=like.dtype)


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was)
