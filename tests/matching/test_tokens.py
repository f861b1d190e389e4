"""Exact matching over a Doc's tokens (`matching/_scan.c` TokenScan, issue 19) against the text
path it replaces: the same matches, aligned like `doc.char_span(..., "expand")`, on any text and
any tokenisation; and the component's compiled output against its Python path."""


import pytest
import spacy
from hypothesis import example, given
from hypothesis import strategies as st
from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE
from spacy.tokens import Doc, Span

from spacy_entlink.kb import word_index
from spacy_entlink.matching.exact import ExactMatcher, describe_piece
from spacy_entlink.pipeline.dictionary import doc_layout, expand_to_tokens

from ..fuzz import fuzz_settings
from .test_scan import NAMES, names, random_kb, texts

pytestmark = pytest.mark.skipif(not word_index.available(), reason="the _scan extension is not built")
NLP = spacy.blank("en")


def text_path(kb, doc: Doc, max_words: int = 12):
    """What the component did before: the text's matches, aligned to tokens by bisection."""
    text, starts, ends = doc_layout(doc)
    norm, _, matches, _ = ExactMatcher(kb, max_words).scan(text)
    out = []
    for m in matches:
        a, b = norm.words_to_original(m.start, m.end - 1)
        first, end = expand_to_tokens(text, starts, a, b)
        assert (first, end) == (lambda s: (s.start, s.end))(doc.char_span(a, b, alignment_mode="expand"))
        out.append((first, end, m.alias_row, starts[first], ends[end - 1]))
    return out


def any_tokens(text_strategy):
    """A text cut into tokens anywhere, each followed by a space or not (the Doc's text is the
    tokens and spaces joined: every joint between tokens gets tried)."""
    @st.composite
    def make(draw):
        text = draw(text_strategy)
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=len(text) // 2 + 1)))
        pieces = [p for p in (text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])) if p] or ["x"]
        spaces = draw(st.lists(st.booleans(), min_size=len(pieces), max_size=len(pieces)))
        return pieces, spaces
    return make()


@fuzz_settings(300)
@example(text="Crohn's disease, T2DM and NSAIDs; acute lymphoblastic leukaemia (ALL) 1,2-dichloroethane 1 . 5")
@example(text="patients' diabetes 10mg heart-attack \n\n juvenile  diabetes")
@example(text="")
@example(text="\u0301x é\u0301 ﬁbrosis α-tocopherol ① ALLs İstanbul")
@given(text=texts(NAMES))
def test_the_token_scan_equals_the_text_path_on_spacy_tokens(demo_kb, text):
    doc = NLP.make_doc(text)
    matcher = ExactMatcher(demo_kb)
    assert matcher.scan_tokens(doc) == text_path(demo_kb, doc)
    short = ExactMatcher(demo_kb, max_words=2)
    assert short.scan_tokens(doc) == text_path(demo_kb, doc, max_words=2)


@fuzz_settings(300)
@example(cut=(["Crohn", "'s", "dis", "ease"], [False, True, False, False]))
@example(cut=(["1", ",", "2", "-", "di", "abetes"], [False, False, False, False, False, True]))
@example(cut=(["heart", "\u00ad", "attack", "x"], [False, False, True, False]))
@given(cut=any_tokens(texts(NAMES)))
def test_the_token_scan_equals_the_text_path_on_any_tokenisation(demo_kb, cut):
    words, spaces = cut
    doc = Doc(NLP.vocab, words=words, spaces=spaces)
    assert ExactMatcher(demo_kb).scan_tokens(doc) == text_path(demo_kb, doc)


@fuzz_settings(40)
@given(data=st.data(), kb_names=names)
def test_the_token_scan_equals_the_text_path_on_random_kbs(tmp_path_factory, data, kb_names):
    kb, kb_texts = random_kb(tmp_path_factory, kb_names)
    if kb is None:
        return
    matcher = ExactMatcher(kb)
    for _ in range(4):
        words, spaces = data.draw(any_tokens(texts(kb_texts)))
        doc = Doc(NLP.vocab, words=words, spaces=spaces)
        assert matcher.scan_tokens(doc) == text_path(kb, doc)


