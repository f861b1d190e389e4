"""spaCy readers (`[corpora]` blocks of a training config) for the corpus formats.

Registered through the `spacy_readers` entry points of pyproject.toml:

    [corpora.dev]
    @readers = "spacy_entlink.PubTatorCorpus.v1"
    path = ${paths.dev}
    types = ["Disease"]

Each function returns a callable `corpus(nlp) -> Iterator[Example]`, like spaCy's
`spacy.Corpus.v1`, that reads the file anew on every call. The reference doc of each
Example is the reader's gold Doc; the predicted doc is `nlp.make_doc(text)` for formats
with raw text (PubTator, Prodigy) and a Doc of the same words for formats with given
tokens (CoNLL04, CoNLL-2003, AIDA). `limit` > 0 stops after that many Examples.
"""

from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..errors import ConfigError
from .aida import read_aida
from .conll04 import read_conll04
from .conll2003 import read_conll2003
from .prodigy import read_prodigy
from .pubtator import read_pubtator

__all__ = ["GoldCorpus", "pubtator_corpus", "conll04_corpus", "aida_corpus", "conll2003_corpus", "prodigy_corpus"]

Reader = Callable[..., Iterator[Doc]]


class GoldCorpus:
    """`corpus(nlp)` yields one `Example` per gold Doc of `path` read with `read`."""

    def __init__(self, read: Reader, path: Optional[Union[str, Path]], *, raw_text: bool, limit: int = 0,
                 name: str = "corpus") -> None:
        self.read = read
        self.path = Path(path) if path is not None else None
        self.raw_text = raw_text
        self.limit = limit
        self.name = name

    def __call__(self, nlp: Language) -> Iterator[Example]:
        if self.path is None:
            raise ConfigError(f"{self.name}: the corpus path is None; set it in the config "
                              "(e.g. paths.train) or on the command line")
        docs = self.read(self.path, nlp)
        if self.limit > 0:
            docs = islice(docs, self.limit)
        for gold in docs:
            if self.raw_text:
                predicted = nlp.make_doc(gold.text)
            else:
                predicted = Doc(nlp.vocab, words=[t.text for t in gold], spaces=[bool(t.whitespace_) for t in gold])
            yield Example(predicted, gold)


def _reader(read: Reader, **options: Any) -> Reader:
    return partial(read, **options) if options else read


def pubtator_corpus(
    path: Optional[Path],
    *,
    types: Optional[List[str]] = None,
    id_prefix: str = "MESH:",
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Examples of a PubTator file (see `read_pubtator`): `types` keeps only those mention types."""
    return GoldCorpus(_reader(read_pubtator, types=types, id_prefix=id_prefix), path, raw_text=True,
                      limit=limit, name="spacy_entlink.PubTatorCorpus.v1")


def conll04_corpus(
    path: Optional[Path],
    *,
    types: Optional[Union[Path, List[str]]] = None,
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Examples of a CoNLL04 JSON file (see `read_conll04`): `types` is a types file or relation names."""
    return GoldCorpus(_reader(read_conll04, types=types), path, raw_text=False, limit=limit,
                      name="spacy_entlink.Conll04Corpus.v1")


def aida_corpus(
    path: Optional[Path],
    *,
    candidates: Optional[Path] = None,
    label: str = "ENT",
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Examples of an AIDA-YAGO2 TSV file (see `read_aida`), with candidates from `candidates`."""
    return GoldCorpus(_reader(read_aida, candidates=candidates, label=label), path, raw_text=False, limit=limit,
                      name="spacy_entlink.AidaCorpus.v1")


def conll2003_corpus(
    path: Optional[Path],
    *,
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Examples of a CoNLL-2003 file (see `read_conll2003`)."""
    return GoldCorpus(read_conll2003, path, raw_text=False, limit=limit, name="spacy_entlink.Conll2003Corpus.v1")


def prodigy_corpus(
    path: Optional[Path],
    *,
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Examples of a Prodigy JSONL file (see `read_prodigy`)."""
    return GoldCorpus(read_prodigy, path, raw_text=True, limit=limit, name="spacy_entlink.ProdigyCorpus.v1")


def with_gold_mentions(example: Example, *, kb_ids: bool = False) -> Example:
    """A copy of `example` whose predicted doc has the reference's entity spans (with their kb
    ids only if `kb_ids`), plus the reference's span extensions (e.g. AIDA candidates): the
    input of a linker evaluated on gold mentions, or of relation extraction on gold entities."""
    ref = example.reference
    pred = Doc(ref.vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref])
    pred.ents = [Span(pred, e.start, e.end, label=e.label, kb_id=e.kb_id if kb_ids else 0) for e in ref.ents]
    pred.user_data.update({k: v for k, v in ref.user_data.items() if isinstance(k, tuple) and k[:1] == ("._.",)})
    return Example(pred, ref)


def gold_mentions_corpus(
    path: Optional[Path],
    *,
    limit: int = 0,
    kb_ids: bool = False,
) -> Callable[[Language], Iterator[Example]]:
    """`spacy.Corpus.v1` over a .spacy file, with the gold entity spans (not their ids, unless
    `kb_ids`) already on the predicted docs, so that `spacy train`/`spacy evaluate` measure
    linking on gold mentions (or relations on gold entities) when no NER runs before."""
    from spacy.training import Corpus

    def corpus(nlp: Language) -> Iterator[Example]:
        if path is None:
            raise ConfigError("spacy_entlink.GoldMentionsCorpus.v1: the corpus path is None; set it in the config")
        for eg in Corpus(path, limit=limit)(nlp):
            yield with_gold_mentions(eg, kb_ids=kb_ids)

    return corpus
