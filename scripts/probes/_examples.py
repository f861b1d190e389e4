"""What the probes calibrate on: the zero-shot pseudo-mentions or a corpus's gold mentions."""

from typing import List

from spacy.training import Corpus, Example

from spacy_entlink.linking.examples import pseudo_mention_examples
from spacy_entlink.linking.retriever import read_holdout

HOLDOUT = "training/retriever_medic/holdout.jsonl"
REDUCED_KB = "kb/medic_zs"


def calibration_examples(nlp, linker, source: str) -> List[Example]:
    """`source` "pseudo": the linker set on the KB without the held-out aliases and the
    pseudo-mentions `calibrate-linker --kb-pairs` uses (held-out aliases first); otherwise the
    annotated documents of the .spacy file `source`."""
    if source != "pseudo":
        return list(Corpus(source)(nlp))
    linker.set_kb(REDUCED_KB)
    return pseudo_mention_examples(nlp, read_holdout(HOLDOUT, linker.kb), linker.kb)
