"""Scorers registered for spaCy's `Scorer` (used by `spacy train` and `spacy evaluate`)."""

from typing import Any, Callable, Dict, Iterable

from spacy.scorer import Scorer
from spacy.training import Example


def score_dictionary(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """Entity P/R/F (`ents_*`, per type) and entity-linking P/R/F (`nel_micro_*`)."""
    examples = list(examples)
    scores = Scorer.score_spans(examples, "ents", **kwargs)
    scores.update(Scorer.score_links(examples, negative_labels=[]))
    return scores


def make_dictionary_scorer() -> Callable[..., Dict[str, Any]]:
    """`spacy_entlink.dictionary_scorer.v1`."""
    return score_dictionary


def relation_keys(doc, labels=None) -> set:
    """Comparable keys of `doc._.entlink_relations`: for span arguments the character
    offsets and entity label of head and tail (strict), for KB-id arguments the ids."""
    keys = set()
    for rel in doc._.entlink_relations:
        if labels is not None and rel.label not in labels:
            continue
        args = []
        for arg in (rel.head, rel.tail):
            args.append((arg.start_char, arg.end_char, arg.label_) if hasattr(arg, "start_char") else (arg,))
        keys.add((args[0], rel.label, args[1]))
    return keys


def score_relations(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """Relation micro P/R/F (`rel_micro_p/r/f`) and per label (`rel_f_per_type`): a predicted
    relation counts when head, label and tail (offsets and entity labels, or KB ids) all match."""
    from spacy.scorer import PRFScore

    examples = list(examples)
    micro = PRFScore()
    per: Dict[str, PRFScore] = {}
    for eg in examples:
        gold, pred = relation_keys(eg.reference), relation_keys(eg.predicted)
        for key in gold | pred:
            score = per.setdefault(key[1], PRFScore())
            for s in (micro, score):
                if key in gold and key in pred:
                    s.tp += 1
                elif key in pred:
                    s.fp += 1
                else:
                    s.fn += 1
    scores = {"rel_micro_p": micro.precision, "rel_micro_r": micro.recall, "rel_micro_f": micro.fscore,
              "rel_f_per_type": {k: v.to_dict() for k, v in sorted(per.items())}}
    scores.update(Scorer.score_spans(examples, "ents", **kwargs))  # the arguments (end-to-end mode)
    return scores


def relation_errors(examples: Iterable[Example]) -> Dict[str, int]:
    """Where document-level (KB-id) relation errors come from when entities are predicted.

    Misses (false negatives) split by whether the predicted entities found both ids (the relation
    step missed the pair) or not (NER or linking lost an id: `missed_head_id`, `missed_tail_id`,
    `missed_both_ids`). False positives split by whether both ids are among the reference
    entities' ids (the relation step joined two right ids) or not (`fp_id_outside_gold`: an
    entity or id the reference lacks). Relations between spans are not counted."""
    out = dict.fromkeys(("tp", "fn", "fn_both_ids_found", "missed_head_id", "missed_tail_id",
                         "missed_both_ids", "fp", "fp_both_ids_in_gold", "fp_id_outside_gold"), 0)
    for eg in examples:
        gold = {k for k in relation_keys(eg.reference) if len(k[0]) == 1 and len(k[2]) == 1}
        pred = {k for k in relation_keys(eg.predicted) if len(k[0]) == 1 and len(k[2]) == 1}
        found = {e.kb_id_ for e in eg.predicted.ents if e.kb_id_}
        gold_ids = {e.kb_id_ for e in eg.reference.ents if e.kb_id_}
        out["tp"] += len(gold & pred)
        for (head,), _, (tail,) in gold - pred:
            out["fn"] += 1
            has_head, has_tail = head in found, tail in found
            key = ("fn_both_ids_found" if has_head and has_tail else "missed_tail_id" if has_head
                   else "missed_head_id" if has_tail else "missed_both_ids")
            out[key] += 1
        for (head,), _, (tail,) in pred - gold:
            out["fp"] += 1
            inside = head in gold_ids and tail in gold_ids
            out["fp_both_ids_in_gold" if inside else "fp_id_outside_gold"] += 1
    return out


def make_relation_scorer() -> Callable[..., Dict[str, Any]]:
    """`spacy_entlink.relation_scorer.v1`."""
    return score_relations