@fuzz_settings(300)
@example(text="Crohn's")
@example(text="")
@example(text=" 1, ")
@example(text="\u00adx\u0301")
@given(text=texts(NAMES))
def test_the_compiled_description_of_a_piece_equals_the_python_reference(demo_kb, text):
    assert ExactMatcher(demo_kb)._tokens.describe(text) == describe_piece(demo_kb, text)


def test_each_lexeme_is_described_once(demo_kb):
    matcher = ExactMatcher(demo_kb)
    doc = NLP.make_doc("juvenile diabetes and juvenile diabetes, Crohn's disease and Crohn's disease")
    assert len(matcher.scan_tokens(doc)) == len(text_path(demo_kb, doc)) > 0
    assert matcher._tokens.cached() == len({t.orth for t in doc})
    matcher.scan_tokens(NLP.make_doc("juvenile diabetes"))
    assert matcher._tokens.cached() == len({t.orth for t in doc})


def test_bad_arguments_get_a_clear_error(demo_kb):
    from spacy_entlink.matching import _scan

    norm = demo_kb.normalizer
    with pytest.raises(TypeError):
        _scan.TokenScan("not an index", norm._char, norm._word, 5, True, 12)
    scan = _scan.TokenScan(demo_kb.word_index, norm._char, norm._word, 5, True, 12)
    with pytest.raises(ValueError, match="ORTH, SPACY"):
        scan.matches(b"12345", NLP.vocab.strings, {})
    with pytest.raises(TypeError, match="str"):
        scan.describe(b"bytes")


# --- the component: compiled output = Python path ----------------------------------------------
def output(doc: Doc, key: str = "entlink_candidates"):
    """Everything the component writes: entities, token entity tags, the span group and its values."""
    ents = [(e.start, e.end, e.label_, e.kb_id_) for e in doc.ents]
    tags = [(t.ent_iob, t.ent_type, t.ent_kb_id) for t in doc if t.ent_iob != 2] if doc.has_annotation("ENT_IOB") \
        else None
    group = [(s.start, s.end, s.start_char, s.end_char, s.label_, s.kb_id_, s._.entlink_score, s._.entlink_source,
              list(s._.entlink_candidates)) for s in doc.spans[key]]
    return ents, tags, group, sorted(map(repr, doc.user_data.items()))


POLICIES = ["dictionary_only", "keep_ner", "union_score", "prefer_dictionary", "ner_only", "spans_only"]


@pytest.fixture(scope="module")
def components(demo_kb):
    nlp = spacy.blank("en")
    made = {}
    for policy in POLICIES:
        for assign in ("unambiguous", "top", "never"):
            comp = nlp.add_pipe("entlink_dictionary", name=f"d_{policy}_{assign}",
                                config={"fuzzy": False, "abbreviations": False, "fusion": policy,
                                        "assign_kb_id": assign})
            comp.set_kb(demo_kb)
            made[policy, assign] = comp
    return made


@fuzz_settings(150)
@example(text="Crohn's disease and juvenile diabetes; diabetes mellitus (DM), DM and diabetes. Heart attack.",
         policy="dictionary_only", assign="unambiguous")
@example(text="", policy="keep_ner", assign="top")
@given(text=texts(NAMES), policy=st.sampled_from(POLICIES), assign=st.sampled_from(["unambiguous", "top", "never"]))
def test_the_compiled_output_equals_the_python_path(components, text, policy, assign):
    comp = components[policy, assign]
    fast, slow = NLP.make_doc(text), NLP.make_doc(text)
    comp(fast)
    comp._annotate_exact, saved = (lambda doc, policy: False), comp._annotate_exact
    try:
        comp(slow)
    finally:
        comp._annotate_exact = saved
    assert output(fast) == output(slow)


