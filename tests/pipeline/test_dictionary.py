import subprocess
import sys

import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.training import Example

from spacy_entlink.errors import ConfigError, EntlinkError

TEXT = (
    "Children with acute lymphoblastic leukaemia (ALL) received doxorubicin; ALL relapse was rare "
    "and all children recovered. Mass spectrometry (MS) was used, and MS was negative."
)


@pytest.fixture
def nlp(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary").set_kb(demo_kb)
    return nlp


def _ents(doc):
    return [(e.text, e.label_, e.kb_id_) for e in doc.ents]


def _assert_prints_ok(code: str) -> None:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_factory_available_through_entry_point_in_fresh_interpreter():
    code = (
        "import spacy, sys\n"
        "nlp = spacy.blank('en'); nlp.add_pipe('entlink_dictionary')\n"
        "assert 'spacy_entlink.pipeline.dictionary' in sys.modules\n"
        "print('ok')\n"
    )
    _assert_prints_ok(code)


def test_light_modules_do_not_import_transformers():
    # spaCy's own import pulls torch in through thinc; ours must add no transformers.
    code = (
        "import sys, spacy\n"
        "import spacy_entlink, spacy_entlink.pipeline.dictionary, spacy_entlink.kb, spacy_entlink.scoring\n"
        "import spacy_entlink.corpora.registry, spacy_entlink.kb.registry, spacy_entlink.cli\n"
        "assert 'transformers' not in sys.modules, 'transformers imported'\n"
        "print('ok')\n"
    )
    _assert_prints_ok(code)


def test_entities_ids_and_extensions(nlp):
    doc = nlp(TEXT)
    ents = _ents(doc)
    assert ("acute lymphoblastic leukaemia", "Disease", "DEMO:D003") in ents
    assert ("doxorubicin", "Chemical", "DEMO:C002") in ents
    assert [e for e in ents if e[0] == "ALL"] == [("ALL", "Disease", "DEMO:D003")] * 2
    assert not any(e[0] == "all" for e in ents)
    # MS is defined here as mass spectrometry: the KB's multiple sclerosis acronym is dropped.
    assert not any(e[0] == "MS" for e in ents)
    all_span = [e for e in doc.ents if e.text == "ALL"][0]
    assert "abbreviation" in all_span._.entlink_source
    assert list(all_span._.entlink_candidates) == ["DEMO:D003"]
    assert all_span._.entlink_score == 1.0
    group = doc.spans["entlink_candidates"]
    assert {s.text for s in group} >= {e.text for e in doc.ents}


def test_overlapping_candidates_kept_in_span_group(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary").set_kb(demo_kb)
    doc = nlp("Drug-induced hepatitis after paracetamol.")
    # 'drug-induced hepatitis' is one alias; the group keeps every candidate span
    texts = [s.text for s in doc.spans["entlink_candidates"]]
    assert "Drug-induced hepatitis" in texts
    assert [e.text for e in doc.ents] == ["Drug-induced hepatitis", "paracetamol"]


def _with_ner(nlp, text, ner_spans):
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(s, e, label=l) for s, e, l in ner_spans]
    return nlp.get_pipe("entlink_dictionary")(doc)


@pytest.mark.parametrize(
    "policy,expected",
    [
        ("ner_only", [("blood pressure", "Finding")]),
        ("keep_ner", [("blood pressure", "Finding"), ("heparin", "Chemical")]),
        ("prefer_dictionary", [("high blood pressure", "Disease"), ("heparin", "Chemical")]),
        ("union_longest", [("high blood pressure", "Disease"), ("heparin", "Chemical")]),
        ("dictionary_only", [("high blood pressure", "Disease"), ("heparin", "Chemical")]),
    ],
)
def test_fusion_policies(demo_kb, policy, expected):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary", config={"fusion": policy}).set_kb(demo_kb)
    text = "Her high blood pressure fell after heparin."
    doc = _with_ner(nlp, text, [(9, 23, "Finding")])
    assert [(e.text, e.label_) for e in doc.ents] == expected


def test_union_score_prefers_higher_score(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary", config={"fusion": "union_score"}).set_kb(demo_kb)
    doc = nlp.make_doc("Myocardial infraction happened.")
    span = doc.char_span(0, 10, label="Other")
    doc.ents = [span]
    span._.entlink_score = 0.5
    doc = nlp.get_pipe("entlink_dictionary")(doc)
    # NER spans count as score 1.0, the fuzzy dictionary match scores below 1: NER wins.
    assert [(e.text, e.label_) for e in doc.ents] == [("Myocardial", "Other")]


def test_ner_entities_get_ids_from_the_kb(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary", config={"fusion": "ner_only"}).set_kb(demo_kb)
    doc = _with_ner(nlp, "Paracetamol caused liver damage.", [(0, 11, "Chemical")])
    assert _ents(doc) == [("Paracetamol", "Chemical", "DEMO:C004")]
    assert doc.spans["entlink_candidates"][0]._.entlink_source == "ner+exact"


def test_assign_kb_id_policies(tmp_path):
    from spacy_entlink.kb import EntityRecord, KnowledgeBase

    kb = KnowledgeBase.build(
        [EntityRecord("A", "cold", type="Disease", prior=0.2), EntityRecord("B", "common cold", ["cold"], type="Disease", prior=0.9)],
        tmp_path / "kb",
    )
    for policy, expected in [("unambiguous", ""), ("top", "A"), ("never", "")]:
        nlp = spacy.blank("en")
        nlp.add_pipe("entlink_dictionary", config={"assign_kb_id": policy}).set_kb(kb)
        doc = nlp("A cold.")
        assert [e.kb_id_ for e in doc.ents] == [expected], policy
    # one sense per discourse: 'common cold' elsewhere in the doc resolves 'cold'
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary").set_kb(kb)
    doc = nlp("A common cold. The cold went away.")
    assert [e.kb_id_ for e in doc.ents] == ["B", "B"]


@pytest.mark.parametrize("path", ["compiled", "python", "with ner"])
def test_a_span_whose_text_names_one_candidate_gets_that_id(tmp_path, monkeypatch, path):
    """Names that normalise alike ("Amphetamine", "Amphetamines") are told apart by the span's
    own text, letter case and spacing aside, on every path the dictionary can take."""
    from spacy_entlink.kb import EntityRecord, KnowledgeBase
    from spacy_entlink.matching.native import extension
    from spacy_entlink.pipeline.dictionary import DictionaryMatcher

    kb = KnowledgeBase.build([
        EntityRecord("D1", "Amphetamine", type="Chemical"), EntityRecord("D2", "Amphetamines", type="Chemical"),
        EntityRecord("E", "Ethanol", ["alcohol"], type="Chemical"), EntityRecord("A", "Alcohols", type="Chemical"),
        EntityRecord("C1", "cold", type="Disease"), EntityRecord("C2", "common cold", ["Cold"], type="Disease"),
    ], tmp_path / "kb")
    assert kb.normalize("Amphetamines") == kb.normalize("amphetamine")  # the dictionary alone cannot tell them apart
    compiled = []
    original = DictionaryMatcher._annotate_exact
    monkeypatch.setattr(DictionaryMatcher, "_annotate_exact", lambda self, *a: compiled.append(original(self, *a)) or compiled[-1])
    nlp = spacy.blank("en")
    dictionary = nlp.add_pipe("entlink_dictionary", config={"abbreviations": path == "python", "fuzzy": False})
    dictionary.set_kb(kb)
    text = "Amphetamine or  AMPHETAMINES with alcohol, not Alcohols; a cold."
    if path == "with ner":
        at = text.index("alcohol")
        doc = _with_ner(nlp, text, [(0, 11, "Chemical"), (at, at + 7, "Chemical")])
    else:
        doc = nlp(text)
    if path == "compiled" and extension() is not None:
        assert compiled == [True]  # the compiled path ran
    elif path != "compiled":
        assert not any(compiled)
    assert [(e.text, e.kb_id_) for e in doc.ents] == [
        ("Amphetamine", "D1"), ("AMPHETAMINES", "D2"), ("alcohol", "E"), ("Alcohols", "A"), ("cold", ""),
    ]  # "cold" names both C1 and (as "Cold") C2: still ambiguous
    candidates = {s.text: s._.entlink_candidates for s in doc.spans["entlink_candidates"]}
    assert candidates["AMPHETAMINES"] == ["D2", "D1"] and candidates["alcohol"] == ["E", "A"]


def test_empty_and_whitespace_docs(nlp):
    for text in ["", "   ", "\n\n", "!!! ..."]:
        doc = nlp(text)
        assert list(doc.ents) == []
        assert list(doc.spans["entlink_candidates"]) == []


def test_huge_document(nlp):
    sentence = "Patients with high blood pressure were given heparin and 5-FU daily . "
    doc = nlp(sentence * 8000)  # 104,000 tokens
    assert len(doc) > 100_000
    assert len(doc.ents) == 3 * 8000


def test_pipe_n_process_2_keeps_every_doc_and_extension(nlp):
    texts = [TEXT, "", "heparin", "nothing here"] * 5
    docs = list(nlp.pipe(texts, n_process=2, batch_size=3))
    assert [d.text for d in docs] == texts
    single = [nlp(t) for t in texts]
    assert [_ents(d) for d in docs] == [_ents(d) for d in single]
    all_span = [e for e in docs[0].ents if e.text == "ALL"][0]
    assert list(all_span._.entlink_candidates) == ["DEMO:D003"]


def test_serialization_round_trips(nlp, tmp_path):
    nlp.get_pipe("entlink_dictionary").set_exclusions(["doxorubicin"])
    before = _ents(nlp(TEXT))
    assert not any(t == "doxorubicin" for t, _, _ in before)
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert _ents(loaded(TEXT)) == before
    from_bytes = spacy.blank("en")
    from_bytes.add_pipe("entlink_dictionary")
    from_bytes.from_bytes(nlp.to_bytes())
    assert _ents(from_bytes(TEXT)) == before
    # the loading config wins over the saved settings
    exact = spacy.load(tmp_path / "pipe", config={"components": {"entlink_dictionary": {"fuzzy": False}}})
    assert exact.get_pipe("entlink_dictionary").cfg["fuzzy"] is False
    assert exact.get_pipe("entlink_dictionary")._fuzzy is None


def test_docbin_keeps_annotations(nlp):
    doc = nlp(TEXT)
    db = DocBin(store_user_data=True)
    db.add(doc)
    back = list(DocBin(store_user_data=True).from_bytes(db.to_bytes()).get_docs(nlp.vocab))[0]
    assert _ents(back) == _ents(doc)
    assert [list(s._.entlink_candidates) for s in back.spans["entlink_candidates"]] == [
        list(s._.entlink_candidates) for s in doc.spans["entlink_candidates"]
    ]


def test_tune_excludes_low_precision_keys(demo_kb):
    nlp = spacy.blank("en")
    comp = nlp.add_pipe("entlink_dictionary")
    comp.set_kb(demo_kb)
    examples = []
    for i in range(4):
        pred = nlp.make_doc(f"Heparin was given on day {i} and fits were seen.")
        gold = nlp.make_doc(pred.text)
        gold.ents = [gold.char_span(0, 7, label="Chemical")]  # 'fits' is never a gold entity
        examples.append(Example(pred, gold))
    excluded = comp.tune(examples, min_precision=0.5, min_count=3)
    assert excluded == ["fit"]
    assert [e.text for e in nlp("Heparin and fits.").ents] == ["Heparin"]


def test_initialize_with_registered_kb_loader(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary")
    loader = spacy.registry.misc.get("spacy_entlink.KBFromDisk.v1")(str(demo_kb.path))
    nlp.get_pipe("entlink_dictionary").initialize(kb=loader)
    assert _ents(nlp("heparin")) == [("heparin", "Chemical", "DEMO:C013")]


def test_bad_configuration_errors_name_the_argument(demo_kb):
    nlp = spacy.blank("en")
    with pytest.raises(Exception) as err:
        nlp.add_pipe("entlink_dictionary", config={"fusion": "longest"})
    assert "fusion" in str(err.value) and "union_longest" in str(err.value)
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary")
    with pytest.raises(EntlinkError, match="no knowledge base"):
        nlp("text")
    with pytest.raises(ConfigError, match="no knowledge base"):
        nlp.initialize()


def test_scorer_reports_ents_and_links(nlp):
    doc = nlp.make_doc("Heparin and paracetamol.")
    gold = nlp.make_doc(doc.text)
    gold.ents = [Span(gold, 0, 1, "Chemical", kb_id="DEMO:C013"), Span(gold, 2, 3, "Chemical", kb_id="DEMO:C999")]
    scores = nlp.evaluate([Example(doc, gold)])
    assert scores["ents_f"] == 1.0
    assert scores["nel_micro_p"] == 0.5


# --- fast paths of the component (issue 19) equal spaCy's own ---------------------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spacy_entlink.extensions import set_span_values  # noqa: E402
from spacy_entlink.pipeline.dictionary import doc_layout, expand_to_tokens, strict_tokens  # noqa: E402

from ..fuzz import fuzz_settings  # noqa: E402

_NLP = spacy.blank("en")
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).flatmap(
    lambda t: st.tuples(st.just(t), st.integers(0, len(t)), st.integers(0, len(t))))


@fuzz_settings(500)
@given(case=_TEXT)
def test_expand_to_tokens_equals_char_span_expand(case):
    text, a, b = case
    doc = _NLP.make_doc(text)
    full, starts, ends = doc_layout(doc)
    assert (full, starts, ends) == (doc.text, [t.idx for t in doc], [t.idx + len(t.text) for t in doc])
    got = expand_to_tokens(text, starts, a, b)
    if got is not None:
        span = doc.char_span(a, b, alignment_mode="expand")
        assert span is not None and got == (span.start, span.end)


@fuzz_settings(500)
@given(case=_TEXT)
def test_strict_tokens_equals_char_span_strict(case):
    text, a, b = case
    doc = _NLP.make_doc(text)
    _, starts, ends = doc_layout(doc)
    span = doc.char_span(min(a, b), max(a, b))
    want = None if span is None else (span.start, span.end)
    if want is not None and span.start == span.end:
        want = None  # an empty span: no occurrence
    assert strict_tokens(starts, ends, min(a, b), max(a, b)) == want


def test_set_span_values_reads_back_through_span_extensions():
    doc = _NLP.make_doc("acute  lymphoblastic leukaemia (ALL) x")
    _, starts, ends = doc_layout(doc)
    span = doc[0:3]
    set_span_values(span, starts[0], ends[2], 0.75, "exact+fuzzy", ["D1", "D2"])
    assert (span._.entlink_score, span._.entlink_source, span._.entlink_candidates) == (0.75, "exact+fuzzy", ["D1", "D2"])
    assert doc[0:2]._.entlink_score is None  # keyed by the span's own offsets only
