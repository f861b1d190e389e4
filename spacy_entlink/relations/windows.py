"""Overlapping windows of a document's tokens that fit the reader's wordpiece budget."""

from dataclasses import dataclass
from typing import List, Optional, Sequence


@dataclass(frozen=True)
class Window:
    """Doc tokens `start`..`end` (end exclusive)."""

    start: int
    end: int


def make_windows(pieces: Sequence[int], max_tokens: int, overlap: int,
                 sent_starts: Optional[Sequence[bool]] = None) -> List[Window]:
    """Cover tokens with `pieces[i]` wordpieces each by windows of at most `max_tokens`
    wordpieces (a longer single token gets a window of its own), consecutive windows sharing
    about `overlap` wordpieces (at most half a window, so windows always advance by half). With `sent_starts`, a window ends at a sentence start when
    one lies in its second half, so sentences are split only when they are too long."""
    n = len(pieces)
    overlap = min(overlap, max_tokens // 2)
    if n == 0:
        return [Window(0, 0)]
    windows: List[Window] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and (end == start or used + pieces[end] <= max_tokens):
            used += pieces[end]
            end += 1
        if end < n and sent_starts is not None:
            half = start + (end - start) // 2
            cut = next((i for i in range(end - 1, half, -1) if sent_starts[i]), None)
            if cut is not None:
                end = cut
        windows.append(Window(start, end))
        if end >= n:
            return windows
        back, shared = end, 0
        while back - 1 > start and shared + pieces[back - 1] <= overlap:
            back -= 1
            shared += pieces[back]
        start = max(back, start + 1)