def test_the_compiled_path_runs_where_it_applies_and_not_elsewhere(components, demo_kb, monkeypatch):
    comp = components["keep_ner", "unambiguous"]
    answers = []
    real = comp._exact.annotate_tokens
    monkeypatch.setattr(comp._exact, "annotate_tokens", lambda *a: answers.append(real(*a)) or answers[-1])
    doc = comp(NLP.make_doc("juvenile diabetes and heart attack"))
    assert len(answers) == 1 and answers[0] is not None
    assert [e.text for e in doc.ents] == ["juvenile diabetes", "heart attack"]
    # a Doc with entities already: the compiled path declines, the Python path keeps them (keep_ner)
    doc = NLP.make_doc("Juvenile diabetes and heart attack")
    doc.ents = [Span(doc, 0, 1, label="PERSON")]
    comp(doc)
    assert len(answers) == 2 and answers[1] is None
    assert [(e.text, e.label_) for e in doc.ents] == [("Juvenile", "PERSON"), ("heart attack", "Disease")]
    # with fuzzy matching, exclusions or abbreviations it is not tried at all
    comp.excluded = {"heart attack"}
    comp(NLP.make_doc("juvenile diabetes and heart attack"))
    comp.excluded = set()
    assert len(answers) == 2


def test_huge_and_empty_docs(components):
    comp = components["dictionary_only", "unambiguous"]
    text = "Patients with juvenile diabetes and Crohn's disease were seen. " * 15_000
    doc = comp(NLP.make_doc(text))
    assert len(doc.ents) == 30_000 and len(doc.spans["entlink_candidates"]) >= 30_000
    assert [e.text for e in doc.ents[:2]] == ["juvenile diabetes", "Crohn's disease"]
    tags = doc.to_array([ENT_IOB, ENT_TYPE, ENT_KB_ID])
    assert (tags[:, 0] == 3).sum() == 30_000 and (tags[:, 0] == 0).sum() == 0
    empty = comp(NLP.make_doc(""))
    assert list(empty.ents) == [] and list(empty.spans["entlink_candidates"]) == []
    blank = comp(NLP.make_doc("   \n\n  "))
    assert list(blank.ents) == [] and [t.ent_iob_ for t in blank] == ["O"] * len(blank)


def test_a_pickled_component_matches_the_same(components):
    import pickle

    comp = components["dictionary_only", "unambiguous"]
    copy = pickle.loads(pickle.dumps(comp))
    text = "Crohn's disease and juvenile diabetes"
    assert output(copy(NLP.make_doc(text))) == output(comp(NLP.make_doc(text)))


def test_docs_read_in_place_give_what_to_array_gives(demo_kb, monkeypatch):
    from spacy_entlink.matching import exact as exact_module

    if not exact_module.docs_in_place():
        pytest.skip("this spaCy's Doc layout is not the mirrored one: the array path is the only one")
    text = "Crohn's disease and juvenile diabetes (JD); 1,2-diabetes heart attack."
    matcher = ExactMatcher(demo_kb)
    in_place = matcher.scan_tokens(NLP.make_doc(text))
    monkeypatch.setattr(exact_module, "_IN_PLACE", False)
    assert matcher.scan_tokens(NLP.make_doc(text)) == in_place and in_place
    comp = spacy.blank("en").add_pipe("entlink_dictionary", config={"fuzzy": False, "abbreviations": False})
    comp.set_kb(demo_kb)
    via_array = output(comp(NLP.make_doc(text)))
    monkeypatch.setattr(exact_module, "_IN_PLACE", True)
    assert output(comp(NLP.make_doc(text))) == via_array


def test_a_doc_of_another_layout_is_refused(demo_kb):
    from spacy_entlink.matching import _scan

    doc = NLP.make_doc("a b")
    wrong = [(t.orth + 1, t.idx, bool(t.whitespace_), t.ent_iob, t.ent_type, t.ent_kb_id) for t in doc]
    assert _scan.check_doc_layout(doc, wrong) is False
    assert _scan.check_doc_layout(object(), wrong) is False


def test_worker_processes_take_the_compiled_path_and_agree(demo_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("entlink_dictionary", config={"fuzzy": False, "abbreviations": False}).set_kb(demo_kb)
    texts = ["Crohn's disease and juvenile diabetes", "", "heart attack (MI) and MI", "nothing"] * 4
    workers = list(nlp.pipe(texts, n_process=2, batch_size=3))
    here = [nlp(t) for t in texts]
    assert [output(d) for d in workers] == [output(d) for d in here]
    assert any(d.ents for d in workers)
