from spacy_entlink.matching.exact import ExactMatcher, word_breaks
from spacy_entlink.matching.fuzzy import FuzzyMatcher


def _found(kb, matches, norm):
    out = set()
    for m in matches:
        s, e = norm.words_to_original(m.start, m.end - 1)
        out.add((norm.original[s:e], kb.get_id(kb.alias_entities(m.alias_row)[0])))
    return out


def _run(kb, text, fuzzy=False, **kw):
    norm = kb.normalizer.normalize(text)
    breaks = word_breaks(norm)
    exact = ExactMatcher(kb)(norm, breaks)
    if not fuzzy:
        return _found(kb, exact, norm)
    return _found(kb, FuzzyMatcher(kb, **kw)(norm, breaks, exact), norm)


def test_exact_keeps_nested_and_longest(demo_kb):
    found = _run(demo_kb, "She had acute lymphoblastic leukaemia and Crohn's disease.")
    assert ("acute lymphoblastic leukaemia", "DEMO:D003") in found
    assert ("Crohn's disease", "DEMO:D007") in found


def test_exact_is_tokenisation_and_variant_independent(demo_kb):
    found = _run(demo_kb, "non-insulin dependent diabetes mellitus; HIGH BLOOD PRESSURES; α-tocopherol; 5-FU")
    ids = {i for _, i in found}
    assert {"DEMO:D001", "DEMO:C008", "DEMO:C007"} <= ids


def test_acronym_case_protection(demo_kb):
    assert _run(demo_kb, "all patients were seen") == set()
    assert ("ALL", "DEMO:D003") in _run(demo_kb, "relapsed ALL patients")
    assert _run(demo_kb, "ms and ad were mentioned") == set()


def test_matches_do_not_cross_sentence_punctuation(demo_kb):
    assert _run(demo_kb, "It was high. Blood pressure was normal.") == set()
    assert ("high blood pressure", "DEMO:D006") in _run(demo_kb, "It was high blood pressure.")


def test_fuzzy_finds_typos_and_respects_guards(demo_kb):
    found = _run(demo_kb, "thrombocytopaenia and myocardial infraction", fuzzy=True)
    assert ("thrombocytopaenia", "DEMO:D019") in found
    assert ("myocardial infraction", "DEMO:D005") in found
    # Numbers, short words and acronyms must be identical: no "type 3 diabetes" -> type 2/1.
    assert _run(demo_kb, "type 3 diabetes", fuzzy=True) == set()
    # A different single letter is not a typo: hepatitis C is neither A nor B.
    assert _run(demo_kb, "hepatitis C", fuzzy=True) == set()


def test_fuzzy_length_thresholds(demo_kb):
    # 'hypotention' (11 chars) is one edit from 'hypotension': allowed from length 6, not 12.
    assert _run(demo_kb, "hypotention", fuzzy=True, edit_lengths=[12]) == set()
    assert ("hypotention", "DEMO:D024") in _run(demo_kb, "hypotention", fuzzy=True, edit_lengths=[6])


def test_fuzzy_rejects_bare_suffix_changes(demo_kb):
    # 'seizurs' folds to 'seizur', a prefix of 'seizure': inflection, not a typo.
    assert _run(demo_kb, "seizurs", fuzzy=True, edit_lengths=[6]) == set()
