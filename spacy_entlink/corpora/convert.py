"""Convert a corpus file into a spaCy `.spacy` DocBin of gold Docs (user data kept).

`python -m spacy_entlink convert INPUT OUTPUT --format F [--types T ...] [--candidates FILE]`
calls `convert(INPUT, OUTPUT, F, types=[T, ...], candidates=FILE)`.
"""

from itertools import islice
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from tqdm import tqdm

from ..errors import ConfigError, check_choice
from ..files import atomic_file, prepare_output
from ._util import PathLike, Stats
from .aida import read_aida
from .conll04 import read_conll04
from .conll2003 import read_conll2003
from .prodigy import read_prodigy
from .pubtator import read_pubtator

__all__ = ["FORMATS", "convert", "read_docs"]

FORMATS = ("pubtator", "conll04", "aida", "conll2003", "prodigy")
STAT_KEYS = ("docs", "entities", "relations", "misaligned")

_OPTIONS = {
    "pubtator": {"types", "id_prefix"},
    "conll04": {"types"},
    "aida": {"candidates", "label"},
    "conll2003": set(),
    "prodigy": set(),
}


def read_docs(
    input_path: PathLike,
    format: str,
    nlp: Language,
    *,
    types: Optional[Sequence[str]] = None,
    candidates: Optional[PathLike] = None,
    id_prefix: Optional[str] = None,
    label: Optional[str] = None,
    stats: Optional[Stats] = None,
) -> Iterator[Doc]:
    """Gold Docs of `input_path` read as `format`, with the options that format accepts.

    types: pubtator: mention types to keep; conll04: a types file (one path) or relation
        type names to check against.
    candidates: aida: candidates JSONL.
    id_prefix: pubtator: prefix of bare ids ("MESH:" when None).
    label: aida: entity label ("ENT" when None).
    An option given for a format that does not take it is a ConfigError.
    """
    check_choice("format", format, FORMATS)
    given = {name for name, value in (("types", types), ("candidates", candidates), ("id_prefix", id_prefix),
                                      ("label", label)) if value is not None}
    unsupported = given - _OPTIONS[format]
    if unsupported:
        raise ConfigError(f"format {format!r} does not take the option(s) {', '.join(sorted(unsupported))}; "
                          f"it takes: {', '.join(sorted(_OPTIONS[format])) or 'none'}")
    if format == "pubtator":
        return read_pubtator(input_path, nlp, types=types, id_prefix="MESH:" if id_prefix is None else id_prefix,
                             stats=stats)
    if format == "conll04":
        conll04_types: Union[PathLike, Sequence[str], None] = types
        if types is not None and len(types) == 1 and (types[0].endswith(".json") or Path(types[0]).is_file()):
            conll04_types = Path(types[0])
        return read_conll04(input_path, nlp, types=conll04_types, stats=stats)
    if format == "aida":
        return read_aida(input_path, nlp, candidates=candidates, label="ENT" if label is None else label,
                         stats=stats)
    if format == "conll2003":
        return read_conll2003(input_path, nlp, stats=stats)
    return read_prodigy(input_path, nlp, stats=stats)


def convert(
    input_path: PathLike,
    output_path: PathLike,
    format: str,
    *,
    nlp_lang: str = "en",
    nlp: Optional[Language] = None,
    types: Optional[Sequence[str]] = None,
    candidates: Optional[PathLike] = None,
    id_prefix: Optional[str] = None,
    label: Optional[str] = None,
    limit: int = 0,
    progress: bool = True,
) -> Dict[str, int]:
    """Write the gold Docs of `input_path` (read as `format`) to the DocBin `output_path`.

    nlp_lang: language of the blank pipeline whose tokenizer splits raw text.
    nlp: a pipeline whose tokenizer (and vocab) to use instead of `spacy.blank(nlp_lang)`.
    types, candidates, id_prefix, label: format options, see `read_docs`.
    limit: stop after this many docs (0: all).
    progress: show a progress bar on stderr.
    Returns counts: docs, entities (in doc.ents), relations, misaligned, plus the
    format's own (gold_spans, overlapping, nil, skipped, ...).
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.is_dir():
        raise ConfigError(f"output {output_path} is a directory; give a file name such as {output_path / 'dev.spacy'}")
    prepare_output(output_path)  # fail now, not after reading the whole corpus
    if nlp is None:
        nlp = spacy.blank(nlp_lang)
    stats: Dict[str, int] = {key: 0 for key in STAT_KEYS}
    docs = read_docs(input_path, format, nlp, types=types, candidates=candidates, id_prefix=id_prefix, label=label,
                     stats=stats)
    doc_bin = DocBin(store_user_data=True)
    with tqdm(desc=f"Converting {input_path.name}", unit=" docs", disable=not progress) as bar:
        for doc in islice(docs, limit) if limit > 0 else docs:
            doc_bin.add(doc)
            bar.update(1)
    with atomic_file(output_path) as tmp:
        tmp.write_bytes(doc_bin.to_bytes())
    return stats
