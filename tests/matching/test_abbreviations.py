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
