"""Fuzzing the corpus readers (issue 17): valid sample files of every `convert` format,
mutated by hypothesis (separators, quotes, line breaks, controls, surrogates, bad bytes,
duplicated and dropped lines). Whatever the input, a reader either refuses it with an
`EntlinkError` naming the file, or gives Docs whose gold spans lie inside the text, cover
more than whitespace and match the text; reading twice gives the same Docs, and a DocBin
round trip keeps them identical. Settings: tests/fuzz.py (`ENTLINK_FUZZ_EXAMPLES`)."""

import json

import pytest
import spacy
from hypothesis import given
from spacy.tokens import DocBin

from spacy_entlink.corpora import GOLD_SPANS_KEY
from spacy_entlink.corpora.convert import read_docs
from spacy_entlink.errors import EntlinkError
from spacy_entlink.io import doc_to_json

from ..fuzz import fuzz_settings, mutated_bytes

NLP = spacy.blank("en")

PUBTATOR = (
    "1001|t|Zorbamide-induced gut grumble.\n"
    "1001|a|Rats given zorbamide (ZB) developed gut grumble and blue toe disease.\n"
    "1001\t0\t9\tZorbamide\tChemical\tD900001\n"
    "1001\t18\t29\tgut grumble\tDisease\tD900002\n"
    "1001\t42\t51\tzorbamide\tChemical\tD900001\n"
    "1001\t83\t99\tblue toe disease\tDisease\tD900003|D900004\n"
    "1001\tCID\tD900001\tD900002\n"
    "\n"
    "1002|t|Blue toes.\n"
    "1002|a|No abstract to speak of.\n"
    "1002\t0\t9\tBlue toes\tDisease\t-1\n"
)
AIDA = (
    "-DOCSTART- (1 EU)\n"
    "EU\tB\tEU\tEuropean_Union\n"
    "rejects\n"
    "German\tB\tGerman\tGermany\n"
    "call\n"
    "\n"
    "Peter\tB\tPeter Blackburn\t--NME--\n"
    "Blackburn\tI\tPeter Blackburn\t--NME--\n"
    "\n"
    "-DOCSTART- (2 SOCCER)\n"
    "Japan\tB\tJapan\tJapan_national_football_team\n"
    "wins\n"
)
PRODIGY = "\n".join(json.dumps(t) for t in [
    {"text": "Zorbamide causes gut grumble.", "spans": [{"start": 0, "end": 9, "label": "Chemical", "kb_id": "D1"},
                                                        {"start": 17, "end": 28, "label": "Disease"}],
     "relations": [{"label": "CID", "head_span": {"start": 0, "end": 9, "label": "Chemical"},
                    "child_span": {"start": 17, "end": 28, "label": "Disease"}}], "answer": "accept"},
    {"text": "Nothing here.", "spans": [], "answer": "reject"},
    {"text": "Blue toe", "spans": [{"start": 0, "end": 8, "label": "Disease"}], "options": [{"id": "D3"}],
     "accept": ["D3"], "meta": {"id": "x"}},
]) + "\n"
CONLL04 = json.dumps([
    {"tokens": ["John", "Smith", "works", "for", "Acme", "in", "Paris", "."],
     "tags": ["B-Peop", "L-Peop", "O", "O", "U-Org", "O", "U-Loc", "O"],
     "relations": [{"head": 0, "tail": 1, "type": "Work_For"}], "orig_id": 11},
    {"tokens": ["Paris", "is", "nice"], "tags": ["U-Loc", "O", "O"], "relations": [], "orig_id": 12},
], indent=1)
CONLL2003 = (
    "-DOCSTART- -X- O O\n\n"
    "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\ncall NN I-NP O\n\n"
    "Peter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n\n"
    "-DOCSTART- -X- O O\n\nJapan NNP I-NP I-LOC\n"
)
SAMPLES = {"pubtator": PUBTATOR, "aida": AIDA, "prodigy": PRODIGY, "conll04": CONLL04, "conll2003": CONLL2003}
SUFFIX = {"pubtator": ".txt", "aida": ".tsv", "prodigy": ".jsonl", "conll04": ".json", "conll2003": ".conll"}


def _read(path, fmt):
    try:
        return list(read_docs(path, fmt, NLP))
    except EntlinkError as err:
        assert str(err).startswith(str(path)), f"the error does not name the file: {err}"
        return None


def _signature(doc):
    """Everything a reader sets, in comparable form (msgpack gives lists for tuples)."""
    gold = doc.spans[GOLD_SPANS_KEY] if GOLD_SPANS_KEY in doc.spans else []
    return (doc_to_json(doc), [(s.start_char, s.end_char, s.label_, s.kb_id_) for s in gold],
            [t.is_sent_start for t in doc], json.dumps({str(k): v for k, v in doc.user_data.items()}, sort_keys=True, default=repr))


def _check_doc(doc):
    text = doc.text
    text.encode("utf8")  # no lone surrogate reaches a Doc
    spans = list(doc.ents) + (list(doc.spans[GOLD_SPANS_KEY]) if GOLD_SPANS_KEY in doc.spans else [])
    for span in spans:
        assert 0 <= span.start_char < span.end_char <= len(text)
        assert span.text == text[span.start_char:span.end_char]
        assert span.text.strip(), f"a gold span over whitespace: {span.text!r}"
    for rel in doc._.entlink_relations:
        for arg in (rel.head, rel.tail):
            assert isinstance(arg, str) or (arg.doc is doc and arg.text.strip())


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_the_samples_are_valid(tmp_path, fmt):
    path = tmp_path / ("sample" + SUFFIX[fmt])
    path.write_text(SAMPLES[fmt], encoding="utf8")
    docs = _read(path, fmt)
    assert docs and sum(len(d.ents) for d in docs) >= 2


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_mutated_corpus_files(tmp_path_factory, fmt):
    folder = tmp_path_factory.mktemp(f"fuzz_{fmt}")

    @fuzz_settings(40)
    @given(data=mutated_bytes(SAMPLES[fmt]))
    def run(data):
        path = folder / ("input" + SUFFIX[fmt])
        path.write_bytes(data)
        docs = _read(path, fmt)
        if docs is None:
            return
        for doc in docs:
            _check_doc(doc)
        again = _read(path, fmt)
        assert again is not None and [_signature(d) for d in again] == [_signature(d) for d in docs]
        restored = list(DocBin(docs=docs, store_user_data=True).from_bytes(
            DocBin(docs=docs, store_user_data=True).to_bytes()).get_docs(NLP.vocab))
        assert [_signature(d) for d in restored] == [_signature(d) for d in docs]

    run()
