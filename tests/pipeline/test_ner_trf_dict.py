"""The shipped `configs/ner_trf_dict.cfg` with a tiny randomly initialised BERT (no hub)."""

from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.api import fix_random_seed

CONFIGS = Path(__file__).parents[2] / "configs"
ASSETS = Path(__file__).parents[2] / "assets"

TRAIN = [
    ("Patients with hypertension received doxorubicin.", [(14, 26, "Disease"), (36, 47, "Chemical")]),
    ("Doxorubicin caused a heart attack in two patients.", [(0, 11, "Chemical"), (21, 33, "Disease")]),
    ("Methotrexate was given for acute lymphoblastic leukaemia.", [(0, 12, "Chemical"), (27, 56, "Disease")]),
    ("No adverse events were seen with cisplatin.", [(33, 42, "Chemical")]),
    ("Type 2 diabetes and hypertension often occur together.", [(0, 15, "Disease"), (20, 32, "Disease")]),
    ("Alzheimer's disease was not affected by aspirin.", [(0, 19, "Disease"), (40, 47, "Chemical")]),
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)  # its weights must not depend on which tests ran before
    folder = tmp_path_factory.mktemp("tiny_bert")
    words = sorted({w.lower().strip(".,'") for text, _ in TRAIN for w in text.split()} | {"'", ".", ",", "s"})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w in words if w]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=160)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trained(tiny_bert, demo_kb, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ner_trf_dict")
    blank = spacy.blank("en")
    docbin = DocBin()
    examples = []
    for text, ents in TRAIN:
        eg = Example.from_dict(blank.make_doc(text), {"entities": ents})
        examples.append(eg)
        docbin.add(eg.reference)
    docbin.to_disk(tmp / "train.spacy")
    config = spacy.util.load_config(CONFIGS / "ner_trf_dict.cfg", overrides={
        "paths.model": str(tiny_bert), "paths.kb": str(demo_kb.path),
        "paths.train": str(tmp / "train.spacy"), "paths.dev": str(tmp / "train.spacy"),
        "components.transformer.model.get_spans.window": 16, "components.transformer.model.get_spans.stride": 12,
    }, interpolate=True)
    fix_random_seed(0)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example(nlp.make_doc(eg.reference.text), eg.reference) for eg in examples]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    losses = []
    for _ in range(30):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step, annotates=["entlink_dictionary"])
        losses.append(step["ner"])
    return nlp, losses, tmp


def test_loss_decreases_and_predictions_are_written(trained):
    nlp, losses, _ = trained
    assert nlp.pipe_names == ["transformer", "entlink_dictionary", "ner"]
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses
    docs = list(nlp.pipe([text for text, _ in TRAIN] + ["", "a document with nothing of interest"]))
    assert len(docs) == len(TRAIN) + 2
    for doc in docs:
        assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)  # every token got a prediction
        assert "entlink_candidates" in doc.spans
    found = {(e.text, e.label_) for doc in docs for e in doc.ents}
    assert found & {(TRAIN[0][0][s:e], label) for s, e, label in TRAIN[0][1]}


def test_dictionary_features_reach_the_ner_model(trained):
    nlp, _, _ = trained
    with_dict = nlp(TRAIN[1][0])
    without = nlp.make_doc(TRAIN[1][0])
    for name, proc in nlp.pipeline:
        if name == "entlink_dictionary":
            without.spans["entlink_candidates"] = []  # the same doc with no dictionary evidence
        else:
            without = proc(without)
    t2v = next(node for node in nlp.get_pipe("ner").model.walk() if node.name == "entlink_dict_tok2vec")
    a, b = t2v.predict([with_dict])[0], t2v.predict([without])[0]
    width = t2v.attrs["width"]
    assert (a[:, :-width] == b[:, :-width]).all()  # transformer part unchanged
    assert not (a[:, -width:] == b[:, -width:]).all()  # dictionary part differs


def test_to_disk_from_disk_gives_identical_annotations(trained):
    nlp, _, tmp = trained
    nlp.to_disk(tmp / "pipeline")
    loaded = spacy.load(tmp / "pipeline")
    texts = [text for text, _ in TRAIN] + ["", "Hypertension and " * 200]
    for a, b in zip(nlp.pipe(texts), loaded.pipe(texts)):
        assert [(e.start, e.end, e.label_, e.kb_id_) for e in a.ents] == [(e.start, e.end, e.label_, e.kb_id_) for e in b.ents]
        assert [(s.start, s.end, s.label_) for s in a.spans["entlink_candidates"]] == \
            [(s.start, s.end, s.label_) for s in b.spans["entlink_candidates"]]


def test_a_bigger_kb_can_be_swapped_in_without_retraining(trained, tmp_path):
    from spacy_entlink.kb import KnowledgeBase, read_source

    nlp, _, _ = trained
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"id": "X:1", "name": "cisplatin", "type": "Chemical"}\n')
    bigger = KnowledgeBase.build(list(read_source(ASSETS / "demo_kb.jsonl")) + list(read_source(extra)), tmp_path / "kb")
    dictionary = nlp.get_pipe("entlink_dictionary")
    before = dictionary.kb
    try:
        dictionary.set_kb(bigger)
        doc = nlp("Cisplatin was given.")
        assert [(s.text, s.label_) for s in doc.spans["entlink_candidates"]] == [("Cisplatin", "Chemical")]
    finally:
        dictionary.set_kb(before)
