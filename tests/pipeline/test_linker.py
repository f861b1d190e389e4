"""`entlink_linker` with tiny random seq2seq models: annotations, candidates, NIL, training,
serialization, and awkward documents."""

import numpy as np
import pytest
from thinc.api import Adam
import spacy
from spacy.tokens import DocBin
from confection import ConfigValidationError
from spacy.training import Example

from spacy_entlink.errors import ConfigError
from spacy_entlink.linking.calibration import Calibration
from spacy_entlink.corpora.registry import with_gold_mentions
from tests.linking.conftest import tiny_bart, tiny_bert2bert

TEXT = "Patients with T2DM or juvenile diabetes developed a heart attack after adriamycin ."
ENTS = [("T2DM", "Disease", "DEMO:D001"), ("juvenile diabetes", "Disease", "DEMO:D002"),
        ("heart attack", "Disease", "DEMO:D005"), ("adriamycin", "Chemical", "DEMO:C002")]


def make_doc(nlp, text=TEXT, ents=ENTS, with_ids=False):
    doc = nlp.make_doc(text)
    spans = []
    for mention, label, kb_id in ents:
        start = text.index(mention)
        span = doc.char_span(start, start + len(mention), label=label, kb_id=kb_id if with_ids else "")
        spans.append(span)
    doc.ents = spans
    return doc


@pytest.fixture(params=["bart", "bert2bert"])
def nlp(request, demo_kb, tmp_path):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker", config={"top_k": 3})
    seq2seq = tiny_bart(tmp_path / "m") if request.param == "bart" else tiny_bert2bert(tmp_path / "m")
    linker.set_seq2seq(seq2seq).set_kb(demo_kb)
    return nlp


def test_links_every_entity_with_top_k_probabilities(nlp, demo_kb):
    doc = nlp(make_doc(nlp))
    assert len(doc.ents) == len(ENTS)
    for ent in doc.ents:
        assert ent.kb_id_ in demo_kb
        links = ent._.entlink_links
        assert 1 <= len(links) <= 3 and links[0][0] == ent.kb_id_
        assert all(0.0 <= p <= 1.0 for _, p in links) and sum(p for _, p in links) <= 1.0 + 1e-6
        assert [p for _, p in links] == sorted((p for _, p in links), reverse=True)
    # exact aliases with one candidate are linked without decoding, whatever the random model says
    by_text = {e.text: e.kb_id_ for e in doc.ents}
    assert by_text["T2DM"] == "DEMO:D001" and by_text["adriamycin"] == "DEMO:C002"
    assert doc.ents[0]._.entlink_links == [("DEMO:D001", 1.0)]


def test_candidates_from_spans_restrict_the_choice(nlp, demo_kb):
    doc = make_doc(nlp, "He had a bad episode .", [("bad episode", "Disease", "")])
    doc.ents[0]._.entlink_candidates = ["DEMO:D016", "DEMO:D017"]
    doc = nlp(doc)
    assert doc.ents[0].kb_id_ in {"DEMO:D016", "DEMO:D017"}
    assert {i for i, _ in doc.ents[0]._.entlink_links} == {"DEMO:D016", "DEMO:D017"}


def test_max_candidates_keeps_the_first_candidates_and_is_saved(nlp, demo_kb, tmp_path):
    linker = nlp.get_pipe("entlink_linker")
    doc = make_doc(nlp, "He had a bad episode .", [("bad episode", "Disease", "")])
    doc.ents[0]._.entlink_candidates = ["DEMO:D016", "DEMO:D017", "DEMO:D001"]
    linker.configure(max_candidates=2)
    assert {i for i, _ in nlp(doc).ents[0]._.entlink_links} == {"DEMO:D016", "DEMO:D017"}
    linker.configure(max_candidates=1)  # one candidate left: linked without decoding
    assert nlp(doc).ents[0]._.entlink_links == [("DEMO:D016", 1.0)]
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p")
    assert again.get_pipe("entlink_linker").settings.max_candidates == 1
    assert again(doc).ents[0]._.entlink_links == [("DEMO:D016", 1.0)]
    with pytest.raises(ConfigError, match="max_candidates"):
        linker.configure(max_candidates=0)
    assert linker.settings.max_candidates == 1 and linker.cfg["max_candidates"] == 1
    with pytest.raises(ConfigError, match="no such setting"):
        linker.configure(temperature=2)


