"""What a plan records about itself, typed: `PlanMeta` and its `PlanSnapshotRef` (pure).

A plan's metadata is `plan.meta.json` beside the plan CSV (`toolkit.remediate.planfile`) and a
dict in memory (`Plan.meta`, which the planner and the workflows fill); readers take it typed
through `Plan.info`. Like `toolkit.snapshot.meta.SnapshotMeta`: `from_dict` is tolerant (a
missing key gets its default, an unknown one is kept in `extra`, an older file loads) and
`to_dict(from_dict(d)) == d`, keys in d's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from toolkit.snapshot.meta import MetaRecord


@dataclass(frozen=True, slots=True)
class PlanSnapshotRef(MetaRecord):
    """The snapshot a plan was made from (`meta["snapshot"]`); a rollback's names its run's.

    Attributes:
        fingerprint, watermark: the snapshot's identity and Lever's clock when it was fetched.
        fetched_at, host, account: where and when; opportunities: its size.
        confidential_access: whether its key read confidential opportunities (None: unknown).
        path: the snapshot file or "live" (set by the plan workflow).
    """

    fingerprint: str | None = None
    watermark: int | None = None
    fetched_at: str | None = None
    host: str | None = None
    account: dict[str, Any] | None = None
    opportunities: int | None = None
    confidential_access: bool | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class PlanMeta(MetaRecord):
    """A plan's metadata (`toolkit.remediate.planner` writes it; `Plan.info` reads it).

    Attributes:
        version, mode, tags, families, renames, policy, include_archived, skip_anonymized,
            created_at: the request the plan answers.
        snapshot: `PlanSnapshotRef`. sources: for each added tag, where it came from.
        counts, plan_sha256: the rows' counts and digest (`save_plan`); edited: the rows no
            longer match the digest (edited by hand). worklist: the sheet a plan was cut to.
        note: why a plan is empty. contacts*: the list of people of an `add` plan.
        source_*: what a rollback plan undoes.
    """

    NESTED: ClassVar[Mapping[str, type[MetaRecord]]] = {"snapshot": PlanSnapshotRef}

    version: int | None = None
    mode: str | None = None
    tags: list[str] = field(default_factory=list)
    families: list[dict[str, Any]] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)
    policy: dict[str, Any] | None = None
    include_archived: bool | None = None
    skip_anonymized: bool | None = None
    snapshot: PlanSnapshotRef | None = None
    created_at: str | None = None
    sources: dict[str, Any] | None = None
    contacts: int | None = None
    counts: dict[str, int] | None = None
    plan_sha256: str | None = None
    edited: bool = False
    policy_path: str | None = None
    worklist: dict[str, Any] | None = None
    note: str | None = None
    source_journal: str | None = None
    source_kind: str | None = None
    source_plan_sha256: str | None = None

    @property
    def snapshot_ref(self) -> PlanSnapshotRef:
        """`snapshot`, or an empty one for a plan that names none (a hand-written plan)."""
        return self.snapshot if self.snapshot is not None else PlanSnapshotRef()
