import pytest
import spacy

from spacy_entlink.matching.abbreviations import best_long_form, find_abbreviations


@pytest.mark.parametrize(
    "short,long,expected",
    [
        ("ALL", "children with acute lymphoblastic leukemia", "acute lymphoblastic leukemia"),
        ("HBV", "infection by hepatitis B virus", "hepatitis B virus"),
        ("5-FU", "treated with 5-fluorouracil", "5-fluorouracil"),
        ("XYZ", "nothing to see here", None),
    ],
)
def test_best_long_form(short, long, expected):
    start = best_long_form(short, long)
    assert (None if start is None else long[start:]) == expected


def test_find_abbreviations_in_doc():
    nlp = spacy.blank("en")
    doc = nlp("Patients with chronic kidney disease (CKD) and atrial fibrillation (AF; n=12) were seen. CKD was mild.")
    found = {(a.short.text, a.long.text) for a in find_abbreviations(doc)}
    assert ("CKD", "chronic kidney disease") in found
    assert ("AF", "atrial fibrillation") in found


def test_no_abbreviation_for_plain_parentheses():
    nlp = spacy.blank("en")
    doc = nlp("The dose (10 mg) was given (see below) to all of them (n = 4).")
    assert find_abbreviations(doc) == []


def test_definition_after_a_bracket_glued_to_a_word_is_found():
    # "(ISPH)-induced" tokenises as "(" + "ISPH)-induced": the unclosed bracket must not hide the next definition
    nlp = spacy.blank("en")
    doc = nlp("Effect of drugs on isoproterenol (ISPH)-induced myocardial infarction (MI) in rats. MI was severe.")
    found = {(a.short.text, a.long.text) for a in find_abbreviations(doc)}
    assert ("MI", "myocardial infarction") in found


def test_inner_text_longer_than_the_limit_is_no_short_form():
    nlp = spacy.blank("en")
    doc = nlp("A long aside (one two three four five) and heart failure (HF) here.")
    found = {(a.short.text, a.long.text) for a in find_abbreviations(doc)}
    assert found == {("HF", "heart failure")}


# --- the ORTH-array scan equals a token-by-token scan -------------------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spacy_entlink.matching.abbreviations import _OPEN, definition_at  # noqa: E402

from ..fuzz import fuzz_settings  # noqa: E402

NLP = spacy.blank("en")


def token_by_token(doc, max_inner_tokens: int = 4):
    """The earlier scan: every token looked at in turn (the definition at a bracket is the
    component's own `definition_at`)."""
    out = []
    i = 0
    while i < len(doc):
        if doc[i].text not in _OPEN or i == 0:
            i += 1
            continue
        found, i = definition_at(doc, i, max_inner_tokens)
        if found is not None:
            out.append(found)
    return out


PIECES = ["(", ")", "[", "]", "((", "(ALL)", "[MI]", "(MI; see)", "(a, b)", ";", ".", ",", "acute", "lymphoblastic",
          "leukaemia", "ALL", "myocardial", "infarction", "MI", "mass", "spectrometry", "MS", "x", "5-FU", "(5-FU)"]


@fuzz_settings(300)
@given(words=st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=40),
       seps=st.lists(st.sampled_from([" ", "", "  ", "\n"]), max_size=40))
def test_the_orth_scan_equals_the_token_by_token_scan(words, seps):
    text = "".join(w + (seps[i] if i < len(seps) else " ") for i, w in enumerate(words))
    doc = NLP.make_doc(text)
    got = [(a.short.start, a.short.end, a.long.start, a.long.end) for a in find_abbreviations(doc)]
    assert got == [(a.short.start, a.short.end, a.long.start, a.long.end) for a in token_by_token(doc)]
