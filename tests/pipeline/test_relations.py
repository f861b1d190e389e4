"""entlink_relations with tiny random encoders: training, prediction, serialization, scale."""

import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Corpus, Example

from spacy_entlink.errors import ConfigError
from spacy_entlink.extensions import Relation
from spacy_entlink.scoring import score_relations

from ..relations.conftest import tiny_encoder

SENTS = [
    ("john smith works for acme corp in paris .", [(0, 2, "Peop"), (4, 6, "Org"), (7, 8, "Loc")],
     [(0, "Work_For", 1), (1, "OrgBased_In", 2)]),
    ("mary jones lives in london .", [(0, 2, "Peop"), (4, 5, "Loc")], [(0, "Live_In", 1)]),
    ("ibm is based in new york city .", [(0, 1, "Org"), (4, 7, "Loc")], [(0, "OrgBased_In", 1)]),
    ("new york city is located in usa .", [(0, 3, "Loc"), (6, 7, "Loc")], [(0, "Located_In", 1)]),
]


def gold_doc(nlp, text, ents, rels) -> Doc:
    doc = Doc(nlp.vocab, words=text.split())
    spans = [Span(doc, s, e, label=label) for s, e, label in ents]
    doc.ents = spans
    doc._.entlink_relations = [Relation(spans[h], label, spans[t]) for h, label, t in rels]
    return doc


def examples(nlp):
    out = []
    for text, ents, rels in SENTS:
        ref = gold_doc(nlp, text, ents, rels)
        out.append(Example(Doc(nlp.vocab, words=text.split()), ref))
    return out


def make_nlp(tmp_path, entities="doc", relation_types="conll04", max_candidates=8, model_cfg=None, **cfg):
    model, tok = tiny_encoder(tmp_path / "enc")
    nlp = spacy.blank("en")
    rel = nlp.add_pipe("entlink_relations", config={
        "entities": entities, "relation_types": relation_types, "learning_rate": 1e-3, "type_constraints": False,
        "model": {"@architectures": "spacy_entlink.RelationReader.v1", "name": str(tmp_path / "enc"),
                  "retriever": str(tmp_path / "enc"), "max_candidates": max_candidates, "hidden": 32,
                  "max_text_tokens": 64, **(model_cfg or {})}, **cfg})
    return nlp, rel


def train(nlp, egs, steps=40):
    losses = []
    for _ in range(steps):
        out = {}
        nlp.update(egs, losses=out)
        losses.append(out["entlink_relations"])
    return losses


def trained(tmp_path, steps, threshold, **cfg):
    """A tiny pipeline initialised and trained `steps` updates on `SENTS`, with `threshold`."""
    nlp, rel = make_nlp(tmp_path, **cfg)
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    train(nlp, egs, steps=steps)
    rel.cfg["threshold"] = threshold
    return nlp, rel, egs


def repeated_doc(nlp, copies, labels=("Peop", "Org")):
    """`copies` times SENTS[0]'s words, its first entity labelled labels[0], its second labels[1]."""
    words = ("john smith works for acme corp in paris . " * copies).split()
    doc = Doc(nlp.vocab, words=words)
    doc.ents = [Span(doc, i + offset, i + offset + 2, label=label)
                for offset, label in zip((0, 4), labels) for i in range(0, len(words), 9)]
    return doc


def test_training_reduces_loss_and_predicts_span_relations(tmp_path):
    nlp, rel = make_nlp(tmp_path)
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    losses = train(nlp, egs)
    assert losses[-1] < 0.3 * losses[0]
    docs = [eg.reference.copy() for eg in egs]
    for d in docs:
        d._.entlink_relations = []
    docs = [rel(d) for d in docs]
    found = docs[0]._.entlink_relations
    assert found and all(isinstance(r.head, Span) and isinstance(r.tail, Span) and 0 < r.score <= 1 for r in found)
    scores = score_relations([Example(d, eg.reference) for d, eg in zip(docs, egs)])
    assert scores["rel_micro_f"] > 0.8  # it fits its training data


def test_relations_survive_docbin_and_to_disk(tmp_path):
    nlp, rel, egs = trained(tmp_path, 15, 0.3)
    text, ents, _ = SENTS[0]
    doc = nlp(gold_doc(nlp, text, ents, []))
    before = [(r.head.text, r.label, r.tail.text, round(r.score, 5)) for r in doc._.entlink_relations]
    restored = list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))[0]
    assert [(r.head.text, r.label, r.tail.text, round(r.score, 5)) for r in restored._.entlink_relations] == before
    nlp.to_disk(tmp_path / "pipe")
    nlp2 = spacy.load(tmp_path / "pipe")
    doc2 = nlp2(gold_doc(nlp2, text, ents, []))
    assert [(r.head.text, r.label, r.tail.text, round(r.score, 5)) for r in doc2._.entlink_relations] == before
    rel2 = nlp2.get_pipe("entlink_relations")
    rel3 = spacy.blank("en").add_pipe("entlink_relations", config={"relation_types": "cid"})
    rel3.from_bytes(rel2.to_bytes())
    assert rel3.labels == rel2.labels and rel3.cfg["threshold"] == pytest.approx(0.3)


def test_long_documents_and_documents_without_entities(tmp_path):
    nlp, rel = make_nlp(tmp_path)
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    train(nlp, egs, steps=10)
    rel.cfg["threshold"] = 0.0  # every pair passes: relations must stay inside windows
    words = ("john smith works for acme corp in paris . " * 2223).split()[:20000]
    doc = Doc(nlp.vocab, words=words)
    doc.ents = [Span(doc, i, i + 2, label="Peop") for i in range(0, 20000, 9)] + [
        Span(doc, i, i + 2, label="Org") for i in range(4, 20000, 9)]
    windows = rel._windows(doc)
    assert len(windows) > 100 and windows[-1].end == len(doc)
    out = rel(doc)
    assert len(out) == 20000 and out._.entlink_relations
    assert all(abs(r.head.start - r.tail.start) < 64 for r in out._.entlink_relations)
    empty = rel(Doc(nlp.vocab, words=["nothing", "here", "."]))
    assert empty._.entlink_relations == []
    assert list(nlp.pipe([Doc(nlp.vocab, words=[]), Doc(nlp.vocab, words=["x"])])) != []


