"""Readers that turn KB source files into `EntityRecord`s, naming file and line on bad rows.

Formats:
- `medic`: CTD MEDIC `CTD_diseases.tsv[.gz]` (9 tab-separated fields; `#` comment lines;
  `ParentIDs` become the entity's parents).
- `jsonl`: one object per line with `id`, `name` and optional `aliases` (list or
  `|`-separated string), `description`, `type`, `prior`, `alt_ids`, `parents` (ids of
  broader entities, list or `|`-separated).
- `csv`: a header row with at least `id,name`; optional `aliases` (`|`-separated),
  `description`, `type`, `prior`, `alt_ids`, `parents` (`|`-separated).
- `popularity`: `title<TAB>score` lines (AIDA `popularity.tsv`); the id is the title, the
  name the title with `_` as spaces, and a title with a parenthesised qualifier gets the
  unqualified name as an alias ("Usta River (Russia)" -> "Usta River").
- `obo`: an OBO 1.2/1.4 ontology (HPO, Disease Ontology, MONDO, ChEBI, ...): every `[Term]`
  stanza that is not `is_obsolete: true` gives one entity; `id`, `name`, `def` (description),
  `synonym` lines of the scopes in `OBO_SYNONYM_SCOPES` (aliases), `alt_id` (alternative
  ids), `is_a` (parents); the type is the `--type` given, else the term's `namespace`. Other stanzas
  (`[Typedef]`, `[Instance]`) and the header are skipped.
"""

import csv
import re
from pathlib import Path
from collections import Counter, defaultdict
from dataclasses import replace
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

from ..errors import DataError
from ..files import TextLines, iter_jsonl, open_text
from .base import EntityRecord

FORMATS = ("medic", "jsonl", "csv", "popularity", "obo")
OBO_SYNONYM_SCOPES = ("EXACT", "RELATED")  # NARROW and BROAD synonyms name other concepts
_OBO_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(.*)$')
_OBO_ESCAPE = re.compile(r"\\(.)")
_MEDIC_ID = re.compile(r"^(MESH|OMIM):\S+$")
_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$")


def _open_text(path: Path) -> TextLines:
    return open_text(path)


def _split(value) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split("|") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise TypeError(f"expected a list of strings or a '|'-separated string, got {value!r}")