def test_no_candidate_falls_back_to_the_trie_or_nil(nlp, demo_kb):
    linker = nlp.get_pipe("entlink_linker")
    doc = nlp(make_doc(nlp, "An unheard-of zzqx syndrome .", [("zzqx syndrome", "Disease", "")]))
    assert doc.ents[0].kb_id_ in demo_kb
    assert demo_kb.entity(doc.ents[0].kb_id_).type == "Disease"
    linker.cfg["candidates"] = ["span", "kb"]
    linker.settings.fallback = "nil"
    doc = nlp(make_doc(nlp, "An unheard-of zzqx syndrome .", [("zzqx syndrome", "Disease", "")]))
    assert doc.ents[0].kb_id_ == "NIL" and doc.ents[0]._.entlink_links == []


def test_threshold_and_calibrated_nil(nlp):
    linker = nlp.get_pipe("entlink_linker")
    linker.cfg["threshold"] = 0.999
    doc = nlp(make_doc(nlp))
    ids = {e.text: e.kb_id_ for e in doc.ents}
    assert ids["T2DM"] == "DEMO:D001"  # one candidate: probability 1
    assert ids["heart attack"] in ("NIL", "DEMO:D005")
    linker.cfg["threshold"] = None
    linker.calibration = Calibration(scale=1.0, nil_score=50.0)
    doc = nlp(make_doc(nlp, "Treated for zzqx syndrome .", [("zzqx syndrome", "Disease", "")]))
    assert doc.ents[0].kb_id_ == "NIL" and doc.ents[0]._.entlink_links


def test_update_reduces_the_loss(nlp):
    sgd = Adam(3e-3)  # spaCy's optimizer steps the torch model, as under `spacy train`
    examples = [Example(make_doc(nlp), make_doc(nlp, with_ids=True))] * 4
    losses = []
    for _ in range(30):
        step = {}
        nlp.update(examples, sgd=sgd, losses=step)
        losses.append(step["entlink_linker"])
    assert losses[-1] < 0.6 * losses[0]
    assert nlp(make_doc(nlp)).ents[2].kb_id_  # still predicts after training


def test_calibrate_fits_on_gold_examples(nlp):
    linker = nlp.get_pipe("entlink_linker")
    cal = linker.calibrate([Example(make_doc(nlp), make_doc(nlp, with_ids=True))] * 3)
    assert cal.fitted_on > 0 and cal.scale > 0


def test_calibrate_out_of_kb_fits_nil_on_mentions_of_entities_taken_out_and_restores_the_kb(nlp, demo_kb, monkeypatch):
    linker = nlp.get_pipe("entlink_linker")
    examples = [Example(make_doc(nlp), make_doc(nlp, with_ids=True))] * 3
    full_trie, full_rows = linker.trie, linker.candidate_rows_batch(list(make_doc(nlp).ents))
    seen = {}
    scored = linker.calibration_data

    def spy(egs):
        data = scored(egs)
        seen.update(kb_size=len(linker.kb), nil=sum(g is None for g in data.gold), mentions=len(data.gold))
        return data

    monkeypatch.setattr(linker, "calibration_data", spy)
    cal = linker.calibrate(examples, out_of_kb=0.5, seed=1)
    removed = linker.calibration_out_of_kb
    assert len(removed) == 2 and set(removed) <= {kb_id for _, _, kb_id in ENTS}  # half of the 4 gold entities
    assert seen["kb_size"] == len(demo_kb) - 2  # scored without them
    assert seen["nil"] >= 3 * sum(kb_id in removed for _, _, kb_id in ENTS)  # their mentions are NIL examples
    assert cal.nil_score is not None
    # the full KB, its name trie and candidates are back
    assert linker.kb is demo_kb and linker.trie is full_trie and len(linker.kb) == len(demo_kb)
    assert linker.candidate_rows_batch(list(make_doc(nlp).ents)) == full_rows
    doc = nlp(make_doc(nlp))
    assert all(e.kb_id_ in demo_kb or e.kb_id_ == "NIL" for e in doc.ents)
    with pytest.raises(ConfigError, match="NIL option"):
        linker.calibrate(examples, with_nil=False, out_of_kb=0.5)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        linker.calibrate(examples, out_of_kb=1.5)


