"""What a job starts from: the personal data a report holds, which opportunities are considered,
the policy, and the snapshot (loaded, fetched, or fetched into a file for `lever-tags snapshot`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.client import LeverClient
from toolkit.errors import ConfigurationError
from toolkit.policy import Policy, load_policy
from toolkit.redact import redact_frame, salt_kind
from toolkit.remediate.journal_views import journal_written_ids
from toolkit.snapshot.fetch import fetch_snapshot, refresh_snapshot
from toolkit.snapshot.frame import Snapshot
from toolkit.snapshot.store import load_snapshot, save_snapshot

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI

PERSONAL_DATA = ("none", "names", "pseudonyms")


def personal_data(with_names: bool = False, redact: bool = False) -> str:
    """The personal data a report holds: ``none``, ``names`` or ``pseudonyms`` (redact wins).

    Example:
        >>> personal_data(), personal_data(with_names=True), personal_data(True, redact=True)
        ('none', 'names', 'pseudonyms')
    """
    return "pseudonyms" if redact else "names" if with_names else "none"


def considered_archived(include_archived: bool = True, policy: Policy | None = None) -> bool:
    """Archived opportunities count only if both the caller and the policy allow them.

    Example:
        >>> considered_archived(True), considered_archived(False)
        (True, False)
        >>> considered_archived(True, Policy(include_archived=False))
        False
    """
    return bool(include_archived) and bool(getattr(policy, "include_archived", True))


def optional_policy(policy_path: str | os.PathLike | None = None) -> Policy | None:
    """The policy at `policy_path`, or None when none is given."""
    return load_policy(policy_path) if policy_path else None


def open_snapshot(
    snapshot_path: str | os.PathLike | None = None,
    *,
    client: LeverAPI | None = None,
    include_archived: bool = True,
    personal: str = "none",
    require_names: bool = False,
) -> Snapshot:
    """Load a saved snapshot, or fetch a fresh one (with the credential from the environment).

    Args:
        snapshot_path: a Parquet snapshot; None or "" fetches from Lever.
        client: a `LeverClient` for the fetch; default `LeverClient.from_env()`.
        include_archived: fetch archived opportunities too (a loaded snapshot is kept whole:
            the audit and the plan leave them out, and say so in the skipped rows).
        personal: ``none``, ``names`` (fetch names and emails) or ``pseudonyms`` (fetch them,
            then replace them by stable pseudonyms, `toolkit.redact`).
        require_names: a loaded snapshot without names is refused when names are asked for
            (a report that promises names must hold them).
    """
    if personal not in PERSONAL_DATA:
        raise ConfigurationError(f"personal data must be one of {', '.join(PERSONAL_DATA)}")
    if snapshot_path:
        snap = load_snapshot(snapshot_path)
        if require_names and personal != "none" and "name" not in snap.frame.columns:
            raise ConfigurationError(
                f"{snapshot_path} holds no names; fetch it with `lever-tags snapshot "
                "--with-personal`, or drop --with-names/--redact (with_personal/redact)"
            )
    else:
        snap = fetch_snapshot(
            client or LeverClient.from_env(),
            include_archived=include_archived,
            with_personal=personal != "none",
        )
    if personal == "pseudonyms" and "name" in snap.frame.columns:
        meta = dict(snap.meta, redacted=True, redaction=salt_kind())  # the kind, never the salt
        snap = Snapshot(redact_frame(snap.frame), meta)
    return snap


def take_snapshot(
    out: str | os.PathLike,
    *,
    client: LeverAPI | None = None,
    refresh: bool = False,
    journals: Sequence[str | os.PathLike] = (),
    **fetch: Any,
) -> Snapshot:
    """Fetch the account into the snapshot `out` (Parquet and its meta), or `refresh` it.

    What `lever-tags snapshot` does. A refresh needs the snapshot to exist; the `journals` of
    apply or rollback runs (refresh only) name opportunities to re-read whatever their
    `updatedAt` says. `fetch` goes to `fetch_snapshot` (include_archived, with_personal,
    workers); the client defaults to `LeverClient.from_env()`.
    """
    out = Path(out)
    if journals and not refresh:
        raise ConfigurationError(
            "--journal goes with --refresh (it names what a refresh must re-read)"
        )
    if refresh and not out.exists():
        raise ConfigurationError(
            f"--refresh needs an existing snapshot at {out}; run without --refresh"
        )
    if missing := [str(j) for j in journals if not Path(j).is_file()]:
        raise ConfigurationError(
            f"--journal {missing[0]}: no such file (give an apply or rollback journal)"
        )
    client = client or LeverClient.from_env()
    if refresh:
        snap = refresh_snapshot(client, load_snapshot(out), written=journal_written_ids(journals))
    else:
        snap = fetch_snapshot(client, **fetch)
    save_snapshot(snap, out)
    return snap
