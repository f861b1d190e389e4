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
