"""The one normalisation: normalize() with offsets and normalize_key() without must agree."""

import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacy_entlink.text import NormalizerConfig, Normalizer, get_normalizer, normalize, normalize_key

CONFIGS = [
    None,
    NormalizerConfig(acronym_max_len=0),
    NormalizerConfig(fold_plurals=False, greek_names=False),
    NormalizerConfig(acronym_max_len=3),
]

# Characters that stress the normaliser, mixed with arbitrary unicode (hypothesis' own
# `characters()` already covers unassigned code points, surrogates excluded).
TRICKY = (
    list("İıßẞﬁﬂﬀﬃæÆœŒøØłŁđþÞðĸ")  # Turkish I, sharp s, ligatures, letters without decomposition
    + list("αβγδΑΒΓΣσςµΩω")  # Greek, final sigma, micro sign
    + ["\u0301", "\u0308", "\u0327", "\u0345", "\u20dd"]  # combining marks (Mn, Me)
    + ["\u200d", "\u200b", "\u00ad", "\ufeff"]  # zero-width joiner/space, soft hyphen, BOM
    + list("'’‘ʼ`´′")  # apostrophes
    + list("-‐–—/\\_.,;:()[]{} \t\n\u00a0\u2009")  # separators
    + list("½¼²①㎒ǅ")  # compatibility decompositions into several characters
    + ["😀", "👩\u200d🔬", "🇩🇪", "👍🏽"]  # emoji, ZWJ sequence, flag, skin tone
    + list("sSeEiIAaDNLM0123")  # letters that make plurals, acronyms and digits likely
    + ["'s", "'S", "ies", "es", "ss", "us"]
)
chars = st.one_of(
    st.sampled_from(TRICKY),
    st.characters(min_codepoint=0x41, max_codepoint=0x5A),
    st.characters(min_codepoint=0x61, max_codepoint=0x7A),
    st.characters(),
)
texts = st.lists(chars, max_size=30).map("".join)
PROPS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_offsets(text: str, n, cfg=None) -> None:
    """Every invariant of a NormalizedText against its original `text`."""
    assert n.original == text
    assert n.text == " ".join(n.words)
    assert all(n.words) and all(" " not in w for w in n.words)
    assert len(n.char_starts) == len(n.char_ends) == len(n.text)
    assert len(n.word_starts) == len(n.word_ends) == len(n.words)
    for a, b in zip(n.char_starts, n.char_ends):
        assert 0 <= a <= b <= len(text)
    in_words = [s0 for s0, c in zip(n.char_starts, n.text) if c != " "]
    assert in_words == sorted(in_words)
    assert n.word_starts == sorted(n.word_starts)
    pos = 0
    for i, (w, a, b) in enumerate(zip(n.words, n.word_starts, n.word_ends)):
        assert 0 <= a < b <= len(text)
        # Every character of the word maps inside the word's original range.
        for j in range(pos, pos + len(w)):
            assert a <= n.char_starts[j] < n.char_ends[j] <= b
        start, end = n.to_original(pos, pos + len(w))
        assert start == a and a < end <= b  # a stemmed word's last char maps before b
        assert n.words_to_original(i, i) == (a, b)
        # The original of the word, normalised again, gives back the word. A character
        # that expands to several words ("½" -> "1 2") is shared by those words, so there
        # the word is one of the words of its original.
        again = normalize(text[a:b], cfg).words
        shared = (i > 0 and n.word_ends[i - 1] > a) or (i + 1 < len(n.words) and n.word_starts[i + 1] < b)
        if shared:
            assert w in again
        else:
            assert again == [w], (text[a:b], w, again)
        pos += len(w) + 1


@PROPS
@given(texts, st.sampled_from(range(len(CONFIGS))))
def test_normalize_and_normalize_key_agree(text, ci):
    cfg = CONFIGS[ci]
    n = normalize(text, cfg)
    assert n.text == normalize_key(text, cfg)
    check_offsets(text, n, cfg)


@PROPS
@given(texts)
def test_offsets_map_back_to_the_original(text):
    check_offsets(text, normalize(text))


@PROPS
@given(st.text())
def test_offsets_on_plain_hypothesis_text(text):
    n = normalize(text)
    assert n.text == normalize_key(text)
    check_offsets(text, n)


@PROPS
@given(texts)
def test_normalize_key_is_idempotent(text):
    key = normalize_key(text)
    assert normalize_key(key) == key
    assert normalize(key).text == key


@PROPS
@given(st.lists(st.sampled_from(["heart", "Disease", "ALL", "NSAIDs", "α", "Crohn's", "İl", "x"]), max_size=6),
       st.lists(st.sampled_from([" ", "-", "/", " - ", ", ", "\u2013", "_", "  "]), min_size=6, max_size=6))
def test_separators_are_interchangeable(words, seps):
    spaced = " ".join(words)
    mixed = words[0] + "".join(s + w for s, w in zip(seps, words[1:])) if words else ""
    assert normalize_key(mixed) == normalize_key(spaced)
    assert normalize_key("(" + mixed + ").") == normalize_key(spaced)


# --- specific cases ---------------------------------------------------------------------------


