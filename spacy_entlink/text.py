"""The one text normalisation used to build knowledge bases and to match text against them.

`normalize(text)` returns a `NormalizedText` whose every character maps back to a
character range of the input, so a match found in normalised text becomes a span of
the original. `normalize_key(name)` gives the same words without offsets, fast enough to
normalise millions of KB names. Both share `Normalizer`, so a KB built with one set of
options is always matched with the same options (the options are saved with the KB).

Policy, in order:
1. Unicode: NFKD, combining marks dropped (é→e, İ→I, Å→A), ligatures and a few letters
   without decomposition spelled out (æ→ae, ß→ss by case folding, ı→i), Greek letters
   spelled out (α→alpha) so that "α-tocopherol" matches "alpha-tocopherol"; invisible
   format characters (soft hyphen, zero-width joiner, BOM) are dropped ("hyphen\u00adation"
   = "hyphenation"), a zero-width space separates words.
2. Separators: every character that is not a letter or digit (spaces, hyphens and dashes of
   any kind, slashes, brackets, punctuation, symbols, emoji) separates words; apostrophes
   separate too, and a possessive "'s" is dropped ("Crohn's disease" = "Crohn disease").
3. Case: words are case-folded, except short all-caps acronyms (2..`acronym_max_len`
   letters, e.g. "ALL", "MS", "AIDS"), which keep their case so that they never match the
   common word ("all", "ms", "aids"); a plural acronym loses its "s" ("NSAIDs"→"NSAID").
4. Plurals (optional, on by default): an S-stemmer (Harman 1991) folds "diseases"→"disease",
   "allergies"→"allergy", "abscesses"→"abscess".
Words are joined with single spaces.
"""

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

from .matching.native import extension

_native = extension()  # matching/_scan.c, or None
_ASCII_SEP = re.compile(r"[^A-Za-z0-9']")
_WORD = re.compile(r"[^\s']+")

_APOSTROPHES = frozenset("'\u2019\u2018\u02bc\u02b9\u0060\u00b4\u2032")
_SPECIAL = {
    "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i", "ĸ": "k",
}
_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu",
    "ν": "nu", "ξ": "xi", "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma",
    "τ": "tau", "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
}
_GREEK.update({unicodedata.normalize("NFC", k.upper()): v for k, v in list(_GREEK.items()) if k != "ς"})
_GREEK["µ"] = "mu"  # micro sign


@dataclass(frozen=True)
class NormalizerConfig:
    """Options of the normalisation; saved with every KB so matching uses the same ones."""

    acronym_max_len: int = 5
    fold_plurals: bool = True
    greek_names: bool = True

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, cfg: Optional[Dict[str, Any]]) -> "NormalizerConfig":
        cfg = dict(cfg or {})
        known = {k: cfg[k] for k in ("acronym_max_len", "fold_plurals", "greek_names") if k in cfg}
        return cls(**known)


@dataclass
class NormalizedText:
    """Normalised text with a map from each normalised character to the original text.

    `char_starts[i]`/`char_ends[i]` give the original character range that produced
    normalised character i (the space between two words maps to the end of the word before
    it). `words`, `word_starts`, `word_ends` give the same per word. The compiled exact
    matcher gives word offsets only (`char_starts`/`char_ends` None).
    """

    original: str
    text: str
    words: List[str]
    word_starts: List[int]
    word_ends: List[int]
    char_starts: Optional[List[int]] = None
    char_ends: Optional[List[int]] = None

    def to_original(self, start: int, end: int) -> Tuple[int, int]:
        """Map the normalised character range [start, end) to an original range."""
        if self.char_starts is None or self.char_ends is None:
            raise ValueError("this NormalizedText has word offsets only; use words_to_original")
        if not 0 <= start < end <= len(self.text):
            raise IndexError(f"normalised range [{start}, {end}) outside 0..{len(self.text)}")
        return self.char_starts[start], self.char_ends[end - 1]

    def words_to_original(self, first: int, last: int) -> Tuple[int, int]:
        """Original character range covered by words first..last (inclusive)."""
        return self.word_starts[first], self.word_ends[last]


