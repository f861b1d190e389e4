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