def test_unknown_training_label_is_a_clear_error(tmp_path):
    nlp, rel = make_nlp(tmp_path)
    bad = examples(nlp)
    doc = bad[0].reference
    doc._.entlink_relations = [Relation(doc.ents[0], "Married_To", doc.ents[1])]
    with pytest.raises(ConfigError, match="Married_To"):
        nlp.initialize(lambda: bad)


def test_end_to_end_mode_predicts_entities(tmp_path):
    nlp, rel = make_nlp(tmp_path, entities="predict")
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    assert rel.reader.entity_labels == ["Loc", "Org", "Peop"]
    train(nlp, egs, steps=60)
    doc = nlp(SENTS[1][0])
    assert [(e.text, e.label_) for e in doc.ents] == [("mary jones", "Peop"), ("london", "Loc")]


def test_retriever_picks_candidates_from_a_large_label_set(tmp_path):
    types = [{"name": n, "description": d} for n, d in [
        ("Work_For", "works for"), ("Live_In", "lives in"), ("OrgBased_In", "based in"), ("Located_In", "located in"),
        ("Kill", "killed"), ("Met", "met"), ("Sibling", "sister of"), ("Owns", "owns")]]
    nlp, rel = make_nlp(tmp_path, relation_types=types, max_candidates=3)
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    assert rel.needs_retriever and rel.retriever is not None
    assert all(len(c) == 3 for c in rel._candidates(["a text", "another"]))
    losses = train(nlp, egs, steps=25)
    assert losses[-1] < losses[0]
    with pytest.raises(ConfigError, match="retriever"):
        rel.set_reader(rel.reader, None)


def test_kb_id_aggregation(tmp_path):
    nlp, rel = make_nlp(tmp_path, relation_types="cid", aggregate="kb_id")
    doc = Doc(nlp.vocab, words="acme corp causes paris and acme corp again .".split())
    doc.ents = [Span(doc, 0, 2, "Chemical", kb_id="C1"), Span(doc, 3, 4, "Disease", kb_id="D1"),
                Span(doc, 5, 7, "Chemical", kb_id="C1")]
    doc._.entlink_relations = [Relation("C1", "CID", "D1")]
    eg = Example(Doc(nlp.vocab, words=[t.text for t in doc]), doc)
    nlp.initialize(lambda: [eg])
    train(nlp, [eg], steps=30)
    pred = doc.copy()
    pred._.entlink_relations = []
    out = rel(pred)._.entlink_relations
    assert [(r.head, r.label, r.tail) for r in out] == [("C1", "CID", "D1")]


def test_relation_scorer_counts_strict_matches(tmp_path):
    nlp = spacy.blank("en")
    text, ents, rels = SENTS[0]
    gold = gold_doc(nlp, text, ents, rels)
    pred = gold_doc(nlp, text, ents, [(0, "Work_For", 1), (2, "Located_In", 1)])
    s = score_relations([Example(pred, gold)])
    assert s["rel_micro_p"] == 0.5 and s["rel_micro_r"] == 0.5
    assert s["rel_f_per_type"]["Work_For"]["f"] == 1.0 and s["rel_f_per_type"]["OrgBased_In"]["r"] == 0.0
    mislabelled = gold_doc(nlp, text, [(0, 2, "Org"), (4, 6, "Org"), (7, 8, "Loc")], [(0, "Work_For", 1)])
    assert score_relations([Example(mislabelled, gold)])["rel_micro_p"] == 0.0  # strict: entity types count


def test_update_on_a_batch_without_entity_pairs(tmp_path):
    """Documents with fewer than two entities give no relation targets: the update is a no-op
    with zero loss, not an autograd error (BC5CDR windows can hold a single mention)."""
    nlp, rel = make_nlp(tmp_path)
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    lonely = Doc(nlp.vocab, words="john smith slept .".split())
    lonely.ents = [Span(lonely, 0, 2, label="Peop")]
    batch = [Example(Doc(nlp.vocab, words=[t.text for t in lonely]), lonely),
             Example(Doc(nlp.vocab, words=["nothing", "."]), Doc(nlp.vocab, words=["nothing", "."]))]
    before = [p.detach().clone() for p in rel.reader.parameters()]
    losses = {}
    nlp.update(batch, losses=losses)
    assert losses["entlink_relations"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(rel.reader.parameters(), before))


def test_windows_no_relation_type_can_join_get_no_forward_pass(tmp_path):
    nlp, rel = make_nlp(tmp_path, type_constraints=True)
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    calls = []
    forward = rel.reader.forward
    rel.reader.forward = lambda inputs, **kw: calls.append(len(inputs)) or forward(inputs, **kw)
    # no CoNLL04 type joins two Org entities, nor a lone entity: no forward pass, no relations
    docs = [gold_doc(nlp, "ibm and acme merged .", [(0, 1, "Org"), (2, 3, "Org")], []),
            gold_doc(nlp, "ibm grew .", [(0, 1, "Org")], [])]
    for d in docs:
        d._.entlink_relations = []
    out = list(rel.pipe(docs))
    assert calls == [] and all(d._.entlink_relations == [] for d in out)
    # a Peop and an Org can be joined by Work_For: that window is read
    out = rel(gold_doc(nlp, "john works for ibm .", [(0, 1, "Peop"), (3, 4, "Org")], []))
    assert calls == [1]