def test_possessive_s_is_dropped():
    assert normalize_key("Crohn's disease") == normalize_key("Crohn disease") == "crohn disease"
    assert normalize_key("Crohn\u2019s disease") == "crohn disease"
    assert normalize_key("Crohn's") == "crohn"
    assert normalize_key("PARKINSON'S DISEASE") == normalize_key("parkinson disease")
    n = normalize("Crohn's disease")
    assert n.words == ["crohn", "disease"]
    assert (n.word_starts, n.word_ends) == ([0, 8], [5, 15])
    assert n.to_original(0, len(n.text)) == (0, 15)
    # An apostrophe that is no possessive still separates.
    assert normalize_key("rock'n'roll") == "rock n roll"


def test_acronyms_keep_their_case():
    assert normalize_key("ALL") == "ALL"
    assert normalize_key("all") == "all"
    assert normalize_key("ALL") != normalize_key("all")
    assert normalize_key("All") == "all"
    assert normalize_key("MS") != normalize_key("ms")
    assert normalize_key("AIDS") == "AIDS"
    assert normalize_key("aids") == "aid"
    assert normalize_key("acute lymphoblastic leukemia (ALL)") == "acute lymphoblastic leukemia ALL"
    # Too long for an acronym, or a single letter: case-folded.
    assert normalize_key("LEUKEMIA") == "leukemia"
    assert normalize_key("A") == "a"
    assert normalize_key("ALL", NormalizerConfig(acronym_max_len=0)) == "all"
    assert normalize_key("SHOCK", NormalizerConfig(acronym_max_len=4)) == "shock"
    n = get_normalizer()
    assert n.is_acronym("DNA") and not n.is_acronym("Dna") and not n.is_acronym("dna")


def test_plural_acronyms_lose_their_s():
    assert normalize_key("NSAIDs") == "NSAID" == normalize_key("NSAID")
    assert normalize_key("HIVs") == "HIV"
    n = normalize("the NSAIDs were")
    assert n.words == ["the", "NSAID", "were"]
    assert (n.word_starts[1], n.word_ends[1]) == (4, 10)  # the "s" stays in the range
    assert normalize_key("Is") == "is"  # one letter + s is no acronym


def test_plural_folding():
    assert normalize_key("diseases") == normalize_key("disease") == "disease"
    assert normalize_key("allergies") == normalize_key("allergy") == "allergy"
    assert normalize_key("abscesses") == normalize_key("abscess") == "abscess"
    assert normalize_key("Kidney Diseases") == normalize_key("kidney disease")
    for word in ("virus", "analysis", "abscess", "bus", "gas"):
        assert normalize_key(word) == word, word
    assert normalize_key("diseases", NormalizerConfig(fold_plurals=False)) == "diseases"
    n = normalize("allergies")
    assert n.text == "allergy"
    assert n.char_starts == list(range(7)) and n.char_ends[-1] == 7
    assert n.word_ends == [9]


def test_turkish_dotted_capital_i_offsets():
    n = normalize("İstanbul hastanesi")
    assert n.words[0] == "istanbul"
    assert (n.word_starts[0], n.word_ends[0]) == (0, 8)
    assert n.char_starts[:2] == [0, 1] and n.char_ends[:2] == [1, 2]
    assert n.word_starts[1] == 9
    assert normalize_key("İstanbul") == normalize_key("Istanbul") == normalize_key("ıstanbul")
    # "İ".lower() has two characters; the offsets must not drift after it.
    n = normalize("İİ x")
    assert n.words == ["II", "x"] and n.word_starts == [0, 3] and n.word_ends == [2, 4]


def test_emoji_in_the_middle_keeps_later_offsets():
    text = "heart 😀 attack 👩\u200d🔬 in MS"
    n = normalize(text)
    assert n.words == ["heart", "attack", "in", "MS"]
    for w, a, b in zip(n.words, n.word_starts, n.word_ends):
        assert normalize_key(text[a:b]) == w
    assert text[n.word_starts[1] : n.word_ends[1]] == "attack"
    assert text[n.word_starts[3] : n.word_ends[3]] == "MS"
    # An emoji glued to a word separates it like a space.
    assert normalize_key("heart😀attack") == "heart attack"


def test_combining_mark_belongs_to_its_word():
    text = "e\u0301cole normale"
    n = normalize(text)
    assert n.words == ["ecole", "normale"]
    assert (n.word_starts[0], n.word_ends[0]) == (0, 6)  # the mark is inside the word
    assert n.char_starts[:2] == [0, 2]
    assert n.char_ends[0] == 2  # "e" maps to "e" + its combining accent
    assert normalize_key("école") == normalize_key("e\u0301cole") == "ecole"
    # A trailing combining mark is part of the last word too.
    n = normalize("cafe\u0301")
    assert n.word_ends == [5] and n.char_ends[-1] == 5