def test_serialization_round_trips(nlp, tmp_path):
    doc = nlp(make_doc(nlp))
    nlp.get_pipe("entlink_linker").calibration = Calibration(scale=2.0, nil_score=-30.0, fitted_on=5)
    doc = nlp(make_doc(nlp))
    nlp.to_disk(tmp_path / "pipe")
    again = spacy.load(tmp_path / "pipe")
    doc2 = again(make_doc(again))
    assert [(e.text, e.kb_id_, e._.entlink_links) for e in doc2.ents] == \
        [(e.text, e.kb_id_, e._.entlink_links) for e in doc.ents]
    assert again.get_pipe("entlink_linker").calibration == Calibration(2.0, -30.0, 5)
    other = spacy.blank("en")
    other.add_pipe("entlink_linker", source=again)
    assert [e.kb_id_ for e in other(make_doc(other)).ents] == [e.kb_id_ for e in doc.ents]
    linker3 = spacy.blank("en").add_pipe("entlink_linker")
    linker3.from_bytes(nlp.get_pipe("entlink_linker").to_bytes())
    assert linker3.kb is not None and len(linker3.trie) == len(nlp.get_pipe("entlink_linker").trie)
    # links survive DocBin
    db = DocBin(store_user_data=True, docs=[doc])
    (back,) = db.get_docs(nlp.vocab)
    assert [e._.entlink_links for e in back.ents] == [e._.entlink_links for e in doc.ents]


def test_empty_docs_docs_without_ents_and_long_docs(nlp):
    docs = list(nlp.pipe([nlp.make_doc(""), nlp.make_doc("nothing to link here ."), make_doc(nlp)]))
    assert len(docs) == 3 and not docs[0].ents and not docs[1].ents and len(docs[2].ents) == 4
    text = ("Filler words about nothing in particular . " * 3000) + TEXT
    long = nlp(make_doc(nlp, text))
    assert len(long) > 20000 and all(e.kb_id_ for e in long.ents)


def test_labels_restrict_which_entities_are_linked(nlp):
    nlp.get_pipe("entlink_linker").cfg["labels"] = ["Chemical"]
    doc = nlp(make_doc(nlp))
    assert {e.text for e in doc.ents if e.kb_id_} == {"adriamycin"}


def test_gold_mentions_copy_spans_without_ids(nlp):
    eg = with_gold_mentions(Example(nlp.make_doc(TEXT), make_doc(nlp, with_ids=True)))
    assert [(e.start, e.end, e.label_) for e in eg.predicted.ents] == \
        [(e.start, e.end, e.label_) for e in eg.reference.ents]
    assert all(not e.kb_id_ for e in eg.predicted.ents)
    with_ids = with_gold_mentions(Example(nlp.make_doc(TEXT), make_doc(nlp, with_ids=True)), kb_ids=True)
    assert [e.kb_id_ for e in with_ids.predicted.ents] == [e.kb_id_ for e in with_ids.reference.ents]
    assert any(e.kb_id_ for e in with_ids.predicted.ents)


def test_clear_errors():
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker")
    with pytest.raises(ConfigError, match="not initialised"):
        linker(nlp.make_doc("x"))
    with pytest.raises(ConfigError, match="no knowledge base"):
        linker.initialize(lambda: [], nlp=nlp)
    with pytest.raises(ValueError, match="candidates"):
        spacy.blank("en").add_pipe("entlink_linker", config={"candidates": ["nope"]})
    with pytest.raises(ConfigError, match="threshold"):
        spacy.blank("en").add_pipe("entlink_linker", config={"threshold": 2.0})