def guess_format(path: Union[str, Path]) -> str:
    """Format of a KB source from its name and first data line."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
        return "jsonl"
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return "csv"
    if name.endswith(".obo") or name.endswith(".obo.gz"):
        return "obo"
    with _open_text(path) as f:
        for line in f:
            if line.startswith("format-version:") or line.strip() == "[Term]":
                return "obo"
            if line.startswith("#") and "DiseaseID" in line:
                return "medic"
            if line.startswith("#") or not line.strip():
                continue
            return "medic" if line.count("\t") >= 7 else "popularity"
    raise DataError(path, None, "cannot guess the format of an empty file; pass --format")


def read_medic(path: Union[str, Path], type: str = "Disease") -> Iterator[EntityRecord]:
    path = Path(path)
    with _open_text(path) as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) not in (8, 9):
                raise DataError(path, n, f"expected 9 tab-separated fields (CTD MEDIC), found {len(fields)}")
            name, eid, alt, definition = fields[0], fields[1], fields[2], fields[3]
            if not _MEDIC_ID.match(eid):
                raise DataError(path, n, f"DiseaseID {eid!r} is not of the form MESH:<id> or OMIM:<id>")
            if not name.strip():
                raise DataError(path, n, f"DiseaseName is empty for {eid}")
            yield EntityRecord(
                id=eid, name=name, aliases=_split(fields[7]), description=definition,
                type=type, alt_ids=_split(alt), source=str(path), line=n, parents=_split(fields[4]),
            )


def read_jsonl(path: Union[str, Path], type: str = "") -> Iterator[EntityRecord]:
    path = Path(path)
    for n, obj in iter_jsonl(path):
        yield _record(obj, path, n, type)


def read_csv(path: Union[str, Path], type: str = "") -> Iterator[EntityRecord]:
    path = Path(path)
    with _open_text(path) as f:
        # strict: a quote that is never closed, or text after a closing quote, is an error
        # instead of a field that silently swallows the rows after it.
        reader = csv.DictReader(f, strict=True)
        start = 1
        try:
            if reader.fieldnames is None or not {"id", "name"} <= set(reader.fieldnames):
                raise DataError(path, 1, f"the header must name at least the columns id,name (found {reader.fieldnames})")
            start = reader.line_num + 1
            for row in reader:
                if None in row:
                    raise DataError(path, start, f"more fields than the {len(reader.fieldnames)} columns of the header")
                yield _record(row, path, start, type)
                start = reader.line_num + 1
        except csv.Error as err:
            msg = str(err)
            if "field larger than field limit" in msg:
                msg = (f"a field longer than Python's CSV limit of {csv.field_size_limit():,} characters; "
                       "write such entities in the jsonl format")
            elif "unexpected end of data" in msg:
                msg = "a quoted field is never closed (an unterminated quote runs to the end of the file)"
            else:
                msg = f"malformed CSV ({msg}); quote fields that contain commas or quotes, doubling inner quotes"
            raise DataError(path, start, msg) from None


def _record(obj: dict, path: Path, n: int, default_type: str) -> EntityRecord:
    eid, name = obj.get("id"), obj.get("name")
    if not isinstance(eid, str) or not eid.strip():
        raise DataError(path, n, "missing or empty 'id'")
    if not isinstance(name, str) or not name.strip():
        raise DataError(path, n, f"missing or empty 'name' for id {eid!r}")
    try:
        aliases = _split(obj.get("aliases"))
        alt_ids = _split(obj.get("alt_ids"))
        parents = _split(obj.get("parents"))
    except TypeError as err:
        raise DataError(path, n, str(err)) from None
    prior = obj.get("prior")
    if prior in (None, ""):
        prior = 0.0
    try:
        prior = float(prior)
    except (TypeError, ValueError):
        raise DataError(path, n, f"'prior' {prior!r} is not a number") from None
    desc = obj.get("description") or ""
    etype = obj.get("type") or default_type
    if not isinstance(desc, str) or not isinstance(etype, str):
        raise DataError(path, n, "'description' and 'type' must be strings")
    return EntityRecord(id=eid.strip(), name=name, aliases=aliases, description=desc, type=etype,
                        prior=prior, alt_ids=alt_ids, source=str(path), line=n, parents=parents)


def read_popularity(path: Union[str, Path], type: str = "") -> Iterator[EntityRecord]:
    path = Path(path)
    with _open_text(path) as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise DataError(path, n, f"expected 'title<TAB>score', found {len(fields)} fields")
            title, score = fields
            if not title.strip():
                raise DataError(path, n, "empty title")
            try:
                prior = float(score)
            except ValueError:
                raise DataError(path, n, f"score {score!r} is not a number") from None
            name = title.replace("_", " ").strip()
            short = _QUALIFIER.sub("", name)
            yield EntityRecord(id=title, name=name, aliases=[short] if short and short != name else [],
                               type=type, prior=prior, source=str(path), line=n)


def read_exclusions(path: Union[str, Path]) -> Dict[str, Set[str]]:
    """Aliases to leave out of a build: JSONL lines `{"id": …, "text": …}` (a retriever's
    `holdout.jsonl`), as id -> alias texts."""
    path = Path(path)
    out: Dict[str, Set[str]] = {}
    for n, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("text"), str):
            raise DataError(path, n, 'expected {"id": "...", "text": "..."}')
        out.setdefault(obj["id"], set()).add(obj["text"])
    return out


def without_aliases(records: Iterable[EntityRecord], exclude: Dict[str, Set[str]]) -> Iterator[EntityRecord]:
    """`records` with the aliases in `exclude` (id -> texts) removed (canonical names stay)."""
    for rec in records:
        gone = exclude.get(rec.id)
        if gone:
            rec = replace(rec, aliases=[a for a in rec.aliases if a not in gone])
        yield rec


def merge_duplicates(records: Iterable[EntityRecord]) -> List[EntityRecord]:
    """`records` with each id once, in first-seen order: a later record of the same id adds its
    name and aliases as aliases, its alternative ids and parents, a description where there was
    none and a higher prior (e.g. an ontology's entities plus a corpus's entities that repeat
    some of its ids). Records of one id with different non-empty types are an error that names
    both places."""
    merged: Dict[str, EntityRecord] = {}
    for rec in records:
        first = merged.get(rec.id)
        if first is None:
            merged[rec.id] = replace(rec, aliases=list(rec.aliases or ()), alt_ids=list(rec.alt_ids or ()),
                                     parents=list(rec.parents or ()))
            continue
        if rec.type and first.type and rec.type != first.type:
            where = f"{first.source or 'an earlier source'}" + (f", line {first.line}" if first.line is not None else "")
            raise DataError(rec.source, rec.line, f"entity {rec.id!r} has type {rec.type!r} here and {first.type!r} in {where}")
        have = {str(first.name or "").strip(), *first.aliases}
        for text in [rec.name, *(rec.aliases or ())]:
            text = text.strip() if isinstance(text, str) else text
            if text and text not in have:
                have.add(text)
                first.aliases.append(text)
        first.alt_ids += [a for a in rec.alt_ids or () if a not in first.alt_ids]
        first.parents += [p for p in rec.parents or () if p not in first.parents]
        first.type = first.type or rec.type
        first.description = first.description or rec.description
        try:
            first.prior = max(float(first.prior or 0.0), float(rec.prior or 0.0))
        except (TypeError, ValueError):
            raise DataError(rec.source, rec.line, f"prior {rec.prior!r} of entity {rec.id!r} is not a number") from None
    return list(merged.values())


def read_alias_file(path: Union[str, Path]) -> Iterator[EntityRecord]:
    """Extra aliases for existing entities: JSONL lines `{"id": …, "aliases": [...]}`."""
    path = Path(path)
    for n, obj in iter_jsonl(path):
        if not isinstance(obj.get("id"), str) or not obj["id"].strip():
            raise DataError(path, n, "expected an object with a non-empty string 'id'")
        try:
            aliases = _split(obj.get("aliases"))
        except TypeError as err:
            raise DataError(path, n, str(err)) from None
        yield EntityRecord(id=obj["id"].strip(), name="", aliases=aliases, source=str(path), line=n)


def aliases_from_docs(
    docs: Iterable, min_count: int = 1, types: Optional[Sequence[str]] = None
) -> List[EntityRecord]:
    """Records (id, mention texts as aliases, the most frequent text as name, the mentions'
    label as type) from gold entities with one KB id each, for `extra_aliases` or as a KB
    source; uses `doc.spans["entlink_gold"]` where present, else `doc.ents`. `types` keeps
    only mentions with these labels."""
    counts: Counter = Counter()
    labels: Dict[str, Counter] = defaultdict(Counter)
    for doc in docs:
        spans = doc.spans["entlink_gold"] if "entlink_gold" in doc.spans else doc.ents
        for span in spans:
            if types and span.label_ not in types:
                continue
            if span.kb_id_ and "|" not in span.kb_id_:
                counts[(span.kb_id_, span.text)] += 1
                labels[span.kb_id_][span.label_] += 1
    by_id: Dict[str, List[Tuple[int, str]]] = defaultdict(list)
    for (kb_id, text), n in sorted(counts.items()):
        if n >= min_count:
            by_id[kb_id].append((n, text))
    return [
        EntityRecord(
            id=k, name=max(v, key=lambda x: (x[0], x[1]))[1], aliases=[t for _, t in v],
            type=labels[k].most_common(1)[0][0],
        )
        for k, v in sorted(by_id.items())
    ]


def read_obo(path: Union[str, Path], type: str = "",
             synonym_scopes: Sequence[str] = OBO_SYNONYM_SCOPES) -> Iterator[EntityRecord]:
    """Entities of the `[Term]` stanzas of an OBO ontology (see the module docstring)."""
    path = Path(path)
    term: Optional[Dict] = None

    def finish(t: Optional[Dict]) -> Iterator[EntityRecord]:
        if t is None or t["obsolete"]:
            return
        if not t["id"]:
            raise DataError(path, t["start"], "[Term] stanza without an 'id:' line")
        if not t["name"]:
            raise DataError(path, t["id_line"], f"term {t['id']!r} has no 'name:' line")
        yield EntityRecord(id=t["id"], name=t["name"], aliases=list(dict.fromkeys(t["aliases"])),
                           description=t["def"], type=type or t["namespace"], alt_ids=t["alt_ids"],
                           source=str(path), line=t["id_line"], parents=list(dict.fromkeys(t["parents"])))

    with _open_text(path) as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if line.startswith("["):
                yield from finish(term)
                term = None
                if line == "[Term]":
                    term = {"start": n, "id": "", "id_line": n, "name": "", "def": "", "namespace": "",
                            "aliases": [], "alt_ids": [], "parents": [], "obsolete": False}
                elif not line.endswith("]"):
                    raise DataError(path, n, f"malformed stanza header {line!r}")
                continue
            if term is None or not line or line.startswith("!"):
                continue
            tag, sep, value = line.partition(":")
            if not sep:
                raise DataError(path, n, f"expected 'tag: value', found {line[:60]!r}")
            tag, value = tag.strip(), _obo_strip_comment(value.strip())
            if tag == "id":
                if term["id"]:
                    raise DataError(path, n, f"a second 'id:' in the stanza of term {term['id']!r}")
                term["id"], term["id_line"] = value, n
            elif tag == "name":
                term["name"] = value
            elif tag == "namespace":
                term["namespace"] = value
            elif tag == "alt_id":
                term["alt_ids"].append(value)
            elif tag == "is_a" and value:
                term["parents"].append(value.split()[0])
            elif tag == "is_obsolete":
                term["obsolete"] = value.lower() == "true"
            elif tag in ("def", "synonym"):
                m = _OBO_QUOTED.match(value)
                if m is None:
                    raise DataError(path, n, f"'{tag}:' needs a quoted text, found {value[:60]!r}")
                text = _OBO_ESCAPE.sub(r"\1", m.group(1)).strip()
                if tag == "def":
                    term["def"] = text
                else:
                    scope = (m.group(2).split() or ["RELATED"])[0]  # OBO's default scope
                    if scope in synonym_scopes and text:
                        term["aliases"].append(text)
        yield from finish(term)


def _obo_strip_comment(value: str) -> str:
    """`value` without a trailing ` ! comment` (outside quotes)."""
    if "!" not in value:
        return value
    quoted = False
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif ch == "!" and not quoted and (i == 0 or value[i - 1] == " "):
            return value[:i].rstrip()
    return value


_READERS = {"medic": read_medic, "jsonl": read_jsonl, "csv": read_csv, "popularity": read_popularity,
            "obo": read_obo}


def read_source(path: Union[str, Path], format: Optional[str] = None, type: Optional[str] = None) -> Iterator[EntityRecord]:
    """Records of one KB source file; `format` is guessed when None."""
    fmt = format or guess_format(path)
    if fmt not in _READERS:
        raise DataError(path, None, f"unknown KB source format {fmt!r}; choose one of {', '.join(FORMATS)}")
    kwargs = {} if type is None else {"type": type}
    return _not_empty(path, fmt, _READERS[fmt](path, **kwargs))


def _not_empty(path, fmt: str, records: Iterator[EntityRecord]) -> Iterator[EntityRecord]:
    n = 0
    for n, rec in enumerate(records, start=1):
        yield rec
    if n == 0:
        raise DataError(path, None, f"no entities in the file (empty, or not in the {fmt} format?)")
