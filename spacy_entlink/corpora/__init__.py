"""Corpus readers: PubTator, CoNLL04, AIDA CoNLL-YAGO, CoNLL-2003 and Prodigy files to gold `Doc`s.

Every reader is a generator `read_<format>(path, nlp, ..., stats=None) -> Iterator[Doc]`
yielding gold Docs with `doc.ents` (label and `kb_id_`), every gold mention in
`doc.spans["entlink_gold"]`, relations in `doc._.entlink_relations` and the corpus's
document id in `doc.user_data["entlink_doc_id"]`. Malformed input raises `DataError`
naming the file and line. `convert` writes them to a `.spacy` DocBin; `registry` holds
the spaCy readers for training configs.
"""

from ._util import CANDIDATE_COUNTS_KEY, DOC_ID_KEY, GOLD_SPANS_KEY, get_doc_id
from .aida import read_aida
from .conll04 import read_conll04
from .conll2003 import read_conll2003
from .convert import FORMATS, convert, read_docs
from .prodigy import read_prodigy
from .pubtator import normalize_ids, read_pubtator

__all__ = [
    "CANDIDATE_COUNTS_KEY",
    "DOC_ID_KEY",
    "GOLD_SPANS_KEY",
    "FORMATS",
    "convert",
    "get_doc_id",
    "normalize_ids",
    "read_aida",
    "read_conll04",
    "read_conll2003",
    "read_docs",
    "read_prodigy",
    "read_pubtator",
]
