"""Inputs and targets of the linker: mention contexts, gold pairs from spaCy Examples, and
self-supervised pairs generated from a KB's own names."""

import random
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span
from spacy.training import Example

from ..kb import KnowledgeBase
from .seq2seq import END_ENT, START_ENT

DEFAULT_TEMPLATES = (
    "{mention}",
    "{mention} .",
    "In this report , {mention} was described .",
    "We studied {mention} and related findings .",
)


@dataclass
class Pair:
    """A mention in context and the KB row it refers to."""

    context: str
    row: int


def mention_context(doc: Doc, start: int, end: int, window: int = 48) -> str:
    """The mention `doc[start:end]` between the markers, with up to `window` tokens each side."""
    left = doc[max(0, start - window) : start].text
    right = doc[end : min(len(doc), end + window)].text
    return f"{left} {START_ENT} {doc[start:end].text} {END_ENT} {right}".strip()


def span_context(span: Span, window: int = 48) -> str:
    return mention_context(span.doc, span.start, span.end, window)


def gold_pairs(examples: Iterable[Example], kb: KnowledgeBase, *, window: int = 48,
               labels: Optional[Sequence[str]] = None) -> Tuple[List[Pair], int]:
    """Pairs for every reference entity whose `kb_id_` is in the KB, and the number skipped
    (NIL, composite or unknown ids)."""
    pairs: List[Pair] = []
    skipped = 0
    for eg in examples:
        for ent in eg.reference.ents:
            if labels and ent.label_ not in labels:
                continue
            row = kb.row_of(ent.kb_id_) if ent.kb_id_ else None
            if row is None:
                skipped += 1
                continue
            pairs.append(Pair(span_context(ent, window), row))
    return pairs, skipped


def kb_pairs(kb: KnowledgeBase, *, per_entity: int = 2, templates: Sequence[str] = DEFAULT_TEMPLATES,
             seed: int = 0, types: Optional[Sequence[str]] = None) -> Iterator[Pair]:
    """Self-supervised pairs: an alias (or the name) of each entity in a short template
    context, whose target is the entity's canonical name. Aliases other than the name are
    preferred, so the model learns to map synonyms to names."""
    rng = random.Random(seed)
    for row in range(len(kb)):
        if types and kb.get_type(row) not in types:
            continue
        name = kb.get_name(row)
        aliases = [a for a in kb.get_aliases(row) if a and a != name]
        rng.shuffle(aliases)
        chosen = aliases[:per_entity]
        if len(chosen) < per_entity:
            chosen.append(name)
        for alias in chosen:
            template = rng.choice(list(templates))
            yield Pair(template.format(mention=f"{START_ENT} {alias} {END_ENT}"), row)


def kb_alias_sample(kb: KnowledgeBase, n: int, *, seed: int = 0, exclude: Sequence[int] = (),
                    types: Optional[Sequence[str]] = None) -> List[Tuple[str, int]]:
    """`n` (alias, KB row) pairs of names the KB has, one per entity drawn at random (rows in
    `exclude` skipped): pseudo-mentions that match their entity exactly, the common case in
    running text, beside held-out aliases that do not."""
    rng = random.Random(seed)
    skip = set(int(r) for r in exclude)
    rows = [r for r in range(len(kb)) if r not in skip and (not types or kb.get_type(r) in types)]
    out = []
    for row in rng.sample(rows, min(n, len(rows))):
        names = [a for a in [kb.get_name(row), *kb.get_aliases(row)] if a and a.strip()]
        if names:
            out.append((rng.choice(names), row))
    return out


def kb_pair_examples(nlp, pairs: Sequence[Tuple[str, int]], kb: KnowledgeBase, *,
                     templates: Sequence[str] = DEFAULT_TEMPLATES, seed: int = 0) -> List[Example]:
    """spaCy Examples from (alias, KB row) pairs: each alias as the one gold entity (label =
    the entity's type, kb_id = its id) of a short template sentence, for calibrating a
    linker without annotated text (use aliases the KB and retriever were built without)."""
    rng = random.Random(seed)
    out = []
    for alias, row in pairs:
        template = rng.choice(list(templates))
        text = template.format(mention=alias)
        start = template.index("{mention}")
        doc = nlp.make_doc(text)
        span = doc.char_span(start, start + len(alias), label=kb.get_type(row) or "ENTITY", kb_id=kb.get_id(row),
                             alignment_mode="expand")
        if span is None:
            continue
        doc.ents = [span]
        pred = nlp.make_doc(text)
        pred.ents = [pred.char_span(span.start_char, span.end_char, label=span.label_)]
        out.append(Example(pred, doc))
    return out


def pseudo_mention_examples(nlp, pairs: Sequence[Tuple[str, int]], kb: KnowledgeBase, *,
                            kb_share: float = 0.5) -> List[Example]:
    """Examples to calibrate a linker without annotated text: the held-out (alias, KB row)
    `pairs` first, then names the KB has (`kb_alias_sample`, other entities), so that they are
    `kb_share` of the pseudo-mentions."""
    known = kb_alias_sample(kb, round(len(pairs) * kb_share / (1 - kb_share)), exclude=[row for _, row in pairs])
    return kb_pair_examples(nlp, list(pairs) + known, kb)
