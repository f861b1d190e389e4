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


def make_relation_scorer() -> Callable[..., Dict[str, Any]]:
    """`spacy_entlink.relation_scorer.v1`."""
    return score_relations