def test_greek_letters_are_spelled_out():
    assert normalize_key("α-tocopherol") == normalize_key("alpha-tocopherol") == "alpha tocopherol"
    assert normalize_key("β-thalassemia") == normalize_key("Beta thalassemia")
    assert normalize_key("Β-THALASSEMIA") == normalize_key("beta-thalassemia")  # capital beta
    assert normalize_key("TNF-α") == "TNF alpha"
    assert normalize_key("5µg") == "5mug"  # micro sign
    n = normalize("α-tocopherol")
    assert n.words == ["alpha", "tocopherol"]
    assert n.char_starts[:5] == [0] * 5 and n.char_ends[:5] == [1] * 5
    assert (n.word_starts, n.word_ends) == ([0, 2], [1, 12])
    assert normalize_key("α-tocopherol", NormalizerConfig(greek_names=False)) == "α tocopherol"


def test_unicode_folding():
    assert normalize_key("Straße") == normalize_key("STRASSE".lower()) == "strasse"
    assert normalize_key("ﬁbrosis") == "fibrosis"
    assert normalize_key("Ærø") == "aero"
    assert normalize_key("Sjögren syndrome") == normalize_key("Sjogren Syndrome")
    n = normalize("Straße")
    assert n.char_starts == [0, 1, 2, 3, 4, 4, 5]
    n = normalize("ﬁbrosis")
    assert n.char_starts[:3] == [0, 0, 1]


def test_hyphen_space_slash_variants_are_equal():
    forms = ["type 2 diabetes", "type-2 diabetes", "Type 2 Diabetes", "type/2 diabetes", "type\u20132 diabetes",
             "type_2  diabetes", " type (2) diabetes. "]
    assert len({normalize_key(f) for f in forms}) == 1
    assert normalize_key("non-Hodgkin lymphoma") == normalize_key("non Hodgkin lymphoma")
    assert normalize_key("Smith-Lemli-Opitz") == normalize_key("Smith Lemli Opitz")


def test_empty_and_separator_only_text():
    for text in ("", " ", "---", "😀", "\u0301", "'s"):
        n = normalize(text)
        assert n.text == "" == normalize_key(text)
        assert n.words == [] and n.char_starts == []


def test_to_original_checks_bounds():
    n = normalize("heart attack")
    assert n.to_original(6, 12) == (6, 12)
    with pytest.raises(IndexError):
        n.to_original(0, 13)
    with pytest.raises(IndexError):
        n.to_original(3, 3)


def test_config_round_trip_and_shared_instances():
    cfg = NormalizerConfig(acronym_max_len=3, fold_plurals=False)
    assert NormalizerConfig.from_dict(cfg.to_dict()) == cfg
    assert NormalizerConfig.from_dict({"unknown": 1}) == NormalizerConfig()
    assert NormalizerConfig.from_dict(None) == NormalizerConfig()
    assert get_normalizer(cfg) is get_normalizer(NormalizerConfig(acronym_max_len=3, fold_plurals=False))
    assert isinstance(get_normalizer(), Normalizer)
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_key_cache_does_not_change_results():
    norm = Normalizer()
    words = [f"word{i}s" for i in range(50)] + ["ALL", "all", "NSAIDs"]
    first = [norm.normalize_key(w) for w in words]
    norm._key_words.clear()
    assert [norm.normalize_key(w) for w in reversed(words)] == list(reversed(first))
    assert first[-3:] == ["ALL", "all", "NSAID"]


def test_invisible_format_characters_join_words():
    assert normalize_key("hyphen\u00adation") == "hyphenation"  # soft hyphen
    assert normalize_key("Crohn\u200d disease") == "crohn disease"  # zero-width joiner
    assert normalize_key("\ufeffDiabetes") == "diabete"  # BOM
    assert normalize_key("left\u200eright") == "leftright"  # direction mark
    assert normalize_key("zero\u200bwidth") == "zero width"  # the zero-width space separates
    n = normalize("\ufeffhyphen\u00adation x")
    assert n.words == ["hyphenation", "x"]
    assert (n.word_starts, n.word_ends) == ([1, 14], [13, 15])
    assert n.char_starts[6] == 8  # the "a" after the soft hyphen


# --- normalize_keys (compiled where built) equals normalize_key ----------------------------------
from hypothesis import example  # noqa: E402

from .fuzz import fuzz_settings  # noqa: E402

_NAMEISH = st.lists(st.sampled_from(list("abcXYZ019 -'’()αßéİﬁ\u0301\u00ad\u200bs.,/") + ["NSAIDs", "ALL", "'s", "ies"]),
                    max_size=20).map("".join)


@fuzz_settings(500)
@example(texts=["Crohn's disease", "NSAIDs", "ALLs", "allergies", "", "???", "α-tocopherol", "IgA nephropathy",
                "\u0301x", "x\u0301y", "'s", "s", "O'Brien's", "hepatitis A", "ﬁbrosis", "abscesses", "corpus"])
@given(texts=st.lists(st.one_of(_NAMEISH, st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)),
                      max_size=8))
def test_normalize_keys_equals_normalize_key(texts):
    for cfg in (NormalizerConfig(), NormalizerConfig(acronym_max_len=0, fold_plurals=False, greek_names=False)):
        norm = Normalizer(cfg)
        assert norm.normalize_keys(texts) == [norm.normalize_key(t) for t in texts]
