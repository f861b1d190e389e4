"""Relation types: a name, a description the retriever embeds, and optional argument types.

A label set is a built-in name ("conll04", "cid"), a JSONL file with one object per line
(`{"name": ..., "description": ..., "head_types": [...], "tail_types": [...]}`), or a list of
such objects in the config.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple, Union

from ..errors import ConfigError, DataError


@dataclass(frozen=True)
class RelationType:
    name: str
    description: str = ""
    head_types: Tuple[str, ...] = field(default_factory=tuple)
    tail_types: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def words(self) -> str:
        """The name as words ("OrgBased_In" -> "orgbased in")."""
        return self.name.replace("_", " ").lower()

    @property
    def text(self) -> str:
        """What the retriever embeds, and the reader reads after the candidate marker unless
        its model says `candidate_text = "name"` (then `words`)."""
        return f"{self.words}: {self.description}" if self.description else self.words

    def allows(self, head_label: str, tail_label: str) -> bool:
        return (not self.head_types or head_label in self.head_types) and (
            not self.tail_types or tail_label in self.tail_types)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "description": self.description, "head_types": list(self.head_types),
                "tail_types": list(self.tail_types)}


BUILTIN: Dict[str, List[RelationType]] = {
    "conll04": [
        RelationType("Work_For", "a person works for or is employed by an organization", ("Peop",), ("Org",)),
        RelationType("Kill", "a person killed another person", ("Peop",), ("Peop",)),
        RelationType("OrgBased_In", "an organization is based or headquartered in a location", ("Org",), ("Loc",)),
        RelationType("Live_In", "a person lives in or comes from a location", ("Peop",), ("Loc",)),
        RelationType("Located_In", "a location is inside another location", ("Loc",), ("Loc",)),
    ],
    "cid": [
        RelationType("CID", "the chemical or drug induces or causes the disease as an adverse effect",
                     ("Chemical",), ("Disease",)),
    ],
}

LabelSource = Union[str, Path, Sequence[Dict[str, Any]], None]


def _from_dict(obj: Any, where: str) -> RelationType:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"].strip():
        raise ConfigError(f"{where}: a relation type needs a non-empty string \"name\", got {obj!r}")
    for key in ("head_types", "tail_types"):
        if not isinstance(obj.get(key, []), (list, tuple)):
            raise ConfigError(f"{where}: \"{key}\" must be a list of entity labels")
    return RelationType(obj["name"].strip(), str(obj.get("description", "") or ""),
                        tuple(obj.get("head_types", ())), tuple(obj.get("tail_types", ())))


def load_relation_types(source: LabelSource) -> List[RelationType]:
    """The relation types of a built-in name, a JSONL file or a list of dicts."""
    if source is None or source == "":
        return []
    if isinstance(source, str) and source in BUILTIN:
        return list(BUILTIN[source])
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"relation types {str(source)!r}: not a built-in set ({', '.join(BUILTIN)}) "
                              "and no such file")
        types = []
        with path.open(encoding="utf8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(path, n, f"not JSON ({err.msg})") from err
                try:
                    types.append(_from_dict(obj, f"{path}:{n}"))
                except ConfigError as err:
                    raise DataError(path, n, str(err)) from err
        return _unique(types, str(path))
    return _unique([_from_dict(o, f"relation type {i}") for i, o in enumerate(source)], "relation types")


def _unique(types: Iterable[RelationType], where: str) -> List[RelationType]:
    seen: Dict[str, RelationType] = {}
    for t in types:
        if t.name in seen:
            raise ConfigError(f"{where}: relation type {t.name!r} is defined twice")
        seen[t.name] = t
    if not seen:
        raise ConfigError(f"{where}: no relation types")
    return list(seen.values())
