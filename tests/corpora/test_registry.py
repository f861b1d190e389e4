"""spaCy readers: corpus(nlp) yields Examples; the entry points and config resolution work."""

import json
import subprocess
import sys

import pytest
import spacy
from spacy.training import Example
from thinc.api import Config

from spacy_entlink.corpora import registry as corpora_registry
from spacy_entlink.corpora.registry import (aida_corpus, conll04_corpus, conll2003_corpus, prodigy_corpus,
                                            pubtator_corpus)
from spacy_entlink.errors import ConfigError

from .test_aida import CANDIDATES, TSV
from .test_conll04 import SECOND, TYPES, sentence
from .test_conll2003 import DOC_A, DOC_B, DOCSTART
from .test_prodigy import ACCEPTED, NO_ANSWER, REJECTED, jsonl
from .test_pubtator import MENTIONS, document

READERS = {
    "spacy_entlink.PubTatorCorpus.v1": pubtator_corpus,
    "spacy_entlink.Conll04Corpus.v1": conll04_corpus,
    "spacy_entlink.AidaCorpus.v1": aida_corpus,
    "spacy_entlink.Conll2003Corpus.v1": conll2003_corpus,
    "spacy_entlink.ProdigyCorpus.v1": prodigy_corpus,
}


@pytest.fixture
def files(write):
    return {
        "pubtator": write("p.txt", document(MENTIONS)),
        "conll04": write("c.json", json.dumps([sentence(), SECOND])),
        "aida": write("a.tsv", TSV),
        "candidates": write("a.jsonl", "\n".join(CANDIDATES) + "\n"),
        "conll2003": write("n.conll", DOC_A + "\n" + DOCSTART + "\n\n" + DOC_B),
        "prodigy": write("t.jsonl", jsonl(ACCEPTED, REJECTED, NO_ANSWER)),
        "types": write("types.json", json.dumps(TYPES)),
    }


def _check(examples, n):
    assert len(examples) == n
    for eg in examples:
        assert isinstance(eg, Example)
        assert [t.text for t in eg.predicted] == [t.text for t in eg.reference]
        assert len(eg.predicted.ents) == 0
        assert eg.reference.ents
    return examples


def test_each_corpus_yields_examples(files, nlp):
    _check(list(pubtator_corpus(files["pubtator"], types=["Disease"])(nlp)), 1)
    _check(list(conll04_corpus(files["conll04"], types=files["types"])(nlp)), 2)
    egs = _check(list(aida_corpus(files["aida"], candidates=files["candidates"])(nlp)), 2)
    assert egs[0].reference.ents[0]._.entlink_candidates == ["Velmont_Republic", "Velmont"]
    _check(list(conll2003_corpus(files["conll2003"])(nlp)), 2)
    _check(list(prodigy_corpus(files["prodigy"])(nlp)), 2)


def test_token_formats_keep_spaces_and_raw_formats_use_tokenizer(files, nlp):
    eg = next(iter(conll04_corpus(files["conll04"])(nlp)))
    assert eg.predicted.text == eg.reference.text
    eg = next(iter(pubtator_corpus(files["pubtator"])(nlp)))
    assert eg.predicted.text == eg.reference.text


def test_limit_and_rereading(files, nlp):
    corpus = conll04_corpus(files["conll04"], limit=1)
    assert len(list(corpus(nlp))) == 1
    assert len(list(corpus(nlp))) == 1  # a new pass reads the file again


def test_missing_path_is_a_config_error(nlp):
    with pytest.raises(ConfigError, match="path"):
        list(prodigy_corpus(None)(nlp))


def test_examples_train_a_ner_component(files):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    examples = list(pubtator_corpus(files["pubtator"])(nlp)) + list(aida_corpus(files["aida"])(nlp))
    nlp.initialize(lambda: examples)
    losses = nlp.update(examples)
    assert "ner" in losses


def test_entry_points_register_the_readers():
    for name, func in READERS.items():
        try:
            found = spacy.registry.readers.get(name)
        except Exception as e:  # pragma: no cover - only without `pip install -e .`
            pytest.skip(f"entry points not installed ({e}); run pip install -e . --no-deps")
        assert found is func


def test_config_resolves_readers(files, nlp):
    cfg = Config().from_str(f"""
[corpora]

[corpora.bc5cdr]
@readers = "spacy_entlink.PubTatorCorpus.v1"
path = "{files['pubtator']}"
types = ["Disease"]
limit = 1

[corpora.conll04]
@readers = "spacy_entlink.Conll04Corpus.v1"
path = "{files['conll04']}"
types = "{files['types']}"

[corpora.conll04_names]
@readers = "spacy_entlink.Conll04Corpus.v1"
path = "{files['conll04']}"
types = ["Work_For", "OrgBased_In"]

[corpora.aida]
@readers = "spacy_entlink.AidaCorpus.v1"
path = "{files['aida']}"
candidates = "{files['candidates']}"

[corpora.conll2003]
@readers = "spacy_entlink.Conll2003Corpus.v1"
path = "{files['conll2003']}"

[corpora.prodigy]
@readers = "spacy_entlink.ProdigyCorpus.v1"
path = "{files['prodigy']}"
""")
    try:
        resolved = spacy.registry.resolve(cfg)["corpora"]
    except Exception as e:  # pragma: no cover - only without `pip install -e .`
        if "spacy_entlink" in str(e) and "registry" in str(e).lower():
            pytest.skip(f"entry points not installed: {e}")
        raise
    counts = {name: len(list(corpus(nlp))) for name, corpus in resolved.items()}
    assert counts == {"bc5cdr": 1, "conll04": 2, "conll04_names": 2, "aida": 2, "conll2003": 2, "prodigy": 2}


def test_registry_import_is_light():
    code = ("import sys, spacy_entlink.corpora.registry, spacy_entlink.corpora.convert; "
            "print(sorted(m for m in ('transformers', 'spacy_transformers', 'rapidfuzz', 'marisa_trie') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert corpora_registry.__name__ == "spacy_entlink.corpora.registry"
