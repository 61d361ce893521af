"""Inclusive `created_at` ranges and how the windowed listing cuts them (pure)."""

from __future__ import annotations

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
