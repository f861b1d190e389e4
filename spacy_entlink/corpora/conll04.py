"""CoNLL04 reader (SpERT split in TablERT's BILOU JSON): sentences with entities and relations.

Input: a JSON array with one object per sentence:
`{"tokens": [...], "tags": [BILOU tag per token], "relations": [{"head": i, "tail": j,
"type": T}], "orig_id": n}`, where `head` and `tail` index the sentence's entities in
left-to-right order.

Output: one gold `Doc` per sentence, built from the given tokens (one space between
tokens, none after the last; one sentence), with the entities in `doc.ents` (and in
`doc.spans["entlink_gold"]`), no KB ids, the relations as span-level relations in
`doc._.entlink_relations`, and `doc.user_data["entlink_doc_id"]` = the `orig_id`.

Errors name the file and the sentence as "sentence N (orig_id X)", N its 0-based
position in the array (`DataError.line` is None; JSON syntax errors give the line).
"""

import re
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Set, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..errors import DataError
from ..files import read_json_file
from ..extensions import Relation
from ._util import (DocIds, PathLike, Stats, bump, check_file, check_not_empty, get_doc_id, merge_stats, set_doc_id,
                    set_gold, token_doc)

__all__ = ["read_conll04", "load_types", "bilou_spans"]

_BILOU = re.compile(r"^([BILU])-(\S+)$")

TypesArg = Union[PathLike, Iterable[str], None]


def bilou_spans(tags: List[str]) -> List[Tuple[int, int, str]]:
    """(start, end, label) token spans of a BILOU tag sequence; ValueError on an invalid one."""
    spans: List[Tuple[int, int, str]] = []
    open_start: Optional[int] = None
    open_label = ""
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise ValueError(f"token {i}: tag {tag!r} is not a string")
        if tag == "O":
            prefix, label = "O", ""
        else:
            m = _BILOU.match(tag)
            if not m:
                raise ValueError(f"token {i}: invalid BILOU tag {tag!r}")
            prefix, label = m.group(1), m.group(2)
        if open_start is not None:
            if prefix in ("I", "L") and label == open_label:
                if prefix == "L":
                    spans.append((open_start, i + 1, label))
                    open_start = None
                continue
            raise ValueError(f"token {i}: tag {tag!r} where the {open_label} entity opened at token "
                             f"{open_start} needs I-{open_label} or L-{open_label}")
        if prefix in ("I", "L"):
            raise ValueError(f"token {i}: tag {tag!r} outside an entity (expected B-, U- or O)")
        if prefix == "U":
            spans.append((i, i + 1, label))
        elif prefix == "B":
            open_start, open_label = i, label
    if open_start is not None:
        raise ValueError(f"the {open_label} entity opened at token {open_start} has no L- tag")
    return spans


def load_types(types: TypesArg) -> Tuple[Optional[Set[str]], Optional[Set[str]]]:
    """(entity types, relation types) allowed; each None when unchecked.

    `types` is a SpERT types file (`{"entities": {...}, "relations": {...}}`), or relation
    type names, or None.
    """
    if types is None:
        return None, None
    if isinstance(types, (str, Path)):
        path = check_file(types)
        data = read_json_file(path)
        if not isinstance(data, dict) or not isinstance(data.get("relations"), (dict, list)):
            raise DataError(path, None, "expected a types object with 'entities' and 'relations'")
        entities = data.get("entities")
        return (set(entities) if isinstance(entities, (dict, list)) else None), set(data["relations"])
    names = list(types)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"relation types must be strings, got {names!r}")
    return None, set(names)


def read_conll04(
    path: PathLike,
    nlp: Language,
    *,
    types: TypesArg = None,
    stats: Optional[Stats] = None,
) -> Iterator[Doc]:
    """Gold Docs of a CoNLL04 JSON file, one per sentence, in file order.

    types: a SpERT types file or relation type names; an entity or relation type outside
        them is a DataError. None accepts any type.
    stats: a mutable mapping that receives counts ("docs", "entities", "gold_spans",
        "relations").
    """
    path = check_file(path)
    entity_types, relation_types = load_types(types)
    data = read_json_file(path)
    if not isinstance(data, list):
        raise DataError(path, None, f"expected a JSON array of sentences, got {type(data).__name__}")
    check_not_empty(path, len(data), "sentences")
    seen = DocIds(path, "orig_id")
    for index, item in enumerate(data):
        counts: Stats = {}
        doc = _make_doc(path, nlp, index, item, entity_types, relation_types, counts)
        if isinstance(item, dict) and item.get("orig_id") is not None:
            try:
                seen.add(get_doc_id(doc) or "", None)
            except DataError as err:
                raise DataError(path, None, f"sentence {index}: {str(err).split(': ', 1)[1]}") from None
        merge_stats(counts, stats)
        yield doc


def _make_doc(
    path: Path, nlp: Language, index: int, item: object,
    entity_types: Optional[Set[str]], relation_types: Optional[Set[str]], stats: Stats,
) -> Doc:
    if not isinstance(item, dict):
        raise DataError(path, None, f"sentence {index}: expected an object, got {type(item).__name__}")
    orig_id = item.get("orig_id")
    where = f"sentence {index} (orig_id {orig_id})"

    def fail(msg: str) -> DataError:
        return DataError(path, None, f"{where}: {msg}")

    tokens, tags = item.get("tokens"), item.get("tags")
    relations = item.get("relations", [])
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
        raise fail("'tokens' must be a non-empty list of strings that are not empty or whitespace")
    if not isinstance(tags, list) or len(tags) != len(tokens):
        raise fail(f"'tags' must be a list with one tag per token ({len(tokens)})")
    if not isinstance(relations, list):
        raise fail("'relations' must be a list")
    try:
        triples = bilou_spans(tags)
    except ValueError as e:
        raise fail(str(e)) from None
    doc = token_doc(nlp.vocab, tokens, [True] + [False] * (len(tokens) - 1))
    spans = [Span(doc, s, e, label=label) for s, e, label in triples]
    if entity_types is not None:
        for span in spans:
            if span.label_ not in entity_types:
                raise fail(f"unknown entity type {span.label_!r} (known: {', '.join(sorted(entity_types))})")
    set_gold(doc, spans, stats)
    rels: List[Relation] = []
    for k, rel in enumerate(relations):
        if not isinstance(rel, dict):
            raise fail(f"relation {k} is not an object")
        head, tail, label = rel.get("head"), rel.get("tail"), rel.get("type")
        for name, value in (("head", head), ("tail", tail)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise fail(f"relation {k}: '{name}' must be an entity index, got {value!r}")
            if not 0 <= value < len(spans):
                raise fail(f"relation {k}: {name} index {value} out of range ({len(spans)} entities)")
        if not isinstance(label, str) or not label:
            raise fail(f"relation {k}: 'type' must be a non-empty string")
        if relation_types is not None and label not in relation_types:
            raise fail(f"relation {k}: unknown relation type {label!r} (known: {', '.join(sorted(relation_types))})")
        rels.append(Relation(spans[head], label, spans[tail], 1.0))  # type: ignore[index]
    if rels:
        doc._.entlink_relations = rels
    bump(stats, "relations", len(rels))
    set_doc_id(doc, str(orig_id) if orig_id is not None else str(index))
    bump(stats, "docs")
    return doc