@pytest.mark.slow
def test_dense_candidates_with_the_embedded_encoder(nlp, tmp_path):
    """Mentions no alias matches get the KB names nearest in MiniLM space as candidates."""
    linker = nlp.get_pipe("entlink_linker")
    linker.cfg["candidates"] = ["kb", "dense"]
    linker.cfg["dense_k"] = 3
    linker.build_dense()
    doc = make_doc(nlp, "She had raised blood pressure .", [("raised blood pressure", "Disease", "")])
    (rows,) = linker.candidate_rows_batch(list(doc.ents))
    ids = [linker.kb.get_id(r) for r in rows]
    assert len(ids) <= 3 and "DEMO:D006" in ids  # Hypertension ("high blood pressure")
    # the cosine feature: the mention's embedding against each candidate's names
    assert linker.mention_vectors(list(doc.ents)) is None  # the calibration does not use it
    vectors = linker.mention_vectors(list(doc.ents), force=True)
    cos = linker.features(rows, "raised blood pressure", vector=vectors[0])[:, 6]
    assert int(np.argmax(cos)) == 0 and 0.5 < cos[0] <= 1.0 + 1e-6  # dense search's best first
    doc = nlp(doc)
    assert doc.ents[0].kb_id_ in ids
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p").get_pipe("entlink_linker")
    assert again.dense is not None and again.candidate_rows_batch(list(doc.ents)) == [rows]


def test_abbreviations_defined_in_the_document_get_their_long_form_candidates(nlp, demo_kb):
    linker = nlp.get_pipe("entlink_linker")
    linker.cfg["candidates"] = ["kb", "abbreviation"]
    text = "Two patients developed acute renal failure (ARF); ARF resolved."
    doc = make_doc(nlp, text, [("ARF", "Disease", "")])
    second = doc.char_span(text.rindex("ARF"), text.rindex("ARF") + 3, label="Disease")
    doc.ents = [second]
    assert linker.candidate_rows(doc.ents[0]) == [demo_kb.row_of("DEMO:D014")]
    assert nlp(doc).ents[0].kb_id_ == "DEMO:D014"
    linker.cfg["candidates"] = ["kb"]
    assert linker.candidate_rows(doc.ents[0]) == []


def cascade_doc(nlp, monkeypatch):
    """The linker, a doc whose two mentions have two candidates each ("bad episode": D016 / D017,
    KB priors 0.6 / 0.5; "strange one": D006 / D024, 0.9 / 0.5), and the list of contexts the
    seq2seq model scores from now on."""
    linker = nlp.get_pipe("entlink_linker")
    doc = make_doc(nlp, "He had a bad episode and a strange one .",
                   [("bad episode", "Disease", ""), ("strange one", "Disease", "")])
    doc.ents[0]._.entlink_candidates = ["DEMO:D016", "DEMO:D017"]
    doc.ents[1]._.entlink_candidates = ["DEMO:D006", "DEMO:D024"]
    scored = []
    real = linker.linker.seq2seq.score
    monkeypatch.setattr(linker.linker.seq2seq, "score", lambda ctx, tgt: scored.extend(ctx) or real(ctx, tgt))
    return linker, doc, scored


def test_cascade_skips_the_model_when_the_features_decide(nlp, demo_kb, monkeypatch):
    linker, doc, scored = cascade_doc(nlp, monkeypatch)
    # weight only the KB prior (feature 1): D006 (0.9) over D024 (0.5) clearly, D016 (0.6)
    # over D017 (0.5) barely
    linker.calibration = Calibration(scale=1.0, prior_weights=(0.0, 10.0), gate=0.9)
    out = nlp(doc)
    assert len(scored) == 1 and "bad episode" in scored[0]  # only the undecided mention met the model
    assert out.ents[1].kb_id_ == "DEMO:D006" and out.ents[1]._.entlink_links[0][1] > 0.9
    assert {i for i, _ in out.ents[1]._.entlink_links} == {"DEMO:D006", "DEMO:D024"}  # all candidates kept
    scored.clear()
    linker.calibration.gate = None
    nlp(doc)
    assert len(scored) == 2
    # calibration data is collected without the gate, and calibrate() fits one
    linker.calibration = Calibration(scale=1.0, prior_weights=(0.0, 10.0), gate=0.0)
    data = linker.calibration_data([Example(doc, doc)])
    assert all(any(s != 0.0 for s in sc) for sc in data.scores)


