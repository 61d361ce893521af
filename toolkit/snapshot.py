"""Every considered opportunity, fetched fast, as a DataFrame; Parquet snapshots; refresh.

A single paginated listing is serial (each page needs the previous token), so `fetch_snapshot`
and `refresh_snapshot` list through `toolkit.fetch.WindowedListing`: `created_at` windows listed
in parallel under the client's one shared rate limiter, recut while they run so the limiter
stays busy whatever the spread of `createdAt`; a window's rest is handed on only while the pages
show Lever listing by `createdAt`, and every such range is listed again once they do not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from toolkit.client import LeverClient, deleted_ids
from toolkit.errors import (
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
from toolkit.fetch import Fetched, WindowedListing, fetch_opportunities
from toolkit.progress import progress_bar
from toolkit.sanitize import create_private, private_dir

log = logging.getLogger(__name__)

COLUMNS = [
    "opportunity_id",
    "contact_id",
    "tags",
    "archived",
    "archived_at",
    "confidential",
    "anonymized",
    "created_at",
    "updated_at",
]
PERSONAL_COLUMNS = ["name", "email"]
FULL_FETCH_DUE_DAYS = 7
REFRESH_OVERLAP_MS = 60_000  # a margin before the watermark: writes in flight, coarse clocks


@dataclass
class Snapshot:
    """A fetched set of opportunities (`frame`) and what is known about the fetch (`meta`)."""

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return list(self.meta.get("warnings", []))


def _ms(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return None


def _archived_at(opp: Mapping[str, Any]) -> tuple[bool, int | None]:
    """Both shapes: the `archived` object, or legacy top-level `archivedAt` / `archiveReason`."""
    archived = opp.get("archived")
    if isinstance(archived, Mapping):
        return True, _ms(archived.get("archivedAt"))
    legacy = opp.get("archivedAt")
    if legacy is not None:
        return True, _ms(legacy)
    return False, None


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [t for t in value if isinstance(t, str)]


def frame_from_opportunities(
    opportunities: Iterable[Mapping[str, Any]], with_personal: bool = False
) -> pd.DataFrame:
    """Parse Lever opportunity objects into the snapshot frame, defensively.

    Every field may be missing; unknown fields are ignored. An opportunity whose `contact` is
    absent keeps a missing `contact_id` (the audit treats it as a contact of its own).

    Args:
        opportunities: opportunity objects as Lever returns them.
        with_personal: add `name` and `email` (first email) columns.

    Returns:
        One row per opportunity with the columns in `COLUMNS` (and `PERSONAL_COLUMNS`).

    Example:
        >>> frame = frame_from_opportunities([{"id": "o1", "contact": "c1", "tags": ["Python"]}])
        >>> frame.loc[0, "tags"]
        ['Python']
    """
    rows: dict[str, list] = {c: [] for c in COLUMNS + (PERSONAL_COLUMNS if with_personal else [])}
    for opp in opportunities:
        opp_id = opp.get("id")
        if not isinstance(opp_id, str) or not opp_id:
            continue
        contact = opp.get("contact")
        if isinstance(contact, Mapping):  # expand=contact
            contact = contact.get("id")
        archived, archived_at = _archived_at(opp)
        rows["opportunity_id"].append(opp_id)
        rows["contact_id"].append(contact if isinstance(contact, str) and contact else None)
        rows["tags"].append(_tags(opp.get("tags")))
        rows["archived"].append(archived)
        rows["archived_at"].append(archived_at)
        rows["confidential"].append(opp.get("confidentiality") == "confidential")
        rows["anonymized"].append(bool(opp.get("isAnonymized")))
        rows["created_at"].append(_ms(opp.get("createdAt")))
        rows["updated_at"].append(_ms(opp.get("updatedAt")))
        if with_personal:
            name = opp.get("name")
            emails = opp.get("emails")
            rows["name"].append(name if isinstance(name, str) else None)
            first = emails[0] if isinstance(emails, list) and emails else None
            rows["email"].append(first if isinstance(first, str) else None)
    return _typed(pd.DataFrame(rows))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The snapshot dtypes, whatever the frame came from (a parse, Parquet, a concat)."""
    frame = frame.copy()
    frame["opportunity_id"] = frame["opportunity_id"].astype("string")
    frame["contact_id"] = frame["contact_id"].astype("string")
    frame["tags"] = pd.Series(
        [list(t) if t is not None else [] for t in frame["tags"]], index=frame.index, dtype=object
    )
    for column in ("archived", "confidential", "anonymized"):
        frame[column] = frame[column].astype(bool)
    for column in ("archived_at", "created_at", "updated_at"):
        frame[column] = pd.array(frame[column], dtype="Int64")
    for column in PERSONAL_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype("string")
    return frame.reset_index(drop=True)