def test_the_pipeline_hands_the_reader_each_windows_wordpieces(tmp_path):
    nlp, rel, _ = trained(tmp_path, 3, 0.0)
    docs = [repeated_doc(nlp, 30, labels=("Peop",)), gold_doc(nlp, *SENTS[1][:2], [])]  # several windows, one
    inputs, meta = rel._inputs(docs, gold=False)
    assert len(inputs) > 2 and all(x.piece_ids is not None and len(x.piece_ids) == len(x.words) for x in inputs)
    assert inputs[1].piece_ids == rel.reader.word_piece_ids([inputs[1].words])[0]

    def relations():
        return [[(r.head.start, r.label, r.tail.start, round(r.score, 6)) for r in d._.entlink_relations]
                for d in rel.pipe([d.copy() for d in docs])]

    found = relations()
    rel.reader.__dict__["_template"] = None  # the tokenizer's own pair encoding instead
    plain = relations()
    assert found == plain and found[0]


def test_entity_markers_in_training_and_windows(tmp_path):
    nlp, rel = make_nlp(tmp_path, model_cfg={"entity_marker": "-"})
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    assert rel.reader.entity_marker == "-"
    losses = train(nlp, egs, steps=15)
    assert losses[-1] < losses[0]
    doc = repeated_doc(nlp, 30)
    inputs, _ = rel._inputs([doc], gold=False)
    assert len(inputs) > 2
    for x in inputs:  # the windows leave room for the markers: nothing is cut off
        marked = rel.reader._marked(x)
        assert sum(len(p) for p in marked.piece_ids) <= rel.reader.max_text_tokens
        assert marked.words.count("-") == 2 * len(x.spans)
    out = rel(doc)
    assert out._.entlink_relations is not None
    with pytest.raises(ConfigError, match="entity_marker"):
        make_nlp(tmp_path / "p", entities="predict", model_cfg={"entity_marker": "-"})


def test_precision_setting(tmp_path):
    with pytest.raises(ConfigError, match="precision"):
        make_nlp(tmp_path, precision="half")
    nlp, rel = make_nlp(tmp_path, precision="float32")
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    train(nlp, egs, steps=20)
    docs = [eg.reference.copy() for eg in egs]
    full = [r.score for d in rel.pipe([d.copy() for d in docs]) for r in d._.entlink_relations]
    rel.cfg["precision"] = "bfloat16"
    half = [r.score for d in rel.pipe([d.copy() for d in docs]) for r in d._.entlink_relations]
    assert len(full) > 0 and len(half) > 0
    assert abs(sum(full) / len(full) - sum(half) / len(half)) < 0.05  # bf16 autocast: close, not equal
    # precision is a run-time choice: the loading config wins over the saved one
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p", config={"components": {"entlink_relations": {"precision": "float32"}}})
    assert loaded.get_pipe("entlink_relations").cfg["precision"] == "float32"


def test_the_reader_can_read_names_only(tmp_path):
    nlp, rel = make_nlp(tmp_path, model_cfg={"candidate_text": "name"})
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    names = {"work for", "kill", "orgbased in", "live in", "located in"}
    inputs, _ = rel._inputs([eg.reference for eg in egs], gold=True)
    assert inputs and all(c in names for x in inputs for c in x.candidates)
    torch.manual_seed(0)
    losses = train(nlp, egs, steps=30)
    assert losses[-1] < 0.5 * losses[0]
    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline").get_pipe("entlink_relations")
    loaded, _ = again._inputs([egs[0].reference], gold=False)
    assert loaded and all(c in names for x in loaded for c in x.candidates)
    with pytest.raises(ConfigError, match="candidate_text"):
        make_nlp(tmp_path / "bad", model_cfg={"candidate_text": "descriptions"})


def test_admissible_candidates_read_only_the_types_the_entity_labels_admit(tmp_path):
    nlp, rel = make_nlp(tmp_path, type_constraints=True,
                        model_cfg={"candidate_text": "name", "admissible_candidates": True})
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    inputs, meta = rel._inputs([eg.reference for eg in egs], gold=True)
    names = [[rel.types[c].name for c in m[3]] for m in meta]
    # Peop+Org+Loc admits three types; Peop+Loc one; Org+Loc one; Loc+Loc one (Kill needs two Peop)
    assert names == [["Work_For", "OrgBased_In", "Live_In"], ["Live_In"], ["OrgBased_In"], ["Located_In"]]
    assert [x.candidates for x in inputs][1] == ["live in"]
    # every gold relation keeps its candidate, at the marker of its (shifted) position
    assert [sorted(x.gold_relations) for x in inputs] == [[(0, 1, 0), (1, 2, 1)], [(0, 1, 0)], [(0, 1, 0)], [(0, 1, 0)]]
    torch.manual_seed(0)
    losses = train(nlp, egs, steps=30)
    assert losses[-1] < 0.5 * losses[0]
    seen = []
    forward = rel.reader.forward
    rel.reader.forward = lambda xs, **kw: seen.extend(len(x.candidates) for x in xs) or forward(xs, **kw)
    docs = [gold_doc(nlp, t, e, []) for t, e, _ in SENTS]
    for d in docs:
        d._.entlink_relations = []
    out = list(rel.pipe(docs))
    assert sorted(seen) == [1, 1, 1, 3]
    found = {(r.head.text, r.label, r.tail.text) for r in out[1]._.entlink_relations}
    assert found <= {("mary jones", "Live_In", "london")}
    # saved and loaded, the setting holds; with the reader's own spans every type is read
    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline").get_pipe("entlink_relations")
    assert [len(m[3]) for m in again._inputs([egs[1].reference], gold=False)[1]] == [1]
    again.cfg["entities"] = "predict"
    assert [len(m[3]) for m in again._inputs([egs[1].reference], gold=False)[1]] == [5]