def test_cascade_with_nil_gives_decided_mentions_the_assumed_model_score(nlp, demo_kb, monkeypatch):
    linker, doc, scored = cascade_doc(nlp, monkeypatch)
    linker.calibration = Calibration(scale=1.0, nil_score=0.0, prior_weights=(0.0, 10.0), gate=0.9, gate_score=-0.5)
    out = nlp(doc)
    assert len(scored) == 1 and "bad episode" in scored[0]
    rows = [demo_kb.row_of("DEMO:D006"), demo_kb.row_of("DEMO:D024")]
    expected, _ = linker.calibration.probabilities([-0.5, -0.5], linker.features(rows, "strange one"))
    assert out.ents[1].kb_id_ == "DEMO:D006" and np.isclose(out.ents[1]._.entlink_links[0][1], expected.max())
    scored.clear()
    linker.calibration.gate_score = -10.0  # NIL would beat both candidates: the model must decide
    nlp(doc)
    assert len(scored) == 2


def test_features_do_not_depend_on_the_order_of_the_candidates(nlp, demo_kb):
    linker = nlp.get_pipe("entlink_linker")
    linker.entity_counts = {"DEMO:D016": 2, "DEMO:D017": 2}  # tied counts
    linker.mention_counts = {demo_kb.normalize("bad episode"): {"DEMO:D016": 1, "DEMO:D017": 1}}
    rows = [demo_kb.row_of(i) for i in ("DEMO:D016", "DEMO:D017", "DEMO:D001")]
    a = linker.features(rows, "bad episode")
    b = linker.features(rows[::-1], "bad episode")[::-1]
    assert np.array_equal(a, b)
    # D016 has the higher KB prior (0.6 vs 0.5): the prior's choice; both are the mention's usual ids
    assert list(a[:, 3]) == [1.0, 0.0, 0.0] and list(a[:, 4]) == [1.0, 1.0, 0.0]