def empty_frame(with_personal: bool = False) -> pd.DataFrame:
    """A snapshot frame with no rows and the right columns and dtypes."""
    return frame_from_opportunities([], with_personal=with_personal)


def fingerprint(frame: pd.DataFrame) -> str:
    """A short hash of every (id, tags, updatedAt): equal fingerprints, equal tag state.

    Example:
        >>> fingerprint(empty_frame())[:8]
        'e3b0c442'
    """
    if frame.empty:
        return hashlib.sha256(b"").hexdigest()
    keyed = pd.DataFrame(
        {
            "id": frame["opportunity_id"].astype(str),
            "tags": ["\x1f".join(sorted(set(t))) for t in frame["tags"]],
            "updated": frame["updated_at"].astype("Int64").astype(str),
        }
    )
    hashes = np.sort(pd.util.hash_pandas_object(keyed, index=False).to_numpy())
    return hashlib.sha256(hashes.tobytes()).hexdigest()


def watermark(frame: pd.DataFrame) -> int | None:
    """The latest change the snapshot saw (max of updatedAt and createdAt), in ms."""
    if frame.empty:
        return None
    values = pd.concat([frame["updated_at"], frame["created_at"]]).dropna()
    return int(values.max()) if len(values) else None


def safe_watermark(frame: pd.DataFrame, started_ms: int | None = None) -> int | None:
    """From when on changes may be missing from a snapshot, in ms (Lever's clock).

    A fetch takes time: an opportunity read early and changed later is in the snapshot as it
    was. Everything changed since the fetch began (`started_ms`, by the server's clock) or
    since the latest change the snapshot saw, whichever is earlier, minus a margin for writes
    in flight, must be re-read before anything relies on it (drift check, refresh).

    Example:
        >>> frame = frame_from_opportunities([{"id": "o1", "updatedAt": 200_000}])
        >>> safe_watermark(frame, started_ms=500_000)
        140000
    """
    seen = watermark(frame)
    marks = [m for m in (seen, started_ms) if m is not None]
    return min(marks) - REFRESH_OVERLAP_MS if marks else None


# -- fetching ---------------------------------------------------------------------------------


def _progress_bar(progress: bool | None, desc: str) -> tqdm:
    return progress_bar(progress, desc=desc, unit=" opp")