def test_admissible_candidates_with_a_retriever(tmp_path):
    types = [{"name": n, "description": d, "head_types": [h], "tail_types": [t]} for n, d, h, t in [
        ("Work_For", "works for", "Peop", "Org"), ("Live_In", "lives in", "Peop", "Loc"),
        ("OrgBased_In", "based in", "Org", "Loc"), ("Located_In", "located in", "Loc", "Loc"),
        ("Kill", "killed", "Peop", "Peop"), ("Owns", "owns", "Peop", "Org")]]
    nlp, rel = make_nlp(tmp_path, relation_types=types, max_candidates=2, type_constraints=True,
                        model_cfg={"admissible_candidates": True})
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    assert rel.needs_retriever
    allowed = {"Work_For": {"Peop", "Org"}, "Owns": {"Peop", "Org"}, "Live_In": {"Peop", "Loc"},
               "OrgBased_In": {"Org", "Loc"}, "Located_In": {"Loc"}, "Kill": {"Peop"}}
    for gold in (True, False):
        _, meta = rel._inputs([eg.reference for eg in egs], gold=gold)
        for m in meta:
            labels = {a[2] for a in m[2]}
            assert 0 < len(m[3]) <= 2 and all(allowed[rel.types[c].name] <= labels for c in m[3])
    _, meta = rel._inputs([egs[1].reference], gold=True)
    assert [rel.types[c].name for c in meta[0][3]] == ["Live_In"]  # the one admissible type
    losses = train(nlp, egs, steps=15)
    assert losses[-1] < losses[0]


def test_typed_spans_read_the_entity_labels(tmp_path):
    nlp, rel = make_nlp(tmp_path, model_cfg={"typed_spans": True})
    egs = examples(nlp)
    nlp.initialize(lambda: egs)  # entities = "doc": the labels come from the training entities
    assert rel.cfg["entity_labels"] == ["Loc", "Org", "Peop"] and rel.reader.typed_spans
    inputs, _ = rel._inputs([egs[0].reference], gold=False)
    assert inputs[0].span_labels == [3, 2, 1]  # Peop, Org, Loc (1-based)
    # the same words with other labels score differently
    x = inputs[0]
    relabelled = type(x)(x.words, x.spans, x.candidates, span_labels=[1, 1, 1])
    with torch.no_grad():
        a, b = rel.reader([x])[0].relation_logits, rel.reader([relabelled])[0].relation_logits
    assert not torch.allclose(a, b)
    torch.manual_seed(0)
    losses = train(nlp, egs, steps=30)
    assert losses[-1] < 0.5 * losses[0]
    text, ents, _ = SENTS[0]
    before = [(r.head.text, r.label, r.tail.text, round(r.score, 5)) for r in nlp(gold_doc(nlp, text, ents, []))._.entlink_relations]
    nlp.to_disk(tmp_path / "pipeline")
    nlp2 = spacy.load(tmp_path / "pipeline")
    assert nlp2.get_pipe("entlink_relations").reader.typed_spans
    after = [(r.head.text, r.label, r.tail.text, round(r.score, 5)) for r in nlp2(gold_doc(nlp2, text, ents, []))._.entlink_relations]
    assert after == before
    bare, _ = make_nlp(tmp_path / "bare", model_cfg={"typed_spans": True})
    with pytest.raises(ConfigError, match="typed_spans needs entity_labels"):
        bare.initialize(lambda: [Example(Doc(bare.vocab, words=["x"]), Doc(bare.vocab, words=["x"]))])


def test_typed_spans_end_to_end_use_the_decoded_labels(tmp_path):
    nlp, rel = make_nlp(tmp_path, entities="predict", model_cfg={"typed_spans": True})
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    train(nlp, egs, steps=40)
    x = rel._inputs([Doc(nlp.vocab, words=SENTS[0][0].split())], gold=False)[0][0]
    with torch.no_grad():
        out = rel.reader([x], decode_entities=True)[0]
    assert x.span_labels == [label + 1 for _, _, label in out.entities] and len(x.span_labels) == len(x.spans)


CID_DOCS = [
    ("acme causes paris but ibm met london and acme again .",
     [(0, 1, "Chemical", "C1"), (2, 3, "Disease", "D1"), (4, 5, "Chemical", "C2"), (6, 7, "Disease", "D2"),
      (8, 9, "Chemical", "C1")], [("C1", "D1")]),
    ("usa killed john and paris met ibm .",
     [(0, 1, "Chemical", "C3"), (2, 3, "Disease", "D3"), (4, 5, "Disease", "D1"), (6, 7, "Chemical", "C2")],
     [("C3", "D3"), ("C2", "D1")]),
]


def cid_examples(nlp):
    out = []
    for text, ents, rels in CID_DOCS:
        doc = Doc(nlp.vocab, words=text.split())
        doc.ents = [Span(doc, s, e, label, kb_id=kb) for s, e, label, kb in ents]
        doc._.entlink_relations = [Relation(h, "CID", t) for h, t in rels]
        out.append(Example(Doc(nlp.vocab, words=text.split()), doc))
    return out


def test_fitted_aggregator_scores_id_pairs_and_is_saved(tmp_path):
    from spacy_entlink.relations.aggregate import MentionStats, collect_evidence, document_features

    nlp, rel = make_nlp(tmp_path, relation_types="cid", aggregate="kb_id", type_constraints=True)
    egs = cid_examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    train(nlp, egs, steps=10)
    agg = rel.fit_aggregator(egs)
    assert rel.aggregator == agg and agg.fitted_on == 8 and agg.positives == 3  # 2 x 2 id pairs per doc
    rel.cfg["threshold"] = 0.0
    docs = rel._fitting_docs(egs)
    rel._keep_all_pairs = True
    results = rel.predict(docs)
    rel._keep_all_pairs = False
    expected = {}
    for doc, res in zip(docs, results):
        for (h, label, t), x in document_features(collect_evidence(rel._scored_pairs(doc, res)), MentionStats(doc)).items():
            expected[(doc.text, h, t)] = agg.probability(x)
    out = [rel(d) for d in rel._fitting_docs(egs)]
    got = {(d.text, r.head, r.tail): r.score for d in out for r in d._.entlink_relations}
    assert got == pytest.approx(expected) and len(got) == 8
    assert all(r.label == "CID" for d in out for r in d._.entlink_relations)
    fitted = rel.fit_thresholds(egs)  # thresholds now apply to the aggregated probability
    assert set(fitted) == {"CID"}
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    saved = loaded.get_pipe("entlink_relations").aggregator
    assert saved.weights == pytest.approx(agg.weights) and saved.mean == pytest.approx(agg.mean)
    again = [loaded.get_pipe("entlink_relations")(d) for d in rel._fitting_docs(egs)]
    out = [rel(d) for d in rel._fitting_docs(egs)]
    assert [[(r.head, r.tail, round(r.score, 5)) for r in d._.entlink_relations] for d in again] == \
        [[(r.head, r.tail, round(r.score, 5)) for r in d._.entlink_relations] for d in out]


