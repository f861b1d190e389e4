"""HTML views of annotated docs: entities with their KB ids (and links), relations as arcs.

Entities are drawn by displaCy's `ent` style (the KB id under each label, linked through
`kb_url_template`). Relations are drawn by displaCy's `dep` style from manual data: each entity
becomes one unit of the arc diagram, long runs of words between the entities a relation spans
are shortened to "…", so a relation between mentions far apart in a long document still gives
a compact diagram. A relation between KB ids (document level, e.g. BC5CDR CID) is drawn
between the closest mentions of the two ids. A table lists every relation with its score and
every entity with its top-k linked ids.

    from spacy_entlink.visualize import render
    html = render(docs, kb_url_template="https://meshb.nlm.nih.gov/record/ui?ui={}")
"""

import html
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy import displacy
from spacy.tokens import Doc, Span

from .extensions import install_extensions

PALETTE = ["#7aecec", "#bfeeb7", "#feca74", "#ff9561", "#aa9cfc", "#c887fb", "#9cc9cc", "#ffeb80",
           "#ff8197", "#f0d0ff", "#bfe1d9", "#e4e7d2"]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em 2em; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 2em; border-bottom: 1px solid #ddd; }}
h3 {{ font-size: 0.95em; color: #555; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }}
td, th {{ border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f6f6f6; }} .num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.arcs {{ overflow-x: auto; }} .none {{ color: #888; font-style: italic; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _colors(docs: Sequence[Doc]) -> Dict[str, str]:
    labels = sorted({e.label_ for d in docs for e in d.ents})
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def _resolve(doc: Doc, arg: Union[Span, str], other: Union[Span, str, None] = None) -> Optional[Span]:
    """The span of a relation argument; for a KB id, its mention closest to `other`."""
    if isinstance(arg, Span):
        return arg
    mentions = [e for e in doc.ents if e.kb_id_ == arg]
    if not mentions:
        return None
    if isinstance(other, Span):
        return min(mentions, key=lambda e: abs(e.start - other.start))
    return mentions[0]


def relation_arcs(doc: Doc, relations: Sequence, *, max_gap: int = 6) -> Optional[dict]:
    """displaCy manual `dep` data for `relations` (head, label, tail, score) of `doc`: the
    words from the first to the last argument, each entity one unit tagged with its label and
    KB id, runs of more than `max_gap` words outside entities shortened to "…"."""
    pairs: List[Tuple[Span, str, Span, float]] = []
    for rel in relations:
        head = _resolve(doc, rel[0], rel[2] if isinstance(rel[2], Span) else None)
        tail = _resolve(doc, rel[2], head)
        if head is None or tail is None:
            continue
        pairs.append((head, rel[1], tail, float(rel[3]) if len(rel) > 3 else 1.0))
    if not pairs:
        return None
    lo = min(min(h.start, t.start) for h, _, t, _ in pairs)
    hi = max(max(h.end, t.end) for h, _, t, _ in pairs)
    ents = {e.start: e for e in doc.ents if e.start >= lo and e.end <= hi}
    for h, _, t, _ in pairs:  # arguments that are not doc.ents (possible for KB-id fallbacks)
        for s in (h, t):
            if not any(e.start <= s.start < e.end for e in ents.values()):
                ents[s.start] = s
    words: List[dict] = []
    unit_of: Dict[Tuple[int, int], int] = {}
    i, gap = lo, []

    def flush_gap() -> None:
        if len(gap) > max_gap:
            keep = max_gap // 2
            kept = [doc[j].text for j in gap[:keep]] + ["…"] + [doc[j].text for j in gap[-keep:]] if keep else ["…"]
        else:
            kept = [doc[j].text for j in gap]
        words.extend({"text": w, "tag": ""} for w in kept if w.strip())
        gap.clear()

    while i < hi:
        ent = ents.get(i)
        if ent is not None:
            flush_gap()
            unit_of[(ent.start, ent.end)] = len(words)
            tag = ent.label_ + (f" {ent.kb_id_}" if ent.kb_id_ else "")
            words.append({"text": ent.text, "tag": tag})
            i = ent.end
        else:
            gap.append(i)
            i += 1
    flush_gap()
    arcs = []
    for h, label, t, score in pairs:
        a, b = unit_of.get((h.start, h.end)), unit_of.get((t.start, t.end))
        if a is None or b is None or a == b:
            continue
        text = f"{label} {score:.2f}" if score < 1.0 else label
        arcs.append({"start": min(a, b), "end": max(a, b), "label": text, "dir": "right" if a < b else "left"})
    return {"words": words, "arcs": arcs} if arcs else None


def _relation_groups(doc: Doc) -> List[Tuple[str, list]]:
    """Relations grouped by sentence when both arguments are mentions of one sentence, the
    rest (cross-sentence and KB-id relations) in one group per document."""
    rels = list(doc._.entlink_relations)
    if not rels:
        return []
    has_sents = doc.has_annotation("SENT_START")
    by_sent: Dict[int, list] = {}
    rest = []
    for rel in rels:
        h, t = rel.head, rel.tail
        if has_sents and isinstance(h, Span) and isinstance(t, Span) and h.sent.start == t.sent.start:
            by_sent.setdefault(h.sent.start, []).append(rel)
        elif not has_sents and isinstance(h, Span) and isinstance(t, Span):
            by_sent.setdefault(0, []).append(rel)
        else:
            rest.append(rel)
    groups = [(f"sentence at token {s}" if has_sents else "document", g) for s, g in sorted(by_sent.items())]
    if rest:
        groups.append(("document level", rest))
    return groups


def _arg_text(arg: Union[Span, str]) -> str:
    if isinstance(arg, Span):
        return f"{arg.text} [{arg.label_}{' ' + arg.kb_id_ if arg.kb_id_ else ''}]"
    return str(arg)


def render_doc(doc: Doc, *, title: str = "", kb_url_template: Optional[str] = None,
               colors: Optional[Dict[str, str]] = None, max_gap: int = 6, tables: bool = True) -> str:
    """One document as an HTML fragment: entities, relation arcs, and tables."""
    install_extensions()
    colors = colors or _colors([doc])
    options = {"colors": colors}
    if kb_url_template:
        options["kb_url_template"] = kb_url_template
    parts = [f"<h2>{html.escape(title)}</h2>" if title else ""]
    if not doc.text.strip():
        parts.append('<p class="none">(empty document)</p>')
        return "\n".join(parts)
    parts.append(displacy.render(doc, style="ent", options=options, page=False, jupyter=False))
    groups = _relation_groups(doc)
    for name, rels in groups:
        data = relation_arcs(doc, rels, max_gap=max_gap)
        if data is None:
            continue
        widest = max(max(len(w["text"]), len(w["tag"])) for w in data["words"])
        svg = displacy.render(data, style="dep", manual=True, page=False, jupyter=False,
                              options={"compact": True, "distance": min(260, max(110, 8 * widest)),
                                       "word_spacing": 30, "arrow_spacing": 12, "offset_x": 100})
        parts.append(f"<h3>relations: {html.escape(name)}</h3><div class=\"arcs\">{svg}</div>")
    if not tables:
        return "\n".join(parts)
    if groups:
        rows = "".join(
            f"<tr><td>{html.escape(_arg_text(r.head))}</td><td>{html.escape(r.label)}</td>"
            f"<td>{html.escape(_arg_text(r.tail))}</td><td class=\"num\">{r.score:.3f}</td></tr>"
            for _, rels in groups for r in rels)
        parts.append("<table><tr><th>head</th><th>relation</th><th>tail</th><th>score</th></tr>" + rows + "</table>")
    else:
        parts.append('<p class="none">no relations</p>')
    if doc.ents:
        rows = []
        for e in doc.ents:
            links = e._.entlink_links or []
            kb = html.escape(e.kb_id_)
            if kb and kb_url_template:
                kb = f'<a href="{html.escape(kb_url_template.format(e.kb_id_))}">{kb}</a>'
            link_text = ", ".join(f"{html.escape(i)} {p:.2f}" for i, p in links)
            score = e._.entlink_score
            rows.append(f"<tr><td>{html.escape(e.text)}</td><td>{html.escape(e.label_)}</td><td>{kb}</td>"
                        f"<td class=\"num\">{'' if score is None else f'{score:.2f}'}</td>"
                        f"<td>{html.escape(e._.entlink_source or '')}</td><td>{link_text}</td></tr>")
        parts.append("<table><tr><th>entity</th><th>label</th><th>KB id</th><th>score</th><th>source</th>"
                     "<th>top-k links</th></tr>" + "".join(rows) + "</table>")
    return "\n".join(parts)


def render(docs: Union[Doc, Iterable[Doc]], *, title: str = "spacy-entlink", kb_url_template: Optional[str] = None,
           names: Optional[Sequence[str]] = None, max_gap: int = 6, tables: bool = True) -> str:
    """A standalone HTML page showing `docs`: entities with KB ids, relations as arcs, tables."""
    docs = [docs] if isinstance(docs, Doc) else list(docs)
    colors = _colors(docs)
    names = list(names) if names is not None else [f"document {i + 1}" for i in range(len(docs))]
    body = "\n".join(render_doc(d, title=n, kb_url_template=kb_url_template, colors=colors, max_gap=max_gap,
                                tables=tables) for d, n in zip(docs, names))
    return PAGE.format(title=html.escape(title), body=body or '<p class="none">no documents</p>')
