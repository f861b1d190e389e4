"""Hypothesis settings of the fuzzing suite: a bounded, derandomised run for CI, more random
examples for local runs.

`ENTLINK_FUZZ_EXAMPLES=N` (e.g. 2000) runs each fuzz property on N random examples; unset,
each runs on `CI_EXAMPLES` examples drawn from a fixed seed, so CI is reproducible.
"""

import os

from hypothesis import HealthCheck, settings

CI_EXAMPLES = 40


def fuzz_settings(examples: int = CI_EXAMPLES) -> settings:
    """Settings for one fuzz property; `examples` is its CI budget (scaled up locally)."""
    local = os.environ.get("ENTLINK_FUZZ_EXAMPLES")
    return settings(
        max_examples=int(local) if local else examples,
        derandomize=not local,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# Characters that break naive readers: separators, quotes, escapes, line breaks of every
# kind, controls, NUL, BOM, combining marks, wide and right-to-left characters, digits of
# other scripts, and JSON escapes of lone surrogates.
NASTY = ["\t", "\n", "\r", "\r\n", " ", "|", ",", '"', "'", "\\", "{", "}", "[", "]", ":", "-", "+", "_", "0", "9",
         "\x00", "\x07", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\ufeff", "\u0301", "\u05d0", "\u0663", "\U0001F600",
         "\\ud800", "\\u0000", "\\n", "-1", "|t|", "|a|", "-DOCSTART-", "B", "I", "O", "U-", "L-", "é"]


def mutated(sample: str, max_edits: int = 6):
    """A strategy: `sample` with up to `max_edits` random insertions, deletions and
    replacements of characters or whole lines (NASTY pieces and arbitrary text)."""
    from hypothesis import strategies as st

    piece = st.one_of(st.sampled_from(NASTY), st.text(max_size=4))

    @st.composite
    def build(draw):
        text = sample
        for _ in range(draw(st.integers(0, max_edits))):
            kind = draw(st.sampled_from(["insert", "delete", "replace", "dup_line", "drop_line"]))
            pos = draw(st.integers(0, len(text)))
            if kind == "insert":
                text = text[:pos] + draw(piece) + text[pos:]
            elif kind == "delete":
                text = text[:pos] + text[pos + draw(st.integers(1, 3)):]
            elif kind == "replace":
                text = text[:pos] + draw(piece) + text[pos + 1:]
            else:
                lines = text.split("\n")
                k = min(pos * len(lines) // max(1, len(text) + 1), len(lines) - 1)
                lines[k:k + 1] = [lines[k], lines[k]] if kind == "dup_line" else []
                text = "\n".join(lines)
        return text

    return build()


def mutated_bytes(sample: str, max_edits: int = 6):
    """`mutated(sample)` as UTF-8 bytes, sometimes with a byte that is not UTF-8 or a cut."""
    from hypothesis import strategies as st

    @st.composite
    def build(draw):
        data = draw(mutated(sample, max_edits)).encode("utf8", "surrogatepass")
        if draw(st.booleans()) and data:
            pos = draw(st.integers(0, len(data)))
            data = data[:pos] + draw(st.sampled_from([b"\xff", b"\xe9", b"\xed\xa0\x80", b"\xc3", b""])) + data[pos:]
        return data

    return build()