def test_cascade_computes_a_decided_mentions_features_once(nlp, demo_kb, monkeypatch):
    linker = nlp.get_pipe("entlink_linker")
    doc = make_doc(nlp, "He had a strange one .", [("strange one", "Disease", "")])
    doc.ents[0]._.entlink_candidates = ["DEMO:D006", "DEMO:D024"]
    linker.calibration = Calibration(scale=1.0, prior_weights=(0.0, 10.0), gate=0.9)
    calls = []
    real = linker.features
    monkeypatch.setattr(linker, "features", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = nlp(doc)
    assert out.ents[0].kb_id_ == "DEMO:D006" and len(calls) == 1


def test_context_model_learns_from_training_mentions_and_is_saved(nlp, demo_kb, tmp_path):
    linker = nlp.get_pipe("entlink_linker")
    vaccine = "Children vaccinated against hepatitis showed antibodies ."
    shellfish = "Eating raw shellfish caused hepatitis outbreaks ."

    def doc_with(text, kb_id, n=nlp):
        doc = make_doc(n, text, [("hepatitis", "Disease", kb_id)], with_ids=True)
        doc.ents[0]._.entlink_candidates = ["DEMO:D011", "DEMO:D012"]  # Hepatitis B, Hepatitis A
        return doc

    examples = [Example(nlp.make_doc(t), doc_with(t, i)) for t, i in ((vaccine, "DEMO:D011"), (shellfish, "DEMO:D012"))] * 10
    model = linker.fit_context_model(examples, epochs=5, learn_rate=0.1, buckets=1 << 12)
    assert model.fitted_on == 20 and linker.entity_counts == {"DEMO:D011": 10, "DEMO:D012": 10}
    rows = [demo_kb.row_of("DEMO:D011"), demo_kb.row_of("DEMO:D012")]
    a = linker.features(rows, "hepatitis", span=doc_with(vaccine, "").ents[0])[:, 9]
    b = linker.features(rows, "hepatitis", span=doc_with(shellfish, "").ents[0])[:, 9]
    assert a[0] > a[1] and b[1] > b[0]
    assert not linker.features(rows, "hepatitis")[:, 9].any()  # no span, no context
    cal = linker.calibrate(examples, with_nil=False, gate=False, folds=2)
    assert len(cal.prior_weights) == 10 and cal.prior_weights[9] > 0
    # cross-validated with and without the context feature: the context decides here
    cv = linker.calibration_cv
    assert cv["cross_validated_acc"] == 1.0 and cv["cross_validated_acc_without_context"] <= 0.75

    def linked(text, n):
        return n(doc_with(text, "", n)).ents[0].kb_id_

    assert linked(vaccine, nlp) == "DEMO:D011" and linked(shellfish, nlp) == "DEMO:D012"
    nlp.to_disk(tmp_path / "pipe")
    again = spacy.load(tmp_path / "pipe")
    assert np.array_equal(again.get_pipe("entlink_linker").context_model.weights, model.weights)
    assert linked(vaccine, again) == "DEMO:D011" and linked(shellfish, again) == "DEMO:D012"


def test_dense_extra_adds_a_second_encoders_nearest_names_and_keeps_the_first_for_similarity(demo_kb, tmp_path):
    from tests.linking.test_retriever import tiny_encoder_folder

    nlp = spacy.blank("en")
    linker = nlp.add_pipe("entlink_linker", config={"candidates": ["dense", "dense_extra"], "dense_k": 2})
    linker.set_seq2seq(tiny_bart(tmp_path / "m"))
    linker.cfg["dense_model"] = str(tiny_encoder_folder(tmp_path / "a", seed=0))
    linker.cfg["extra_dense_model"] = str(tiny_encoder_folder(tmp_path / "b", seed=1))
    linker.set_kb(demo_kb)
    assert linker.dense is not None and linker.dense_extra is not None
    texts = ["raised blood pressure", "sugar illness of the young", "heart stopped", "liver damage"]
    doc = make_doc(nlp, " and ".join(texts) + " .", [(t, "Disease", "") for t in texts])
    found = linker.candidate_rows_batch(list(doc.ents))
    first = linker.dense.search(texts, k=2)
    extra = linker.dense_extra.search(texts, k=2)
    assert found == [list(dict.fromkeys(a + b)) for a, b in zip(first, extra)]  # first index's, then the new ones
    assert any(set(b) - set(a) for a, b in zip(first, extra))  # the second encoder adds candidates
    # the name-similarity feature stays in the first index's space
    vectors = linker.mention_vectors(list(doc.ents), force=True)
    assert np.allclose(vectors, linker.dense.encoder.encode(texts), atol=1e-5)
    assert set(linker.torch_modules()) == {"seq2seq", "dense", "dense_extra"}
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p").get_pipe("entlink_linker")
    assert again.dense_extra is not None and again.cfg["extra_dense_model"] == linker.cfg["extra_dense_model"]
    assert again.candidate_rows_batch(list(doc.ents)) == found
    again.set_candidates(["dense"])
    assert again.candidate_rows_batch(list(doc.ents)) == first


def test_dense_ann_settings_build_the_index_and_set_its_search(demo_kb, tmp_path):
    pytest.importorskip("faiss")
    from tests.linking.test_retriever import tiny_encoder_folder

    nlp = spacy.blank("en")
    ann = {"threshold": 1, "m": 8, "ef_construction": 16, "ef_search": 4}
    linker = nlp.add_pipe("entlink_linker", config={"candidates": ["dense"], "dense_k": 3, "dense_ann": ann})
    linker.set_seq2seq(tiny_bart(tmp_path / "m")).set_kb(demo_kb)
    dense = linker.build_dense(model=str(tiny_encoder_folder(tmp_path / "enc")))
    assert dense.uses_ann and (dense.meta["hnsw_m"], dense.meta["ef_construction"]) == (8, 16)
    assert dense.ef_search == 4
    doc = make_doc(nlp, "She had raised blood pressure .", [("raised blood pressure", "Disease", "")])
    (rows,) = linker.candidate_rows_batch(list(doc.ents))
    assert 0 < len(rows) <= 3
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p", config={"components": {"entlink_linker": {"dense_ann": {"ef_search": 64}}}})
    loaded = again.get_pipe("entlink_linker")
    assert loaded.dense.uses_ann and loaded.dense.ef_search == 64  # a search-time setting of the loading config
    assert loaded.candidate_rows_batch(list(doc.ents)) == [rows]
    for bad, match in (({"nope": 3}, "no setting 'nope'"), ({"m": 0}, "at least 1")):
        with pytest.raises(ConfigError, match=match):
            spacy.blank("en").add_pipe("entlink_linker", config={"dense_ann": bad})
    with pytest.raises(ConfigValidationError, match="ef_search"):  # spaCy's own check of the type
        spacy.blank("en").add_pipe("entlink_linker", config={"dense_ann": {"ef_search": 2.5}})