@pytest.mark.parametrize("pair_loss", ["logsumexp", "mention+logsumexp"])
def test_bag_pair_losses_train_one_bag_per_pair_of_ids(tmp_path, pair_loss):
    nlp, rel = make_nlp(tmp_path, relation_types="cid", aggregate="kb_id", type_constraints=True,
                        model_cfg={"pair_loss": pair_loss})
    egs = cid_examples(nlp)
    nlp.initialize(lambda: egs)
    assert rel.reader.pair_loss == pair_loss
    inputs, meta = rel._inputs([egs[0].reference], gold=True)
    (x,), (m,) = inputs, meta
    assert [a[3] for a in m[2]] == ["C1", "D1", "C2", "D2", "C1"]
    assert x.span_groups[0] == x.span_groups[4] and len(set(x.span_groups)) == 4  # the two C1 mentions share a bag
    assert rel._inputs([egs[0].reference], gold=False)[0][0].span_groups == []  # prediction needs no bags
    torch.manual_seed(0)
    losses = train(nlp, egs, steps=30)
    assert losses[-1] < 0.5 * losses[0]
    rel.cfg["threshold"] = 0.5
    found = {(d.text, r.head, r.tail) for d in (rel(eg.reference.copy()) for eg in egs) for r in d._.entlink_relations}
    gold = {(eg.reference.text, r.head, r.tail) for eg in egs for r in eg.reference._.entlink_relations}
    assert found == gold
    # without an aggregator an id pair scores as in training: sigmoid of the log-sum-exp of its pairs' logits
    from spacy_entlink.relations.aggregate import collect_evidence

    assert rel._id_pair_score([0.5, 0.5]) == pytest.approx(2 / 3) and rel._id_pair_score([0.2]) == pytest.approx(0.2)
    rel.cfg["threshold"] = 0.0
    docs = rel._fitting_docs(egs)
    expected = {}
    for doc, res in zip(docs, rel.predict(docs)):
        for (h, _, t), ev in collect_evidence(rel._scored_pairs(doc, res)).items():
            expected[(doc.text, h, t)] = rel._id_pair_score(ev.probs)
    got = {(d.text, r.head, r.tail): r.score for d in (rel(d) for d in rel._fitting_docs(egs)) for r in d._.entlink_relations}
    assert got == pytest.approx(expected) and len(got) == 8
    nlp.to_disk(tmp_path / "pipe")
    assert spacy.load(tmp_path / "pipe").get_pipe("entlink_relations").reader.pair_loss == pair_loss
    with pytest.raises(ConfigError, match="pair_loss"):
        make_nlp(tmp_path, relation_types="cid", aggregate="mention", model_cfg={"pair_loss": pair_loss})


def hierarchy_kb(path):
    """D3 and D2 are narrower than D1."""
    from spacy_entlink.kb import EntityRecord, KnowledgeBase

    return KnowledgeBase.build([EntityRecord("D1", "d one"), EntityRecord("D2", "d two", parents=["D1"]),
                                EntityRecord("D3", "d three", parents=["D1"])], path, fuzzy_index=False)


def test_the_aggregator_reads_the_kb_hierarchy(tmp_path):
    from spacy_entlink.relations.aggregate import FEATURES, MentionStats, collect_evidence, document_features

    nlp, rel = make_nlp(tmp_path, relation_types="cid", aggregate="kb_id", type_constraints=True)
    egs = cid_examples(nlp)
    nlp.initialize(lambda: egs)
    assert rel._ancestors() is None  # no KB, no hierarchy features
    hierarchy_kb(tmp_path / "kb")
    rel.initialize(lambda: egs, kb=str(tmp_path / "kb"))  # as [initialize.components.entlink_relations] kb
    broader = rel._ancestors()
    assert broader("D3") == {"D1"} and broader("D1") == set() and broader("C1") == set()
    docs = rel._fitting_docs(egs)
    rel._keep_all_pairs = True
    results = rel.predict(docs)
    rel._keep_all_pairs = False
    x = document_features(collect_evidence(rel._scored_pairs(docs[1], results[1])), MentionStats(docs[1]), broader)
    # the second document relates C2 and C3 with D1 and with the narrower D3
    col = FEATURES.index("narrower_tail")
    assert x[("C2", "CID", "D1")][col] == 1.0 and x[("C3", "CID", "D1")][col] == 1.0
    assert x[("C2", "CID", "D3")][col] == 0.0
    agg = rel.fit_aggregator(egs)
    rel.cfg["threshold"] = 0.0
    got = {(r.head, r.tail): r.score for r in rel(rel._fitting_docs(egs)[1])._.entlink_relations}
    assert got[("C2", "CID", "D1")[::2]] == pytest.approx(agg.probability(x[("C2", "CID", "D1")]))
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe").get_pipe("entlink_relations")
    assert loaded._ancestors()("D2") == {"D1"}


def test_aggregator_needs_kb_id_relations_and_a_sound_cfg(tmp_path):
    import json

    nlp, rel = make_nlp(tmp_path, relation_types="cid", aggregate="mention")
    egs = cid_examples(nlp)
    nlp.initialize(lambda: egs)
    with pytest.raises(ConfigError, match="kb_id"):
        rel.fit_aggregator(egs)
    rel.cfg["aggregate"] = "kb_id"
    nlp.to_disk(tmp_path / "pipe")
    cfg_path = tmp_path / "pipe" / "entlink_relations" / "cfg"
    cfg = json.loads(cfg_path.read_text())
    cfg["aggregator"] = {"features": ["mean_logit"], "weights": [1.0], "bias": 0.0, "mean": [0.0], "scale": [1.0]}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="cfg: aggregator.*calibrate-relations"):
        spacy.load(tmp_path / "pipe")
    cfg["aggregator"], cfg["relation_counts"] = None, {"related": 3}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="cfg: relation_counts"):
        spacy.load(tmp_path / "pipe")


