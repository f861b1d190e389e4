"""`entlink_fusion`: fuse `doc.ents` (e.g. from `ner`) with the candidates an earlier
`entlink_dictionary` left in `doc.spans`, without matching the KB again."""

import weakref
from typing import Callable, Optional

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc

from ..errors import ConfigError, check_choice
from ..matching.fusion import FUSION_POLICIES
from .dictionary import DictionaryMatcher

POLICIES = tuple(p for p in FUSION_POLICIES if p != "spans_only")


@Language.factory(
    "entlink_fusion",
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type"],
    requires=["doc.spans"],
    default_config={
        "dictionary": "entlink_dictionary",
        "fusion": "keep_ner",
        "scorer": {"@scorers": "spacy_entlink.dictionary_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_fusion(nlp: Language, name: str, dictionary: str, fusion: str, scorer: Optional[Callable]) -> "DictionaryFusion":
    """Create an `entlink_fusion` component that uses the KB of the component named `dictionary`."""
    return DictionaryFusion(nlp, name, dictionary=dictionary, fusion=fusion, scorer=scorer)


class DictionaryFusion(Pipe):
    """Post-hoc fusion of `doc.ents` with an upstream dictionary's candidate spans.

    Typical pipeline: `entlink_dictionary` (fusion = "spans_only", feeding dictionary features
    to `ner`) → `ner` → `entlink_fusion`. The KB, exclusions, abbreviation handling and id
    assignment are those of the dictionary component named `dictionary`.
    """

    def __init__(self, nlp: Language, name: str = "entlink_fusion", *, dictionary: str = "entlink_dictionary",
                 fusion: str = "keep_ner", scorer: Optional[Callable] = None):
        check_choice("fusion", fusion, POLICIES)
        self.name = name
        self.dictionary = dictionary
        self.fusion = fusion
        self.scorer = scorer
        self._nlp = weakref.ref(nlp)

    def _dictionary(self) -> DictionaryMatcher:
        nlp = self._nlp()
        if nlp is None or self.dictionary not in nlp.component_names:
            raise ConfigError(
                f"{self.name}: no component named {self.dictionary!r} in the pipeline; set "
                f"[components.{self.name}] dictionary to the name of an entlink_dictionary component"
            )
        names = nlp.component_names
        if names.index(self.dictionary) > names.index(self.name) if self.name in names else False:
            raise ConfigError(f"{self.name}: {self.dictionary!r} must come before {self.name!r} in the pipeline")
        pipe = nlp.get_pipe(self.dictionary)
        if not isinstance(pipe, DictionaryMatcher):
            raise ConfigError(f"{self.name}: {self.dictionary!r} is a {type(pipe).__name__}, not an entlink_dictionary")
        return pipe

    def __call__(self, doc: Doc) -> Doc:
        return self._dictionary().annotate(doc, fusion=self.fusion, reuse=True)
