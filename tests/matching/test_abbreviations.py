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


# --- the ORTH-array scan equals the token-by-token scan it replaced -------------------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spacy_entlink.matching.abbreviations import Abbreviation, _OPEN, _is_short_form  # noqa: E402

from ..fuzz import fuzz_settings  # noqa: E402

NLP = spacy.blank("en")


def token_by_token(doc, max_inner_tokens: int = 4):
    """The earlier implementation: every token looked at in turn."""
    out = []
    n = len(doc)
    i = 0
    while i < n:
        close = _OPEN.get(doc[i].text)
        if close is None or i == 0:
            i += 1
            continue
        j = i + 1
        while j < n and j - i <= max_inner_tokens and doc[j].text != close and doc[j].text not in _OPEN:
            j += 1
        if j >= n or doc[j].text != close or j == i + 1:
            i += 1
            continue
        inner = doc[i + 1 : j]
        cut = next((k for k, t in enumerate(inner) if t.text in (";", ",")), len(inner))
        sf = inner[:cut]
        if len(sf) == 0 or not _is_short_form(sf.text):
            i = j + 1
            continue
        n_words = min(len(sf.text) + 5, 2 * len(sf.text))
        k = i
        while k > 0 and i - k < n_words and doc[k - 1].text not in (")", "]", ";", ".") and not (
            doc[k].is_sent_start and k < i
        ):
            k -= 1
        if k == i:
            i = j + 1
            continue
        window = doc[k:i]
        start = best_long_form(sf.text, window.text)
        if start is not None:
            long_span = doc.char_span(window.start_char + start, window.end_char, alignment_mode="expand")
            if (long_span is not None and len(long_span.text) > len(sf.text)
                    and sf.text.lower() not in long_span.text.lower().split()):
                out.append(Abbreviation(sf, long_span))
        i = j + 1
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