def saved_cid_pipeline(tmp_path) -> None:
    """An untrained CID pipeline at tmp_path/pipe, its examples' references at tmp_path/held.spacy."""
    nlp, _ = make_nlp(tmp_path, relation_types="cid", aggregate="kb_id", type_constraints=True)
    egs = cid_examples(nlp)
    nlp.initialize(lambda: egs)
    nlp.to_disk(tmp_path / "pipe")
    DocBin(docs=[eg.reference for eg in egs], store_user_data=True).to_disk(tmp_path / "held.spacy")


def test_calibrate_relations_cli(tmp_path):
    import srsly

    from spacy_entlink.cli import main

    saved_cid_pipeline(tmp_path)
    hierarchy_kb(tmp_path / "kb")
    main(["calibrate-relations", str(tmp_path / "pipe"), str(tmp_path / "cal"), "--dev", str(tmp_path / "held.spacy"),
          "--kb", str(tmp_path / "kb"), "--train", str(tmp_path / "held.spacy"), "--metrics", str(tmp_path / "m.json")])
    report = srsly.read_json(tmp_path / "m.json")
    assert report["documents"] == 2 and report["aggregator"]["fitted_on"] == 8 and set(report["thresholds"]) == {"CID"}
    assert 0.0 <= report["f_before"] <= 1.0 and 0.0 <= report["f_after"] <= 1.0
    loaded = spacy.load(tmp_path / "cal").get_pipe("entlink_relations")
    assert loaded.aggregator is not None and loaded.cfg["thresholds"] == pytest.approx(report["thresholds"])
    assert loaded.kb is not None and loaded._ancestors()("D3") == {"D1"}  # the KB is saved with the component
    assert loaded.relation_counts.related == {"C1\tCID\tD1": 1, "C3\tCID\tD3": 1, "C2\tCID\tD1": 1}
    # --l2 auto (the default): every penalty of the grid cross-validated, the best one (with its at_least_one rule) kept
    from spacy_entlink.pipeline.relations import L2_GRID

    table = {float(k): v for k, v in report["l2_cv"].items()}
    assert sorted(table) == sorted(L2_GRID) and report["l2"] in table
    best = max(max(v["with"], v["without"]) for v in table.values())
    chosen = table[report["l2"]]
    assert max(chosen["with"], chosen["without"]) == pytest.approx(best)
    assert report["at_least_one_cv"] == chosen and report["at_least_one"] is (chosen["with"] > chosen["without"])
    main(["calibrate-relations", str(tmp_path / "pipe"), str(tmp_path / "cal_fixed"), "--dev", str(tmp_path / "held.spacy"),
          "--l2", "0.5", "--metrics", str(tmp_path / "m2.json")])
    fixed = srsly.read_json(tmp_path / "m2.json")
    assert fixed["l2"] == 0.5 and "l2_cv" not in fixed
    for bad in (["--dev", str(tmp_path / "missing.spacy")], ["--name", "nope"], ["--l2", "-1"], ["--l2", "strong"],
                ["--kb", str(tmp_path / "nokb")], ["--train", str(tmp_path / "missing.spacy")]):
        with pytest.raises(SystemExit):
            main(["calibrate-relations", str(tmp_path / "pipe"), str(tmp_path / "x"), "--dev", str(tmp_path / "held.spacy"), *bad])
    with pytest.raises(SystemExit):
        main(["calibrate-relations", str(tmp_path / "pipe"), str(tmp_path / "pipe"), "--dev", str(tmp_path / "held.spacy")])