def fetch_snapshot(
    client: LeverClient,
    *,
    include_archived: bool = True,
    with_personal: bool = False,
    workers: int = 8,
    progress: bool | None = None,
    clock: Callable[[], float] = time.time,
    fetched: Fetched | None = None,
) -> Snapshot:
    """Fetch every considered opportunity into a `Snapshot`.

    Considered: confidential ones included (`confidentiality=all`; without confidential access
    the fetch continues on non-confidential data and says so in `meta["warnings"]`), archived
    ones included unless `include_archived` is False.

    Args:
        client: the client; its rate limiter paces every window's requests together.
        include_archived: keep archived opportunities.
        with_personal: keep names and emails (personal data: only when a report needs them).
        workers: the fewest windows listed at once (more when latency needs them; see
            `toolkit.fetch.WindowedListing`).
        progress: show a tqdm bar; None = in a terminal or Jupyter (see `toolkit.progress`).
        clock: seconds since the epoch (tests).
        fetched: the result of `toolkit.fetch.fetch_opportunities` with the same options, when
            already listed (the CLI lists while pandas loads); None = list now.
    """
    now_ms = int(clock() * 1000)
    if fetched is None:
        fetched = fetch_opportunities(
            client,
            include_archived=include_archived,
            workers=workers,
            progress=progress,
            now_ms=now_ms,
        )
    filters, warnings_ = fetched.filters, fetched.warnings
    started_ms = fetched.server_started_ms or now_ms  # Lever's clock when it first answered
    frame = frame_from_opportunities(fetched.items.values(), with_personal=with_personal)
    access = confidential_access_seen(filters, warnings_, frame)
    if access is None:
        log.warning(UNKNOWN_ACCESS_WARNING)
        warnings_.append(UNKNOWN_ACCESS_WARNING)
    elapsed = time.monotonic() - fetched.started
    fetched_at = datetime.fromtimestamp(clock(), UTC)
    meta = {
        "fetched_at": fetched_at.isoformat(timespec="seconds"),
        "full_fetch_at": fetched_at.isoformat(timespec="seconds"),
        "host": urlsplit(client.base_url).netloc,
        "filters": dict(filters),
        "include_archived": include_archived,
        "with_personal": with_personal,
        "confidential_access": access,
        "warnings": warnings_,
        "counts": _counts(frame),
        "fingerprint": fingerprint(frame),
        "watermark": safe_watermark(frame, started_ms),
        "fetch": {
            "seconds": round(elapsed, 3),
            **fetched.stats,
            "opportunities_per_second": round(len(frame) / elapsed, 1) if elapsed else None,
        },
    }
    return Snapshot(frame, meta)


UNKNOWN_ACCESS_WARNING = (
    "confidentiality=all returned no confidential opportunity: either the account has none, or "
    "this key has no confidential access and Lever left them out silently, and the audit is "
    "then incomplete; confidential_access is unknown. Check the key in Lever (Settings > "
    "Integrations and API > API Credentials: the key's confidential access) or run "
    "`lever-tags doctor`"
)


def confidential_access_seen(
    filters: Mapping[str, Any], warnings_: list[str], frame: pd.DataFrame
) -> bool | None:
    """Whether the key reads confidential data: True, False (403), or None (unknown).

    Lever may answer a key without confidential access with a 403 or by leaving confidential
    opportunities out [guess: both reported]. A `confidentiality=all` fetch that holds none at
    all cannot tell a restricted key from an account without confidential data.

    Example:
        >>> confidential_access_seen({"confidentiality": "all"}, [], empty_frame()) is None
        True
    """
    if filters.get("confidentiality") != "all":
        return False
    if frame.empty or not bool(frame["confidential"].any()):
        return None
    return True


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    return {
        "opportunities": len(frame),
        "confidential": int(frame["confidential"].sum()),
        "archived": int(frame["archived"].sum()),
        "anonymized": int(frame["anonymized"].sum()),
        "without_contact": int(frame["contact_id"].isna().sum()),
    }