_KEY_CACHE_SIZE = 1 << 20


def _n_alpha(w: str) -> int:
    return len(w) if w.isalpha() else sum(1 for ch in w if ch.isalpha())


def _stem(word: str) -> str:
    """Harman's S-stemmer, with -is/-us/-ss protected and -sses folded to -ss."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss", "is")):
        return word[:-1]
    return word


class Normalizer:
    """Normalises text (with offsets) and names (without); see the module docstring."""

    def __init__(self, config: Optional[NormalizerConfig] = None):
        self.config = config or NormalizerConfig()
        self._word = lru_cache(maxsize=1 << 18)(self._word_uncached)
        self._char = lru_cache(maxsize=1 << 14)(self._char_uncached)
        self._key_words: Dict[str, str] = {}  # word -> normalised word, for normalize_key

    # --- characters -----------------------------------------------------------------
    def _char_uncached(self, c: str) -> str:
        """Map one non-ASCII character to letters/digits, "'" or " " (may be empty)."""
        if c in _APOSTROPHES:
            return "'"
        if c in _SPECIAL:
            return _SPECIAL[c]
        if self.config.greek_names and c in _GREEK:
            return _GREEK[c]
        if c != "\u200b" and unicodedata.category(c) == "Cf":
            # Invisible format characters (soft hyphen, zero-width (non-)joiner, word
            # joiner, BOM, direction marks) join the text around them, like a combining mark;
            # only the zero-width space separates words.
            return ""
        out = []
        for d in unicodedata.normalize("NFKD", c):
            if d.isalnum():
                out.append(_SPECIAL.get(d, d) if not (self.config.greek_names and d in _GREEK) else _GREEK[d])
            elif unicodedata.category(d) in ("Mn", "Mc", "Me"):
                continue
            else:
                out.append(" ")
        if not out and unicodedata.category(c) in ("Mn", "Mc", "Me"):
            return ""
        return "".join(out)

    def _map_chars(self, text: str, with_offsets: bool):
        """Return (mapped string, starts, ends) with one offset pair per mapped character."""
        if text.isascii():
            mapped = _ASCII_SEP.sub(" ", text)
            return mapped, None, None
        pieces: List[str] = []
        starts: List[int] = []
        ends: List[int] = []
        for i, c in enumerate(text):
            if c.isascii():
                m = c if (c.isalnum() or c == "'") else " "
            else:
                m = self._char(c)
            if not m:
                # A dropped combining mark (or zero-width char) belongs to the char before it.
                if with_offsets and ends:
                    ends[-1] = i + 1
                continue
            pieces.append(m)
            if with_offsets:
                starts.extend([i] * len(m))
                ends.extend([i + 1] * len(m))
        return "".join(pieces), starts, ends

    # --- words ----------------------------------------------------------------------
    def _word_uncached(self, w: str) -> Tuple[str, Tuple[int, ...]]:
        """Normalise one word; return it with the index in `w` of each output character."""
        cfg = self.config
        if cfg.acronym_max_len > 0 and len(w) >= 2:
            if w.isupper():
                if 2 <= _n_alpha(w) <= cfg.acronym_max_len:
                    return w, tuple(range(len(w)))
            elif len(w) > 2 and w[-1] == "s" and w[:-1].isupper():
                if 2 <= _n_alpha(w) - 1 <= cfg.acronym_max_len:
                    return w[:-1], tuple(range(len(w) - 1))
        if w.isascii():
            # ASCII: lower() keeps the length, and stemming only cuts the end.
            folded = w.lower()
            if cfg.fold_plurals:
                folded = _stem(folded)
            return folded, tuple(range(len(folded)))
        out: List[str] = []
        src: List[int] = []
        for j, ch in enumerate(w):
            f = ch.casefold()
            out.extend(f)
            src.extend([j] * len(f))
        folded = "".join(out)
        if cfg.fold_plurals:
            stemmed = _stem(folded)
            if stemmed != folded:
                keep = min(len(stemmed), len(src))
                src = src[:keep] + [src[keep - 1]] * (len(stemmed) - keep)
                folded = stemmed
        return folded, tuple(src)

    def _key_word(self, w: str) -> str:
        """Normalised form of one word (no offsets); a plain dict cache, cleared when full."""
        out = self._word_uncached(w)[0]
        cache = self._key_words
        if len(cache) >= _KEY_CACHE_SIZE:
            cache.clear()
        cache[w] = out
        return out

    def _iter_words(self, mapped: str):
        for m in _WORD.finditer(mapped):
            w = m.group()
            a = m.start()
            if w in ("s", "S") and a > 0 and mapped[a - 1] == "'":
                continue  # possessive 's
            yield w, a

    def normalize_key(self, text: str) -> str:
        """Normalised form of a name (no offsets): words joined by single spaces."""
        mapped, _, _ = self._map_chars(text, with_offsets=False)
        cache = self._key_words
        if "'" in mapped:
            words = [w for w, _ in self._iter_words(mapped)]
        else:
            words = mapped.split()  # mapped holds only letters, digits and " " here
        return " ".join([cache.get(w) or self._key_word(w) for w in words])

    def normalize_keys(self, texts: List[str]) -> List[str]:
        """`normalize_key` of every text, in compiled code where the extension is built (KB
        builds normalise millions of names)."""
        if _native is None:
            return [self.normalize_key(t) for t in texts]
        cfg = self.config
        return _native.normalize_keys(list(texts), self._char, self._word, cfg.acronym_max_len, cfg.fold_plurals)

    def normalize(self, text: str) -> NormalizedText:
        """Normalise running text, keeping a map back to the original characters."""
        mapped, m_starts, m_ends = self._map_chars(text, with_offsets=True)
        ascii_ = m_starts is None
        words: List[str] = []
        w_starts: List[int] = []
        w_ends: List[int] = []
        c_starts: List[int] = []
        c_ends: List[int] = []
        word = self._word
        # The loop of _iter_words, inlined, and `map` instead of generator expressions:
        # this runs for every word of every document the dictionary component sees.
        for m in _WORD.finditer(mapped):
            w = m.group()
            a = m.start()
            if w in ("s", "S") and a > 0 and mapped[a - 1] == "'":
                continue  # possessive 's
            out, src = word(w)
            if not out:
                continue
            if words:
                c_starts.append(c_ends[-1])
                c_ends.append(c_ends[-1])
            if ascii_:
                c_starts.extend(map(a.__add__, src))
                c_ends.extend(map((a + 1).__add__, src))
                ws, we = a, a + len(w)
            else:
                c_starts.extend([m_starts[a + s] for s in src])
                c_ends.extend([m_ends[a + s] for s in src])
                ws, we = m_starts[a], m_ends[a + len(w) - 1]
            words.append(out)
            w_starts.append(ws)
            w_ends.append(we)
        return NormalizedText(text, " ".join(words), words, w_starts, w_ends, c_starts, c_ends)

    def is_acronym(self, word: str) -> bool:
        """True for a word this normaliser keeps in capitals (see the module docstring)."""
        out, _ = self._word(word)
        return out.isupper()


@lru_cache(maxsize=8)
def get_normalizer(config: Optional[NormalizerConfig] = None) -> Normalizer:
    """Shared normaliser instance per configuration."""
    return Normalizer(config)


def normalize(text: str, config: Optional[NormalizerConfig] = None) -> NormalizedText:
    """Normalise running text with offsets back to `text` (default options)."""
    return get_normalizer(config).normalize(text)


def normalize_key(text: str, config: Optional[NormalizerConfig] = None) -> str:
    """Normalise a name for KB keys and lookups (default options)."""
    return get_normalizer(config).normalize_key(text)
