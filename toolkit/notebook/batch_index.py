"""A batch's key numbers and trend: what `index.html` and `runs.csv` show beyond run status.

Each run folder holds what its notebook wrote: `summary.json` for an audit (split pairs, and
with a policy the contact-level ones), `remediation.json` for a remediation (planned, written,
failed). `run_numbers` reads them; `series` lines up the runs of one notebook, this batch's and
those of earlier batches of the same batch file in the same reports folder (a scheduled series),
so the index shows where the numbers are going.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# runs.csv columns (after the run's own), in order; "" when a run has no such number.
NUMBER_COLUMNS = (
    "split_pairs",
    "contact_level_split_pairs",
    "split_contacts",
    "missing_assignments",
    "planned",
    "written",
    "failed_writes",
)
HISTORY_LIMIT = 12  # earlier batches read for the trend


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deeply
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: Any) -> int | str:
    if isinstance(value, bool) or value is None:
        return ""
    try:
        return int(value)
    except (TypeError, ValueError):
        return ""


def run_numbers(folder: Path | None) -> dict[str, Any]:
    """The key numbers a run wrote into its folder ("" for those it has not).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "summary.json").write_text('{"split_pairs": 1002, "split_contacts": 108}')
        >>> run_numbers(d)["split_pairs"], run_numbers(d)["written"]
        (1002, '')
    """
    numbers: dict[str, Any] = dict.fromkeys(NUMBER_COLUMNS, "")
    numbers["since_last_run"] = ""
    if folder is None:
        return numbers
    folder = Path(folder)
    summary = _read_json(folder / "summary.json")
    if summary:
        for key in ("split_pairs", "split_contacts", "missing_assignments"):
            numbers[key] = _int(summary.get(key))
        policy = summary.get("policy") or {}
        if isinstance(policy, dict):
            numbers["contact_level_split_pairs"] = _int(policy.get("contact_level_split_pairs"))
    since = _read_json(folder / "since_last_run.json")  # an audit compared with the last run
    if since:
        numbers["since_last_run"] = str(since.get("headline") or "")
    remediation = _read_json(folder / "remediation.json")
    if remediation:
        apply = remediation.get("apply") or {}
        plan = remediation.get("plan") or {}
        numbers["planned"] = _int(plan.get("rows", apply.get("planned_changes")))
        numbers["written"] = 0 if remediation.get("dry_run") else _int(apply.get("applied"))
        failed = _int(apply.get("failed"))
        missing = _int(apply.get("not_found"))
        missing_count = missing if isinstance(missing, int) else 0
        numbers["failed_writes"] = "" if isinstance(failed, str) else failed + missing_count
    return numbers


def headline_number(row: Mapping[str, Any]) -> tuple[str, int | str]:
    """The one number that says how a run went: contact-level split pairs (with a policy) or
    split pairs for an audit; changes written for a remediation."""
    if row.get("written", "") != "" or row.get("planned", "") != "":
        return "written", row.get("written", "")
    if row.get("contact_level_split_pairs", "") != "":
        return "contact-level split pairs", row["contact_level_split_pairs"]
    return "split pairs", row.get("split_pairs", "")


def batch_history(
    batch_folder: Path, base: str, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """Rows of the runs.csv of earlier batches of the same batch file in the same folder.

    Batch folders are `<stamp>-<base>` or `<stamp>-<base>-<n>` (`base` is `batch-<file stem>`);
    those sorting before `batch_folder` are the series so far. Each row gets `batch` (the
    folder name).
    """
    same = re.compile(re.escape(base) + r"(-\d+)?")
    earlier = sorted(
        p
        for p in batch_folder.parent.iterdir()
        if p.is_dir()
        and p.name < batch_folder.name
        and same.fullmatch(p.name.partition("-")[2])
        and (p / "runs.csv").is_file()
    )
    rows: list[dict[str, Any]] = []
    for folder in earlier[-limit:]:
        try:
            with (folder / "runs.csv").open(encoding="utf-8", newline="") as handle:
                rows.extend(dict(row, batch=folder.name) for row in csv.DictReader(handle))
        except OSError:
            continue
    return rows


def series(
    rows: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]] = ()
) -> list[tuple[str, str, list[tuple[str, int]]]]:
    """The trends an index shows: (series, what is counted, [(label, value), ...]).

    - Within this batch, the audits of one notebook in order (`audit-before` then `audit-after`:
      split pairs 74 -> 0).
    - Across batches, each run name's value in the earlier batches of the same batch file, then
      in this one (a scheduled series: `audit-weekly` 80 -> 74 -> 61).

    Only series of two or more points with the same measure are shown; failed runs are left out.
    """
    out: list[tuple[str, str, list[tuple[str, int]]]] = []
    audits: dict[str, list[tuple[str, str, int]]] = {}
    for row in rows:
        point = _point(row)
        if point and point[0] != "written":
            audits.setdefault(str(row.get("notebook", "")), []).append(
                (str(row.get("name", "")), *point)
            )
    for notebook, points in audits.items():
        _add(out, f"this batch: {notebook}", points)
    by_name: dict[str, list[tuple[str, str, int]]] = {}
    for row in history:
        point = _point(row)
        if point:
            stamp = str(row.get("batch", "")).split("-")[0]
            by_name.setdefault(str(row.get("name", "")), []).append((stamp, *point))
    for row in rows:
        name = str(row.get("name", ""))
        point = _point(row)
        if point and name in by_name:
            by_name[name].append(("this batch", *point))
    for name, points in by_name.items():
        _add(out, f"{name} over batches", points)
    return out


def _point(row: Mapping[str, Any]) -> tuple[str, int] | None:
    if row.get("status") not in ("succeeded", None):
        return None
    what, value = headline_number(row)
    value = _int(value)
    return None if value == "" else (what, int(value))


def _add(
    out: list[tuple[str, str, list[tuple[str, int]]]],
    label: str,
    points: list[tuple[str, str, int]],
) -> None:
    if not points:
        return
    what = points[-1][1]
    same = [(name, value) for name, w, value in points if w == what][-HISTORY_LIMIT:]
    if len(same) >= 2:
        out.append((label, what, same))


def sparkline(values: Sequence[int], width: int = 120, height: int = 24) -> str:
    """A small line of `values` as an image: SVG inside a data: URL, so the page holds no
    inline SVG element and the image can neither run script nor load anything.

    Example:
        >>> sparkline([3, 1, 0]).startswith('<img class="spark" src="data:image/svg+xml;base64,')
        True
    """
    if not values:
        return ""
    top = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><polyline fill="none" stroke="#0072B2" '
        f'stroke-width="2" points="{points}"/></svg>'
    )
    data = base64.b64encode(svg.encode("ascii")).decode("ascii")
    label = html.escape(" → ".join(f"{v:,}" for v in values))
    return (
        f'<img class="spark" src="data:image/svg+xml;base64,{data}" width="{width}" '
        f'height="{height}" alt="{label}">'
    )


def trend_html(trends: Sequence[tuple[str, str, list[tuple[str, int]]]]) -> str:
    """The trend section of the index: one row per notebook series."""
    if not trends:
        return "<h2>Trend</h2><p>none: no notebook has two or more runs with numbers yet.</p>"
    esc = html.escape
    body = []
    for label, what, points in trends:
        values = [v for _, v in points]
        change = values[-1] - values[0]
        arrow = "▼" if change < 0 else "▲" if change > 0 else "="
        change_text = f"{abs(change):,}" if change else "no change"
        steps = " → ".join(f"{esc(label)}: {value:,}" for label, value in points)
        body.append(
            f"<tr><td>{esc(label)}</td><td>{esc(what)}</td><td>{steps}</td>"
            f'<td class="num">{arrow} {change_text}</td><td>{sparkline(values)}</td></tr>'
        )
    return (
        "<h2>Trend</h2><p>The audits of this batch in order, and each run over the earlier batches "
        "of this batch file (same reports folder).</p>"
        "<table><thead><tr><th>series</th><th>counted</th><th>runs</th><th>change</th>"
        "<th></th></tr></thead><tbody>" + "\n".join(body) + "</tbody></table>"
    )


def number_cells(row: Mapping[str, Any]) -> str:
    """The index's number cells of a run: split pairs, writes (planned), failures."""

    def fmt(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) else html.escape(str(value))

    split = row.get("contact_level_split_pairs", "")
    split_text = fmt(split) + " (contact-level)" if split != "" else fmt(row.get("split_pairs"))
    planned, written = row.get("planned", ""), row.get("written", "")
    writes = f"{fmt(written)} of {fmt(planned)}" if planned != "" else ""
    return (
        f'<td class="num">{split_text}</td><td class="num">{writes}</td>'
        f'<td class="num">{fmt(row.get("failed_writes", ""))}</td>'
    )
