"""Draft a policy from the evidence (`lever-tags policy draft`, notebook 02's "Draft policy")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.errors import ConfigurationError
from toolkit.files import sidecar, write_text_atomic
from toolkit.policy_draft import PolicyDraft, draft_policy
from toolkit.snapshot.frame import Snapshot
from toolkit.snapshot.store import save_snapshot
from toolkit.workflows.inputs import open_snapshot

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI


@dataclass
class DraftRun:
    """A drafted policy, where it was written, and the snapshot it came from."""

    draft: PolicyDraft
    snapshot: Snapshot
    snapshot_path: Path | None
    path: Path | None


def check_draft_target(out: str | os.PathLike, force: bool = False) -> Path:
    """Refuse a target that exists (without `force`) or cannot be written, before any fetch."""
    out = Path(out)
    if out.is_dir():
        raise ConfigurationError(f"--out must be a file name, and {out} is a folder")
    if not out.parent.is_dir():
        raise ConfigurationError(f"the folder of --out does not exist: {out.parent}")
    if out.exists() and not force:
        raise ConfigurationError(
            f"{out} exists; give another --out, or add --force to overwrite it"
        )
    return out


def draft_policy_file(
    out: str | os.PathLike | None,
    *,
    snapshot_path: str | os.PathLike | None = None,
    client: LeverAPI | None = None,
    include_archived: bool = True,
    force: bool = False,
) -> DraftRun:
    """Draft a policy from the account's evidence and write it to `out` (atomic, 0600).

    Nothing is written to Lever. Without a snapshot a fresh one is fetched (as `plan` does) and
    saved beside the policy as `<policy>.snapshot.parquet`. An existing `out` is refused unless
    `force`; `out=None` drafts without writing (the notebook shows the text).

    Args:
        out: the policy YAML to write, or None.
        snapshot_path: draft from this saved snapshot; None fetches one.
        client: a `LeverClient` for the fetch (default from the environment).
        include_archived: consider archived opportunities.
        force: overwrite an existing `out`.
    """
    target = check_draft_target(out, force) if out is not None else None
    snap = open_snapshot(snapshot_path, client=client, include_archived=include_archived)
    saved: Path | None = Path(snapshot_path) if snapshot_path else None
    if saved is None and target is not None:
        saved = save_snapshot(snap, sidecar(target, ".snapshot.parquet"))
    if snap.info.include_archived is False:
        include_archived = False  # archived ones were never fetched into this snapshot
    draft = draft_policy(snap.frame, include_archived=include_archived, source=str(saved or ""))
    if target is not None:
        write_text_atomic(target, draft.text)
    return DraftRun(draft=draft, snapshot=snap, snapshot_path=saved, path=target)
