"""Inclusive `created_at` ranges and how the windowed listing cuts them (pure)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

Window = tuple[int | None, int | None]  # inclusive created_at bounds in ms; None = open

FLOOR_MS = 1_325_376_000_000  # 2012-01-01: no Lever account is older (estimates only)


def floor_of(position: int) -> int:
    """Where an open-ended window below `position` is assumed to end (estimates only).

    Example:
        >>> floor_of(1_700_000_000_000), floor_of(5)
        (1325376000000, 0)
    """
    return FLOOR_MS if position > FLOOR_MS else 0


def stepped_parts(window: Window, start: int, step: int, count: int) -> list[Window]:
    """`count` windows of `|step|` ms from `start` (upward for a positive step, downward for a
    negative one), then one window for the rest of `window` beyond them.

    Example:
        >>> stepped_parts((None, None), 100, 10, 2)
        [(100, 109), (110, 119), (120, None)]
        >>> stepped_parts((0, 100), 100, -10, 2)
        [(91, 100), (81, 90), (0, 80)]
    """
    bounds = [start + i * step for i in range(count + 1)]
    if step > 0:
        out: list[Window] = [(bounds[i], bounds[i + 1] - 1) for i in range(count)]
        return [*out, (bounds[-1], window[1])]
    out = [(bounds[i + 1] + 1, bounds[i]) for i in range(count)]
    return [*out, (window[0], bounds[-1])]


def split_window(window: Window, lo: int, hi: int, parts: int) -> list[Window]:
    """Split an inclusive window into `parts` contiguous windows of equal time.

    Open ends stay open (the first part keeps an open start, the last an open end); `lo` and
    `hi` stand in for them when computing the cut points.

    Example:
        >>> split_window((None, None), 0, 99, 2)
        [(None, 49), (50, None)]
    """
    start = window[0] if window[0] is not None else lo
    end = window[1] if window[1] is not None else hi
    if end - start < parts or parts < 2:
        return [window]
    step = (end - start + 1) // parts
    bounds = [start + i * step for i in range(parts)] + [end + 1]
    out: list[Window] = []
    for i in range(parts):
        a = window[0] if i == 0 else bounds[i]
        b = window[1] if i == parts - 1 else bounds[i + 1] - 1
        out.append((a, b))
    return out


def quantile_window_parts(window: Window, sample: list[int], parts: int) -> list[Window]:
    """Split a window at the quantiles of a sample of its `createdAt` values.

    Example:
        >>> quantile_window_parts((None, None), [1, 2, 3, 10, 11, 12], 2)
        [(None, 9), (10, None)]
    """
    values = sorted(sample)
    cuts: list[int] = []
    for i in range(1, parts):
        cut = values[len(values) * i // parts]
        above = (window[0] is None or cut > window[0]) and (not cuts or cut > cuts[-1])
        if above and (window[1] is None or cut <= window[1]):
            cuts.append(cut)
    bounds = [window[0], *cuts]
    return [(bounds[i], cuts[i] - 1) for i in range(len(cuts))] + [(bounds[-1], window[1])]


def crowd_band(
    values: list[int], span: int, share: float = 0.6, narrow: int = 8
) -> tuple[int, int] | None:
    """The narrow band where most of a page's `createdAt` values crowd (a bulk import), or None.

    The crowd starts as the shortest range holding `share` of the values and grows over every
    neighbour closer than 8 times the mean gap inside it; it is a crowd when it is at most
    `1/narrow` of `span` (the span of the page along the key it is sorted by). The band returned
    is the crowd widened by a quarter of its width on each side.

    Example:
        >>> crowd_band([0, 50, 500, 501, 502, 503, 504, 505, 520, 900, 1000], 1000)
        (494, 526)
        >>> crowd_band(list(range(0, 1000, 100)), 1000) is None
        True
    """
    ordered = sorted(values)
    take = max(2, math.ceil(len(ordered) * share))
    if len(ordered) < take:
        return None
    width, i = min((ordered[i + take - 1] - ordered[i], i) for i in range(len(ordered) - take + 1))
    gap = 8 * max(1.0, width / (take - 1))
    j, k = i, i + take - 1
    while j > 0 and ordered[j] - ordered[j - 1] <= gap:
        j -= 1
    while k < len(ordered) - 1 and ordered[k + 1] - ordered[k] <= gap:
        k += 1
    width = ordered[k] - ordered[j]
    if (width + 1) * narrow > span:
        return None
    pad = width // 4 + 1
    return ordered[j] - pad, ordered[k] + pad


def merge_unseen(parts: list[Window], seen: list[int]) -> list[Window]:
    """Contiguous `parts` in order; each run of parts where no value of `seen` lies becomes one.

    A cut that would give several windows to a stretch of time where nothing was seen (a gap
    between two hiring bursts) spends one empty page per window; merged, one page at most.

    Example:
        >>> merge_unseen([(None, 9), (10, 19), (20, 29), (30, None)], [5, 35])
        [(None, 9), (10, 29), (30, None)]
    """
    values = sorted(seen)
    out: list[Window] = []
    last_empty = False
    for lo, hi in sorted(parts, key=lambda w: -math.inf if w[0] is None else w[0]):
        start = 0 if lo is None else bisect_left(values, lo)
        end = len(values) if hi is None else bisect_right(values, hi)
        empty = end <= start
        if empty and last_empty:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
        last_empty = empty
    return out