def test_copy_calibration_cli_gives_a_retrained_reader_the_fitted_calibration(tmp_path):
    from spacy_entlink.cli import main

    saved_cid_pipeline(tmp_path)
    hierarchy_kb(tmp_path / "kb")
    main(["calibrate-relations", str(tmp_path / "pipe"), str(tmp_path / "cal"), "--dev", str(tmp_path / "held.spacy"),
          "--kb", str(tmp_path / "kb"), "--train", str(tmp_path / "held.spacy"), "--at-least-one", "on"])
    # "the final model": the same config trained further on all the documents
    nlp = spacy.load(tmp_path / "pipe")
    egs = list(Corpus(str(tmp_path / "held.spacy"))(nlp))
    torch.manual_seed(1)
    train(nlp, egs, steps=3)
    nlp.to_disk(tmp_path / "final")
    one = DocBin(docs=[egs[0].reference], store_user_data=True)
    one.to_disk(tmp_path / "one.spacy")
    main(["copy-calibration", str(tmp_path / "cal"), str(tmp_path / "final"), str(tmp_path / "out"), "--train", str(tmp_path / "one.spacy")])
    cal = spacy.load(tmp_path / "cal").get_pipe("entlink_relations")
    out_nlp = spacy.load(tmp_path / "out")
    out = out_nlp.get_pipe("entlink_relations")
    for key in ("aggregator", "thresholds", "threshold", "at_least_one"):
        assert out.cfg[key] == cal.cfg[key], key
    assert out.cfg["at_least_one"] is True and out.aggregator is not None
    assert out.kb is not None and out._ancestors()("D3") == {"D1"}
    # the relation counts are the final reader's training documents', the weights the final reader's
    assert out.relation_counts.related == {"C1\tCID\tD1": 1} != cal.relation_counts.related
    final = spacy.load(tmp_path / "final").get_pipe("entlink_relations")
    assert all(torch.equal(a, b) for a, b in zip(out.reader.parameters(), final.reader.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(out.reader.parameters(), cal.reader.parameters()))
    # what it predicts: the final reader, scored by the calibration
    final.copy_calibration(cal)
    final.cfg["relation_counts"] = out.cfg["relation_counts"]
    docs = out._fitting_docs(egs)
    assert _relations(out, [d.copy() for d in docs]) == _relations(final, [d.copy() for d in docs])
    # without --train: the pipeline's own counts, or where it has none the calibrated component's
    main(["copy-calibration", str(tmp_path / "cal"), str(tmp_path / "final"), str(tmp_path / "out2")])
    assert spacy.load(tmp_path / "out2").get_pipe("entlink_relations").relation_counts.related == cal.relation_counts.related
    main(["copy-calibration", str(tmp_path / "cal"), str(tmp_path / "out"), str(tmp_path / "out3")])
    assert spacy.load(tmp_path / "out3").get_pipe("entlink_relations").relation_counts.related == {"C1\tCID\tD1": 1}
    other, _ = make_nlp(tmp_path / "other")  # CoNLL04's relation types
    other.initialize(lambda: examples(other))
    other.to_disk(tmp_path / "conll")
    for bad in ([str(tmp_path / "cal"), str(tmp_path / "conll"), str(tmp_path / "x")],  # other relation types
                [str(tmp_path / "cal"), str(tmp_path / "final"), str(tmp_path / "final")],  # OUTPUT == PIPELINE
                [str(tmp_path / "missing"), str(tmp_path / "final"), str(tmp_path / "x")],
                [str(tmp_path / "cal"), str(tmp_path / "final"), str(tmp_path / "x"), "--name", "nope"]):
        with pytest.raises(SystemExit):
            main(["copy-calibration", *bad])
    assert not (tmp_path / "x").exists()


def _relations(rel, docs):
    return [[(r.head if isinstance(r.head, str) else (r.head.start, r.head.end), r.label,
              r.tail if isinstance(r.tail, str) else (r.tail.start, r.tail.end), r.score)
             for r in rel(d)._.entlink_relations] for d in docs]


@pytest.mark.parametrize("aggregate", ["mention", "kb_id"])
def test_at_least_one_keeps_each_documents_best_relation(tmp_path, aggregate):
    if aggregate == "mention":
        nlp, rel = make_nlp(tmp_path, type_constraints=True)
        egs = examples(nlp)
    else:
        nlp, rel = make_nlp(tmp_path, relation_types="cid", aggregate="kb_id", type_constraints=True)
        egs = cid_examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    train(nlp, egs, steps=3)
    if aggregate == "kb_id":
        rel.fit_aggregator(egs)
    lonely = Doc(nlp.vocab, words="acme corp alone .".split())
    lonely.ents = [Span(lonely, 0, 2, "Org" if aggregate == "mention" else "Chemical", kb_id="C1")]
    docs = rel._fitting_docs(egs) + [lonely]
    rel.cfg["threshold"] = 0.0
    everything = _relations(rel, [d.copy() for d in docs])
    assert all(everything[:-1]) and everything[-1] == []
    rel.cfg["threshold"] = 1.0  # no probability reaches it
    assert _relations(rel, [d.copy() for d in docs]) == [[]] * len(docs)
    rel.cfg["at_least_one"] = True
    kept = _relations(rel, [d.copy() for d in docs])
    # the one relation kept is the document's most probable one, type constraints respected
    assert kept == [[max(rels, key=lambda r: r[3])] for rels in everything[:-1]] + [[]]
    rel.cfg["threshold"] = 0.0  # above the threshold: unchanged
    assert _relations(rel, [d.copy() for d in docs]) == everything
    nlp.to_disk(tmp_path / "pipe")
    assert spacy.load(tmp_path / "pipe").get_pipe("entlink_relations").cfg["at_least_one"] is True


def test_calibrate_relations_decides_at_least_one(tmp_path):
    import srsly

    from spacy_entlink.cli import main

    saved_cid_pipeline(tmp_path)
    base = [str(tmp_path / "pipe"), str(tmp_path / "cal"), "--dev", str(tmp_path / "held.spacy"), "--metrics", str(tmp_path / "m.json")]
    for choice, expected in (("on", True), ("off", False)):
        main(["calibrate-relations", *base, "--at-least-one", choice])
        assert srsly.read_json(tmp_path / "m.json")["at_least_one"] is expected
        assert spacy.load(tmp_path / "cal").get_pipe("entlink_relations").cfg["at_least_one"] is expected
    main(["calibrate-relations", *base])  # auto: kept when it scores better out of fold on --dev
    report = srsly.read_json(tmp_path / "m.json")
    cv = report["at_least_one_cv"]
    assert report["at_least_one"] is (cv["with"] > cv["without"])
    assert spacy.load(tmp_path / "cal").get_pipe("entlink_relations").cfg["at_least_one"] is report["at_least_one"]
    with pytest.raises(SystemExit):
        main(["calibrate-relations", *base, "--at-least-one", "sometimes"])


def test_cross_validating_the_aggregator_penalty_reads_the_documents_once(tmp_path):
    saved_cid_pipeline(tmp_path)
    nlp = spacy.load(tmp_path / "pipe")
    rel = nlp.get_pipe("entlink_relations")
    egs = list(Corpus(str(tmp_path / "held.spacy"))(nlp))
    with pytest.raises(ConfigError, match="aggregator"):
        rel.cross_validate_l2(egs)
    rel.fit_aggregator(egs)
    fitted = dict(rel.cfg["aggregator"])
    passes = []
    every_pair = rel._every_pair
    rel._every_pair = lambda examples: passes.append(1) or every_pair(examples)
    table = rel.cross_validate_l2(egs, (0.1, 10.0), splits=1)
    assert len(passes) == 1 and sorted(table) == [0.1, 10.0]
    assert all(0.0 <= f <= 1.0 for pair in table.values() for f in pair)
    assert table[10.0] == pytest.approx(rel.cross_validate_at_least_one(egs, l2=10.0))  # the same folds (seed 0)
    assert rel.cfg["aggregator"] == fitted and rel.cfg["at_least_one"] is False  # cfg left as it was
    with pytest.raises(ConfigError):
        rel.cross_validate_l2(egs, ())


def test_cross_validating_at_least_one(tmp_path):
    nlp, rel = make_nlp(tmp_path, type_constraints=True)
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    train(nlp, egs, steps=3)
    rel.cfg["threshold"] = 1.0  # nothing reaches it: without the rule nothing is found
    without, with_rule = rel.cross_validate_at_least_one(egs, folds=2, refit_thresholds=False)
    assert without == 0.0 and rel.cfg["threshold"] == 1.0 and rel.cfg["at_least_one"] is False
    rel.cfg["at_least_one"] = True
    best_only = score_relations([Example(rel(d), eg.reference) for d, eg in zip(rel._fitting_docs(egs), egs)])
    assert with_rule == pytest.approx(best_only["rel_micro_f"])
    rel.cfg["at_least_one"] = False
    rel.cfg["thresholds"] = {"Work_For": 0.3}
    scores = rel.cross_validate_at_least_one(egs, folds=3)  # thresholds refitted per fold, cfg restored
    assert all(0.0 <= f <= 1.0 for f in scores) and rel.cfg["thresholds"] == {"Work_For": 0.3}
    assert rel.cross_validate_at_least_one(egs, folds=3) == scores
    with pytest.raises(ConfigError):
        rel.cross_validate_at_least_one(egs[:1])


def test_calibrate_relations_fits_with_gold_or_own_entities_and_keeps_the_shipped_setting(tmp_path):
    import srsly

    from spacy_entlink.cli import main
    from spacy_entlink.scoring import score_relations

    nlp, rel = make_nlp(tmp_path, entities="predict")
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    torch.manual_seed(0)
    train(nlp, egs, steps=5)
    nlp.to_disk(tmp_path / "pipe")
    DocBin(docs=[eg.reference for eg in egs], store_user_data=True).to_disk(tmp_path / "held.spacy")
    # the F1 the reader gets relating the gold entities, and with its own spans, before any fitting
    expected = {}
    for mode, key in (("doc", "gold"), ("predict", "own")):
        rel.cfg["entities"] = mode
        docs = [rel(d) for d in rel._fitting_docs(egs)]
        expected[key] = score_relations([Example(d, eg.reference) for d, eg in zip(docs, egs)])["rel_micro_f"]
    for choice, key in (("gold", "gold"), ("own", "own"), ("auto", "own")):
        out = tmp_path / f"cal_{choice}"
        main(["calibrate-relations", str(tmp_path / "pipe"), str(out), "--dev", str(tmp_path / "held.spacy"),
              "--entities", choice, "--at-least-one", "off", "--metrics", str(tmp_path / f"{choice}.json")])
        report = srsly.read_json(tmp_path / f"{choice}.json")
        assert report["entities"] == key and report["f_before"] == pytest.approx(expected[key])
        loaded = spacy.load(out).get_pipe("entlink_relations")
        assert loaded.cfg["entities"] == "predict" and set(loaded.cfg["thresholds"]) == set(loaded.labels)
    with pytest.raises(SystemExit):
        main(["calibrate-relations", str(tmp_path / "pipe"), str(tmp_path / "x"), "--dev", str(tmp_path / "held.spacy"),
              "--entities", "theirs"])
    saved_cid_pipeline(tmp_path / "cid")  # relates doc.ents only: no span classifier to fit with
    with pytest.raises(SystemExit):
        main(["calibrate-relations", str(tmp_path / "cid" / "pipe"), str(tmp_path / "x"), "--dev",
              str(tmp_path / "cid" / "held.spacy"), "--entities", "own"])


UPSTREAM_ENTS = {"acme": ("Chemical", "C1"), "ibm": ("Chemical", "C2"), "paris": ("Disease", "D1")}


@spacy.Language.component("test_upstream_ents")
def upstream_ents(doc: Doc) -> Doc:
    """A stand-in for NER + linker: a few words as entities with ids."""
    doc.ents = [Span(doc, t.i, t.i + 1, UPSTREAM_ENTS[t.text][0], kb_id=UPSTREAM_ENTS[t.text][1])
                for t in doc if t.text in UPSTREAM_ENTS]
    return doc


def test_calibrate_relations_fits_on_the_entities_the_pipeline_finds(tmp_path):
    import srsly

    from spacy_entlink.cli import main

    saved_cid_pipeline(tmp_path)
    with pytest.raises(SystemExit):  # nothing runs before the relations to find entities
        main(["calibrate-relations", str(tmp_path / "pipe"), str(tmp_path / "x"), "--dev", str(tmp_path / "held.spacy"),
              "--entities", "pipeline"])
    nlp = spacy.load(tmp_path / "pipe")
    nlp.add_pipe("test_upstream_ents", first=True)
    nlp.to_disk(tmp_path / "chain")
    base = [str(tmp_path / "chain"), str(tmp_path / "cal"), "--dev", str(tmp_path / "held.spacy"), "--l2", "1",
            "--at-least-one", "off"]  # 2 documents: too few to cross-validate
    main(["calibrate-relations", *base, "--metrics", str(tmp_path / "gold.json")])
    main(["calibrate-relations", *base, "--entities", "pipeline", "--metrics", str(tmp_path / "m.json")])
    gold, report = srsly.read_json(tmp_path / "gold.json"), srsly.read_json(tmp_path / "m.json")
    # gold entities give 2 x 2 id pairs per document; the upstream stand-in finds C1, C2 x D1 and C2 x D1
    assert gold["entities"] == "gold" and gold["aggregator"]["fitted_on"] == 8
    assert report["entities"] == "pipeline" and report["aggregator"]["fitted_on"] == 3
    assert report["aggregator"]["positives"] == 2
    cal = spacy.load(tmp_path / "cal")
    assert cal.pipe_names == ["test_upstream_ents", "entlink_relations"]
    assert cal.get_pipe("entlink_relations").cfg["entities"] == "doc"  # the shipped setting is kept
    assert cal.get_pipe("entlink_relations").aggregator.fitted_on == 3
