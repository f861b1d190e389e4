from hypothesis import given, settings, strategies as st

from spacy_entlink.relations.windows import Window, make_windows


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), max_size=300), st.integers(4, 40), st.integers(0, 12))
def test_windows_cover_every_token_within_budget(pieces, budget, overlap):
    windows = make_windows(pieces, budget, overlap)
    assert windows[0].start == 0 and windows[-1].end == len(pieces)
    for a, b in zip(windows, windows[1:]):
        assert a.start < b.start <= a.end  # contiguous or overlapping, always moving on
    for w in windows:
        assert w.end > w.start or not pieces
        assert sum(pieces[w.start : w.end]) <= budget or w.end - w.start == 1


def test_windows_prefer_sentence_starts_and_overlap():
    pieces = [1] * 30
    sents = [i % 10 == 0 for i in range(30)]
    windows = make_windows(pieces, 16, 4, sents)
    assert windows[0] == Window(0, 10)  # cut at the sentence start 10, not mid-sentence at 16
    assert windows[1].start == 6  # 4 pieces shared with the first window
    assert make_windows([], 16, 4) == [Window(0, 0)]


def test_an_overlap_as_large_as_the_window_still_advances():
    windows = make_windows([1] * 1000, 64, 64)
    assert len(windows) < 40 and windows[-1].end == 1000
