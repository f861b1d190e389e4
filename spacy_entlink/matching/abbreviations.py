"""Abbreviation definitions in running text (Schwartz & Hearst, PSB 2003).

Finds "long form (SF)" patterns, where SF is a short form of 2-10 characters with a
letter, and the long form is the shortest run of words before the parenthesis whose
characters contain SF's characters in order, SF's first character starting a word.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from spacy.attrs import ORTH
from spacy.strings import hash_string
from spacy.tokens import Doc, Span

_OPEN = {"(": ")", "[": "]"}
_OPEN_ORTHS = np.array([hash_string(b) for b in _OPEN], dtype=np.uint64)


@dataclass(frozen=True)
class Abbreviation:
    short: Span
    long: Span


def best_long_form(short: str, long: str) -> Optional[int]:
    """Start offset in `long` of the long form of `short`, or None (Schwartz–Hearst)."""
    s = len(short) - 1
    l = len(long) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while l >= 0 and (long[l].lower() != c or (s == 0 and l > 0 and long[l - 1].isalnum())):
            l -= 1
        if l < 0:
            return None
        l -= 1
        s -= 1
    return long.rfind(" ", 0, l + 1) + 1


def _is_short_form(text: str) -> bool:
    if not 2 <= len(text) <= 10 or len(text.split()) > 2:
        return False
    return text[0].isalnum() and any(c.isalpha() for c in text)


def definition_at(doc: Doc, i: int, max_inner_tokens: int = 4) -> Tuple[Optional[Abbreviation], int]:
    """The "long form (short form)" definition whose bracket is token `i` (an opening bracket
    after the first token), or None; and the first token to look at after it."""
    n = len(doc)
    close = _OPEN[doc[i].text]
    j = i + 1
    while j < n and j - i <= max_inner_tokens and doc[j].text != close and doc[j].text not in _OPEN:
        j += 1
    if j >= n or doc[j].text != close or j == i + 1:
        return None, i + 1  # no closing bracket near, or another one opens first: look on from the next token
    inner = doc[i + 1 : j]
    # "(SF; other text)" or "(SF, ...)" keeps the part before the separator.
    cut = next((k for k, t in enumerate(inner) if t.text in (";", ",")), len(inner))
    sf = inner[:cut]
    if len(sf) == 0 or not _is_short_form(sf.text):
        return None, j + 1
    n_words = min(len(sf.text) + 5, 2 * len(sf.text))
    # Long-form window: up to n_words tokens back, not crossing a sentence start or ")".
    k = i
    while k > 0 and i - k < n_words and doc[k - 1].text not in (")", "]", ";", ".") and not (
        doc[k].is_sent_start and k < i
    ):
        k -= 1
    if k == i:
        return None, j + 1
    window = doc[k:i]
    start = best_long_form(sf.text, window.text)
    if start is not None:
        long_span = doc.char_span(window.start_char + start, window.end_char, alignment_mode="expand")
        if (
            long_span is not None
            and len(long_span.text) > len(sf.text)
            and sf.text.lower() not in long_span.text.lower().split()
        ):
            return Abbreviation(sf, long_span), j + 1
    return None, j + 1


def find_abbreviations(doc: Doc, max_inner_tokens: int = 4) -> List[Abbreviation]:
    """All "long form (short form)" definitions of a document."""
    out: List[Abbreviation] = []
    if len(doc) == 0:
        return out
    # Only an opening bracket token can start a definition: find those in the ORTH array
    # rather than making a Token object of every word.
    opens = np.flatnonzero(np.isin(doc.to_array(ORTH), _OPEN_ORTHS)).tolist()
    resume = 0  # the first token the scan may look at next
    for i in opens:
        if i < resume or i == 0:
            continue
        found, resume = definition_at(doc, i, max_inner_tokens)
        if found is not None:
            out.append(found)
    return out
