"""Adjectival variants of disease-like names ("hypertension" -> "hypertensive").

Texts often name a disorder by its adjective ("hypertensive patients", "epileptic
seizures", "nephrotoxic effects"), which vocabularies such as MEDIC rarely list. With
`adjectives=True`, `build-kb` adds, for every name or alias whose last word ends in one of
the suffixes below, the same name with the adjectival suffix as one more alias key.
"""

import re
from typing import List, Sequence, Tuple

# (noun suffix, adjective suffix), longest noun suffixes first.
RULES: Tuple[Tuple[str, str], ...] = (
    ("icity", "ic"),      # nephrotoxicity -> nephrotoxic
    ("pathy", "pathic"),  # neuropathy -> neuropathic
    ("epsy", "eptic"),    # epilepsy -> epileptic
    ("ergy", "ergic"),    # allergy -> allergic
    ("osis", "otic"),     # atherosclerosis -> atherosclerotic
    ("itis", "itic"),     # arthritis -> arthritic
    ("sion", "sive"),     # hypertension -> hypertensive
    ("etes", "etic"),     # diabetes -> diabetic
    ("emia", "emic"),     # anemia -> anemic
    ("ania", "anic"),     # mania -> manic
    ("enia", "enic"),     # schizophrenia -> schizophrenic
    ("oxia", "oxic"),     # hypoxia -> hypoxic
    ("thmia", "thmic"),   # arrhythmia -> arrhythmic
)
_LAST_WORD = re.compile(r"([A-Za-z]+)$")
_MIN_STEM = 3


def adjective_variant(name: str) -> str:
    """The name with its last word made adjectival, or "" when no rule applies."""
    m = _LAST_WORD.search(name)
    if m is None:
        return ""
    word = m.group(1)
    lower = word.lower()
    for noun, adj in RULES:
        if lower.endswith(noun) and len(lower) - len(noun) >= _MIN_STEM:
            return name[: m.start(1)] + word[: len(word) - len(noun)] + adj
    return ""


def adjective_variants(surfaces: Sequence[str]) -> Tuple[List[str], List[int]]:
    """Variants of `surfaces` and the index of the surface each one comes from."""
    out: List[str] = []
    src: List[int] = []
    for i, s in enumerate(surfaces):
        v = adjective_variant(s)
        if v:
            out.append(v)
            src.append(i)
    return out, src
