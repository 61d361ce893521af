"""The sync-activity report's tables and chart, read from a sync journal (pure reads, no lock).

`lever-tags report sync-activity -p journal_path lever-sync.sqlite` runs
``notebooks/04-sync-activity.ipynb``, which calls only these functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from toolkit.enums import FAILURE_STATES, InboxState, WriteState
from toolkit.errors import ConfigurationError
from toolkit.files import write_csv_atomic
from toolkit.sync.store import SyncJournal

DEFAULT_JOURNAL = "lever-sync.sqlite"
INBOX_COLUMNS = ["id", "source", "event", "contact_id", "opportunity_id", "triggered_at",
                 "received_at", "state", "attempts", "finished_at", "message"]  # fmt: skip
WRITE_COLUMNS = ["id", "contact_id", "opportunity_id", "op", "tags", "state", "status",
                 "message", "trigger", "started_at", "finished_at"]  # fmt: skip


@dataclass
class SyncActivity:
    """A sync journal's contents as frames (times as UTC timestamps).

    Attributes:
        path: the journal read (None when there was none).
        inbox: one row per event (webhook or poll).
        writes: one row per write call (``dry_run`` rows: what a dry run would have sent).
        checks: one row per finished contact check.
        removals: contact-level tags found removed from one opportunity.
        params: the service's parameters (last start).
    """

    path: Path | None
    inbox: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=INBOX_COLUMNS))
    writes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=WRITE_COLUMNS))
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)
    removals: pd.DataFrame = field(default_factory=pd.DataFrame)
    params: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> str:
        """What the service did, in words (`activity_headline`)."""
        return activity_headline(self)

    def summary(self) -> pd.DataFrame:
        """The totals, one row per measure (`activity_summary`)."""
        return activity_summary(self)


def _times(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    return frame


def load_sync_activity(journal_path: str | os.PathLike = "") -> SyncActivity:
    """Read a sync journal. ``""``: ``lever-sync.sqlite`` in the current folder if it exists,
    else an empty activity (nothing has run yet).

    Raises:
        ConfigurationError: a given path that is missing or not a sync journal.

    Example:
        >>> load_sync_activity("").inbox.empty  # doctest: +SKIP
        True
    """
    path = Path(journal_path) if journal_path else Path(DEFAULT_JOURNAL)
    if not path.is_file():
        if journal_path:
            raise ConfigurationError(f"no sync journal at {path}; give lever-tags sync's --journal")
        return SyncActivity(path=None)
    with SyncJournal(path, lock=False, create=False) as journal:
        run = journal.run() or {}
        if run.get("kind") not in (None, "sync"):
            raise ConfigurationError(f"{path} is the journal of an {run['kind']} run, not of sync")
        inbox = journal.sync_table("sync_inbox")
        writes = journal.sync_table("sync_writes")
        events = journal.events()
    inbox = _times(
        inbox.reindex(columns=INBOX_COLUMNS), ["triggered_at", "received_at", "finished_at"]
    )
    writes = _times(writes.reindex(columns=WRITE_COLUMNS), ["started_at", "finished_at"])

    def detail(kind: str) -> pd.DataFrame:
        rows = events[events["kind"] == kind]
        frame = pd.DataFrame(list(rows["detail"]), index=rows.index)
        frame.insert(0, "at", pd.to_datetime(rows["at"], utc=True, format="ISO8601"))
        return frame.reset_index(drop=True)

    return SyncActivity(
        path=path,
        inbox=inbox,
        writes=writes,
        checks=detail("check"),
        removals=detail("removal"),
        params=run.get("params") or {},
    )


def activity_summary(activity: SyncActivity) -> pd.DataFrame:
    """Totals: events by source, refused are not journaled (see /metrics), checks, writes.

    Example:
        >>> activity_summary(SyncActivity(path=None)).set_index("measure")["value"]["writes"]
        0
    """
    inbox, writes = activity.inbox, activity.writes
    sent = writes[writes["state"] != WriteState.DRY_RUN]
    rows = [
        ("journal", str(activity.path) if activity.path else "(none yet)"),
        ("dry run", bool(activity.params.get("dry_run", True)) if activity.params else "-"),
        ("events from webhooks", int((inbox["source"] == "webhook").sum())),
        ("events from polling", int((inbox["source"] == "poll").sum())),
        (
            "events waiting",
            int(inbox["state"].isin([InboxState.QUEUED, InboxState.PROCESSING]).sum()),
        ),
        ("events failed", int((inbox["state"] == InboxState.FAILED).sum())),
        ("contacts checked", len(activity.checks)),
        ("writes", int((sent["state"] == WriteState.DONE).sum())),
        ("tags written", int(sent.loc[sent["state"] == WriteState.DONE, "tags"].map(len).sum())),
        ("writes a dry run would make", int((writes["state"] == WriteState.DRY_RUN).sum())),
        ("failed writes", int(sent["state"].isin(FAILURE_STATES).sum())),
        ("removals detected", len(activity.removals)),
    ]
    return pd.DataFrame(rows, columns=["measure", "value"]).astype({"value": object})


_FREQS = ("1min", "10min", "1h", "6h", "1D", "7D")


def auto_freq(activity: SyncActivity, buckets: int = 48) -> str:
    """The finest bucket size that shows the journal's time span in at most `buckets` buckets.

    Example:
        >>> auto_freq(SyncActivity(path=None))
        '1min'
    """
    times = pd.to_datetime(pd.Series(activity.inbox["received_at"]), utc=True).dropna()
    if times.empty:
        return _FREQS[0]
    span = times.max() - times.min()
    for freq in _FREQS:
        if span / pd.Timedelta(freq) <= buckets:
            return freq
    return _FREQS[-1]


def activity_over_time(activity: SyncActivity, freq: str = "auto") -> pd.DataFrame:
    """Events, checks, writes, writes a dry run would make, and failures per time bucket (UTC);
    ``auto``: see `auto_freq`. ``writes`` are the writes Lever got, never a dry run's.

    Example:
        >>> activity_over_time(SyncActivity(path=None)).columns.tolist()
        ['events', 'checks', 'writes', 'dry-run writes', 'failures']
    """
    if freq == "auto":
        freq = auto_freq(activity)
    series = {
        "events": activity.inbox["received_at"],
        "checks": activity.checks["at"] if "at" in activity.checks else pd.Series(dtype=object),
        "writes": activity.writes.loc[activity.writes["state"] == WriteState.DONE, "started_at"],
        "dry-run writes": activity.writes.loc[
            activity.writes["state"] == WriteState.DRY_RUN, "started_at"
        ],
        "failures": activity.writes.loc[
            activity.writes["state"].isin(FAILURE_STATES), "started_at"
        ],
    }
    counts = {}
    for name, times in series.items():
        times = pd.to_datetime(pd.Series(times), utc=True)
        counts[name] = times.dt.floor(freq).value_counts() if len(times) else pd.Series(dtype=int)
    frame = pd.DataFrame(counts).fillna(0).astype(int).sort_index()
    if len(frame) and (frame.index[-1] - frame.index[0]) / pd.Timedelta(freq) < 500:
        every = pd.date_range(frame.index[0], frame.index[-1], freq=freq)  # quiet buckets too
        frame = frame.reindex(every, fill_value=0)
    frame.index.name = "time (UTC)"
    return frame.reindex(columns=list(series))


def writes_per_tag(activity: SyncActivity) -> pd.DataFrame:
    """Per (op, tag): opportunities written, failed, and what a dry run would write.

    Example:
        >>> writes_per_tag(SyncActivity(path=None)).columns.tolist()
        ['op', 'tag', 'written', 'failed', 'dry_run']
    """
    columns = ["op", "tag", "written", "failed", "dry_run"]
    writes = activity.writes
    if writes.empty:
        return pd.DataFrame(columns=columns)
    exploded = writes.explode("tags").rename(columns={"tags": "tag"})
    exploded["outcome"] = exploded["state"].map(
        {
            WriteState.DONE: "written",
            WriteState.FAILED: "failed",
            WriteState.NOT_FOUND: "failed",
            WriteState.DRY_RUN: "dry_run",
        }
    )
    table = exploded.pivot_table(
        index=["op", "tag"], columns="outcome", values="id", aggfunc="count", fill_value=0
    )
    table = table.reindex(columns=["written", "failed", "dry_run"], fill_value=0).reset_index()
    table.columns.name = None
    return table.sort_values(["written", "tag"], ascending=[False, True]).reset_index(drop=True)


def sync_failures(activity: SyncActivity) -> pd.DataFrame:
    """Failed writes and failed events, newest first."""
    writes = activity.writes
    failed = writes[writes["state"].isin(FAILURE_STATES)]
    rows = failed.assign(what="write", at=failed["started_at"])[
        ["at", "what", "contact_id", "opportunity_id", "op", "tags", "status", "message"]
    ]
    inbox = activity.inbox[activity.inbox["state"] == InboxState.FAILED]
    events = inbox.assign(what="event", at=inbox["received_at"], op=None, tags=None, status=None)[
        ["at", "what", "contact_id", "opportunity_id", "op", "tags", "status", "message"]
    ]
    frames = [f for f in (rows, events) if not f.empty]
    if not frames:
        return rows.iloc[0:0]
    return pd.concat(frames).sort_values("at", ascending=False).reset_index(drop=True)


def activity_chart(activity: SyncActivity, freq: str = "auto") -> Any:
    """Events, checks, writes (a dry run's apart) and failures per time bucket, as a matplotlib
    Figure (bars). A plain `Figure`, not pyplot's: the report shows it once, as its image."""
    if freq == "auto":
        freq = auto_freq(activity)
    table = activity_over_time(activity, freq)
    table = table.loc[:, (table != 0).any(axis=0)] if len(table) else table  # no empty series
    fig = Figure(figsize=(9, 3.5), dpi=100)
    ax = fig.subplots()
    if table.empty:
        ax.text(0.5, 0.5, "no sync activity yet", ha="center", va="center")
        ax.set_axis_off()
    else:
        labels = table.copy()
        labels.index = [t.strftime("%m-%d %H:%M") for t in table.index]
        labels.plot.bar(ax=ax, width=0.8, rot=45)
        ax.set_ylabel(f"per {freq}")
        ax.set_xlabel("UTC")
    ax.set_title("Sync activity: events, checks, writes, failures", loc="left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def activity_headline(activity: SyncActivity) -> str:
    """What the service did, in one or two sentences (the report's headline).

    Example:
        >>> activity_headline(SyncActivity(path=None))
        'No sync journal yet: start `lever-tags sync --journal FILE` and run this report on FILE.'
    """
    if activity.path is None:
        return (
            "No sync journal yet: start `lever-tags sync --journal FILE` and run this report "
            "on FILE."
        )
    inbox, writes = activity.inbox, activity.writes
    times = pd.to_datetime(pd.Series(inbox["received_at"]), utc=True).dropna()
    span = (
        f"from {times.min():%Y-%m-%d %H:%M} to {times.max():%Y-%m-%d %H:%M} UTC"
        if len(times)
        else "so far"
    )
    done = writes[writes["state"] == WriteState.DONE]
    would = writes[writes["state"] == WriteState.DRY_RUN]
    failed = int(writes["state"].isin(FAILURE_STATES).sum())
    dry = bool(activity.params.get("dry_run", True)) if activity.params else True
    first = (
        f"{span}: {len(inbox):,} events ({int((inbox['source'] == 'webhook').sum()):,} webhooks, "
        f"{int((inbox['source'] == 'poll').sum()):,} from polling), {len(activity.checks):,} "
        f"contacts checked"
    )
    if dry and not len(done):
        second = (
            f"A dry run: nothing was written; {len(would):,} writes "
            f"({int(would['tags'].map(len).sum()):,} tags) would have been made"
        )
    else:
        second = (
            f"{len(done):,} writes ({int(done['tags'].map(len).sum()):,} tags) made, "
            f"{failed:,} failed"
        )
    removed = len(activity.removals)
    third = f"{removed:,} contact-level tags found removed from one opportunity" if removed else ""
    return ". ".join(p for p in (first[0].upper() + first[1:], second, third) if p) + "."


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """List cells as one comma-separated string (CSV has no lists); formula-safety is
    `write_csv_atomic`'s job, done once, so nothing is escaped twice."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_object_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: ", ".join(map(str, v)) if isinstance(v, list) else v
            )
    return out


def write_activity_artifacts(
    activity: SyncActivity, output_dir: str | os.PathLike
) -> dict[str, Path]:
    """The report's tables as CSV files in `output_dir` (formula-safe: `write_csv_atomic`)."""
    folder = Path(output_dir)
    paths = {
        "summary": folder / "sync_summary.csv",
        "per_tag": folder / "sync_writes_per_tag.csv",
        "over_time": folder / "sync_over_time.csv",
        "failures": folder / "sync_failures.csv",
    }
    write_csv_atomic(paths["summary"], _flat(activity_summary(activity)))
    write_csv_atomic(paths["per_tag"], _flat(writes_per_tag(activity)))
    write_csv_atomic(paths["over_time"], activity_over_time(activity).reset_index())
    write_csv_atomic(paths["failures"], _flat(sync_failures(activity)))
    return paths


__all__ = [
    "SyncActivity",
    "activity_chart",
    "activity_headline",
    "activity_over_time",
    "activity_summary",
    "auto_freq",
    "load_sync_activity",
    "sync_failures",
    "write_activity_artifacts",
    "writes_per_tag",
]