def refresh_snapshot(
    client: LeverClient,
    snapshot: Snapshot,
    *,
    written: Iterable[str] = (),
    progress: bool | None = None,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Fetch only what changed since `snapshot` and merge it in.

    Cheap listings: opportunities updated since the watermark, those created since it (new ones
    whose `updatedAt` is still null), and Lever's "List deleted opportunities" since it (dropped
    from the result). Lever does not promise that a tag write moves `updatedAt`, so the
    opportunities a run of this toolkit wrote (`written`, from its journals: see
    `journal_written_ids`) are re-read too, by contact in batches. When the deleted listing
    is not available, `meta` says that deletions were not detected and when a full fetch is
    due (`FULL_FETCH_DUE_DAYS` after the last one).

    Args:
        client: the client.
        snapshot: the snapshot to bring up to date.
        written: opportunity ids the toolkit wrote since the snapshot.
        progress: a tqdm bar; None = in a terminal or Jupyter.
        clock: seconds since the epoch (tests).
    """
    mark = snapshot.meta.get("watermark")
    if mark is None:
        mark = safe_watermark(snapshot.frame)
    if mark is None:
        return fetch_snapshot(
            client,
            include_archived=snapshot.meta.get("include_archived", True),
            with_personal=snapshot.meta.get("with_personal", False),
            progress=progress,
            clock=clock,
        )
    started = time.monotonic()
    stats_before = client.stats.as_dict()
    include_archived = bool(snapshot.meta.get("include_archived", True))
    # Without the archived filter: an opportunity archived since the snapshot must be seen (and
    # dropped below when archived ones are excluded), not kept as it was.
    filters = {
        k: v
        for k, v in (snapshot.meta.get("filters") or {"confidentiality": "all"}).items()
        if k != "archived"
    }
    since = int(mark)
    bar = _progress_bar(progress, "changed opportunities")
    # Both listings at once under the limiter, a long one cut into created_at windows.
    listing = WindowedListing(client, on_items=bar.update, now_ms=int(clock() * 1000))
    changed = listing.run(
        [({**filters, "updated_at_start": since}, (None, None)), (filters, (since, None))]
    )
    for opp in _reread_written(client, snapshot.frame, filters, set(written) - set(changed)):
        changed[opp["id"]] = opp
        bar.update(1)
    bar.close()
    deleted, deleted_note = _deleted_since(client, since)
    started_ms = client.server_time_ms or int(clock() * 1000)
    with_personal = bool(snapshot.meta.get("with_personal", False))
    fresh = frame_from_opportunities(changed.values(), with_personal=with_personal)
    old = snapshot.frame[~snapshot.frame["opportunity_id"].isin(fresh["opportunity_id"])]
    if not include_archived:
        fresh = fresh[~fresh["archived"]]
    merged = _typed(pd.concat([old, fresh], ignore_index=True)) if len(fresh) else old.copy()
    dropped_deleted = int(merged["opportunity_id"].isin(deleted).sum())
    merged = merged[~merged["opportunity_id"].isin(deleted)]
    merged = merged.sort_values("opportunity_id", kind="stable").reset_index(drop=True)
    meta = dict(snapshot.meta)
    now = datetime.fromtimestamp(clock(), UTC)
    full_at = datetime.fromisoformat(meta.get("full_fetch_at") or meta.get("fetched_at"))
    due = full_at + timedelta(days=FULL_FETCH_DUE_DAYS)
    notes = [w for w in meta.get("warnings", []) if not w.startswith("incremental refresh")]
    if deleted_note:
        notes.append(
            f"incremental refresh: deleted opportunities are not detected ({deleted_note}); "
            f"a full fetch is due by {due.date().isoformat()}"
        )
    stats_after = client.stats.as_dict()
    elapsed = time.monotonic() - started
    meta.update(
        refreshed_at=now.isoformat(timespec="seconds"),
        refreshed_since=since,
        refreshed_changed=len(changed),
        refreshed_written=len(set(written)),
        refreshed_deleted=dropped_deleted,
        full_fetch_due=now >= due,
        warnings=notes,
        counts=_counts(merged),
        fingerprint=fingerprint(merged),
        watermark=safe_watermark(merged, started_ms),
        fetch={
            "kind": "refresh",
            "seconds": round(elapsed, 3),
            "requests": stats_after["requests"] - stats_before["requests"],
            "retries": stats_after["retries"] - stats_before["retries"],
            "rate_limited": stats_after["rate_limited"] - stats_before["rate_limited"],
        },
    )
    return Snapshot(merged, meta)


def _reread_written(
    client: LeverClient,
    frame: pd.DataFrame,
    filters: Mapping[str, Any],
    ids: set[str],
    batch: int = 50,
) -> list[dict]:
    """The opportunities in `ids` as they are now: by their contacts in batches, else by id."""
    if not ids:
        return []
    known = frame[frame["opportunity_id"].isin(ids)]
    contacts = sorted({c for c in known["contact_id"].dropna().astype(str) if c})
    found: dict[str, dict] = {}
    for i in range(0, len(contacts), batch):
        for opp in client.iter_opportunities(**filters, contact_id=contacts[i : i + batch]):
            if isinstance(opp.get("id"), str) and opp["id"] in ids:
                found[opp["id"]] = opp
    for opp_id in sorted(ids - set(found)):
        try:
            found[opp_id] = client.get_opportunity(opp_id)
        except NotFoundError:
            continue  # deleted: the deleted listing (or the next full fetch) drops it
    return list(found.values())


def _deleted_since(client: LeverClient, since: int) -> tuple[set[str], str | None]:
    """Ids from "List deleted opportunities" since `since`; (ids, None) or (empty, why not)."""
    try:
        items = list(client.iter_deleted_opportunities(deleted_at_start=since))
    except (NotFoundError, PermissionDeniedError, BadRequestError) as exc:
        return set(), f"GET /opportunities/deleted answered {exc.status}"
    except UnexpectedResponseError as exc:
        return set(), f"GET /opportunities/deleted: {exc.message}"
    return set(deleted_ids(items)), None


def journal_written_ids(paths: Iterable[str | os.PathLike]) -> set[str]:
    """The opportunities the runs of these journals wrote (or may have written).

    Example:
        >>> journal_written_ids(["plan.journal.sqlite"])  # doctest: +SKIP
        {'0b1c...', ...}
    """
    from toolkit.journal import DONE, FAILED, INTENT, Journal

    out: set[str] = set()
    for path in paths:
        with Journal(path, lock=False, create=False) as journal:
            for call in journal.calls([DONE, INTENT, FAILED]):
                out.add(call.opportunity_id)
    return out


# -- files ------------------------------------------------------------------------------------


def meta_path(path: str | os.PathLike) -> Path:
    """Where the metadata of the snapshot at `path` lives: `<name>.meta.json` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def save_snapshot(snapshot: Snapshot, path: str | os.PathLike) -> Path:
    """Write the frame as Parquet and the metadata as JSON, each atomically."""
    path = Path(path)
    private_dir(path.parent)  # folders it creates: 0700; files: 0600 (names, emails, tags)
    tmp = path.with_name(f".{path.name}.tmp")
    create_private(tmp)
    snapshot.frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    meta_tmp = path.with_name(f".{path.name}.meta.tmp")
    create_private(meta_tmp)
    meta_tmp.write_text(json.dumps(snapshot.meta, indent=2, sort_keys=True, default=str))
    os.replace(meta_tmp, meta_path(path))
    return path


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot written by `save_snapshot`.

    Raises:
        ConfigurationError: the file is missing or is not a snapshot.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(
            f"snapshot file not found: {path} (write one with `lever-tags snapshot --out {path}`)"
        )
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise ConfigurationError(
            f"{path} is not a Parquet snapshot ({type(exc).__name__})"
        ) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigurationError(f"{path} is not a snapshot: missing columns {', '.join(missing)}")
    meta: dict[str, Any] = {}
    if meta_path(path).is_file():
        try:
            meta = json.loads(meta_path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{meta_path(path)} is not valid JSON (line {exc.lineno})"
            ) from None
    frame = _typed(frame)
    meta.setdefault("fingerprint", fingerprint(frame))
    meta.setdefault("watermark", safe_watermark(frame))
    return Snapshot(frame, meta)
