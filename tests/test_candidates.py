"""Candidate sources shared by the linker: registered, ordered, deduplicated; the one fuzzy rule."""

import pytest
import spacy

from spacy_entlink.candidates import CandidateGenerator, Mention, candidate_sources, check_source
from spacy_entlink.errors import ConfigError
from spacy_entlink.kb import KnowledgeBase, read_source
from tests.pipeline.conftest import ASSETS


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return KnowledgeBase.build(read_source(ASSETS / "demo_kb.jsonl"), tmp_path_factory.mktemp("kb") / "demo")


def spans(text, *mentions, label="Disease"):
    nlp = spacy.blank("en")
    doc = nlp.make_doc(text)
    out = []
    for m in mentions:
        start = text.index(m)
        out.append(doc.char_span(start, start + len(m), label=label))
    doc.ents = out
    return list(doc.ents)


def test_fuzzy_never_swaps_numbers_short_words_or_acronyms(kb):
    gen = CandidateGenerator(kb, ["kb", "fuzzy"])
    d1, d2 = kb.row_of("DEMO:D002"), kb.row_of("DEMO:D001")
    # one edit away from "type 2 diabetes" but the number differs: no candidate from type 2
    (rows,) = gen(spans("He had type 1 diabetis .", "type 1 diabetis"))
    assert d2 not in rows and d1 in rows
    (rows,) = gen(spans("He had juvenille diabetes .", "juvenille diabetes"))
    assert rows == [d1]
    # the linker's rule is the dictionary's: no candidate the dictionary's fuzzy matcher rejects
    assert gen.fuzzy.candidates(kb.normalize("type 3 diabetes")) == []


def test_sources_run_in_order_and_rows_are_deduplicated(kb):
    calls = []

    @candidate_sources.register("test_fixed")
    def fixed(gen, mentions):
        calls.append(len(mentions))
        for m in mentions:
            m.add([kb.row_of("DEMO:D005"), kb.row_of("DEMO:D005"), kb.row_of("DEMO:D002")])

    gen = CandidateGenerator(kb, ["kb", "test_fixed"])
    (rows,) = gen(spans("A case of juvenile diabetes .", "juvenile diabetes"))
    assert rows == [kb.row_of("DEMO:D002"), kb.row_of("DEMO:D005")] and calls == [1]
    with pytest.raises(ConfigError, match="candidates"):
        check_source("no_such_source")


def test_trie_source_merges_its_beams_after_the_lexical_candidates(kb):
    d2, d5, d6 = (kb.row_of(i) for i in ("DEMO:D002", "DEMO:D005", "DEMO:D006"))
    seen = []

    def generate(spans):
        seen.extend(s.text for s in spans)
        return [[d5, d2, d6] for _ in spans]

    gen = CandidateGenerator(kb, ["kb", "trie"], generate=generate, trie_k=2)
    a, b = gen(spans("juvenile diabetes and a strange illness .", "juvenile diabetes", "strange illness"))
    assert a == [d2, d5] and b == [d5, d2] and seen == ["juvenile diabetes", "strange illness"]


def test_abbreviation_long_form_replaces_the_short_form_candidates(kb):
    text = "Two patients developed acute renal failure (ARF); ARF resolved."
    second = spans(text, "acute renal failure")[0].doc
    arf = second.char_span(text.rindex("ARF"), text.rindex("ARF") + 3, label="Disease")
    mentions = [Mention(arf, arf.text)]
    gen = CandidateGenerator(kb, ["kb", "abbreviation"])
    for name in gen.sources:
        candidate_sources.get(name)(gen, mentions)
    assert mentions[0].rows == [kb.row_of("DEMO:D014")] and mentions[0].text == "acute renal failure"


def test_short_forms_expand_in_both_grammatical_numbers():
    from spacy_entlink.candidates import short_form_variants

    out = short_form_variants({"VSDs": "ventricular septal defects", "CKD": "chronic kidney disease", "MIs": "x",
                               "MI": "myocardial infarction", "Ts": "t"})
    assert out["VSD"] == "ventricular septal defects" and out["CKDs"] == "chronic kidney disease"
    assert out["MI"] == "myocardial infarction"  # the form defined in the text wins
    assert "T" not in out  # too short to tell a plural from a letter


def test_ancestors_source_adds_broader_entities_of_mentions_that_name_nothing(tmp_path):
    from spacy_entlink.kb import EntityRecord

    kb = KnowledgeBase.build([
        EntityRecord("K:0", "Disease"),
        EntityRecord("K:1", "Kidney Diseases", aliases=["nephropathy"], parents=["K:0"]),
        EntityRecord("K:2", "Renal Insufficiency", parents=["K:1"]),
        EntityRecord("K:3", "Renal Insufficiency, Chronic", parents=["K:2"]),
    ], tmp_path / "kb", fuzzy_index=False)
    r0, r1, r2, r3 = (kb.row_of(f"K:{i}") for i in range(4))

    @candidate_sources.register("test_nearest")
    def nearest(gen, mentions):
        for m in mentions:
            m.add([r3])

    gen = CandidateGenerator(kb, ["kb", "test_nearest", "ancestors"])
    named, unnamed = gen(spans("renal insufficiency and renal dysfunction .", "renal insufficiency",
                               "renal dysfunction"))
    assert named == [r2, r3]  # the mention is a KB name: no broader entities
    assert unnamed == [r3, r2, r1]  # parent, then grandparent (ANCESTOR_DEPTH = 2), never the root
    flat = KnowledgeBase.build([EntityRecord("K:3", "Renal Insufficiency, Chronic")], tmp_path / "flat",
                               fuzzy_index=False)

    @candidate_sources.register("test_flat")
    def only(gen, mentions):
        for m in mentions:
            m.add([0])

    assert CandidateGenerator(flat, ["test_flat", "ancestors"])(spans("renal dysfunction .", "renal dysfunction")) == [[0]]
