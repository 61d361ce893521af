"""Making a plan, pure: from a snapshot frame (and a policy or explicit tags) to plan rows, and
re-planning them against tags read later (drift). No I/O, no clock, no client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.audit.families import TagFamily, expand_patterns
from toolkit.enums import Mode
from toolkit.remediate.candidates import (
    add_candidates,
    check_renames,
    contact_text,
    propagate_candidates,
    propagate_without_archived,
    remove_candidates,
    rename_candidates,
    renames_from_variants,
)
from toolkit.remediate.plan import (
    MODES,
    PLAN_COLUMNS,
    PLAN_VERSION,
    REASON_ANONYMIZED,
    REASON_ARCHIVED,
    REASON_DRIFT_ABSENT,
    REASON_DRIFT_PRESENT,
    REASON_DRIFT_SOURCE,
    REASON_DRIFT_VARIANT,
    REASON_NEVER_TOUCH,
    SKIPPED_COLUMNS,
    Plan,
    PlanError,
    check_plan_tags,
    empty_rows,
    sorted_rows,
)
from toolkit.remediate.sources import propagation_sources
from toolkit.snapshot.frame import fingerprint, known_tags, safe_watermark
from toolkit.snapshot.meta import SnapshotMeta

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import PolicySource


def _policy_view(policy: PolicySource | None) -> dict[str, Any]:
    """The policy fields the plan uses, read by attribute (a `toolkit.policy.Policy` or alike)."""
    if policy is None:
        return {}
    if isinstance(policy, Mapping):
        get = policy.get
    else:

        def get(name: str, default: Any = None) -> Any:
            return getattr(policy, name, default)

    families = [f if isinstance(f, Mapping) else f.to_dict() for f in get("families", ()) or ()]
    return (
        {
            "contact_level": list(get("contact_level", []) or []),
            "never_touch": list(get("never_touch", []) or []),
            "include_archived": bool(get("include_archived", True)),
            "skip_anonymized": bool(get("skip_anonymized", True)),
        }
        | ({"families": families} if families else {})
        | ({"patterns": list(get("patterns", ()) or ())} if get("patterns", ()) else {})
    )


def plan_families(
    frame: pd.DataFrame, policy: PolicySource | None = None, tags: Iterable[str] | None = None
) -> list[TagFamily]:
    """The families a propagate plan fills: the given tags (each with the aliases the policy
    declares for it), else the policy's contact-level tags and the frame's tags its patterns
    match (`toolkit.policy.Policy.resolve`, over the plan's view of a policy).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1"], "contact_id": ["c"],
        ...                   "tags": [["Skill: Go", "DNC"]]})
        >>> pol = {"contact_level": ["Do not contact"], "patterns": ["Skill: *"],
        ...        "families": [{"tag": "Do not contact", "aliases": ["DNC"]}]}
        >>> [(x.tag, x.aliases) for x in plan_families(f, pol)]
        [('Do not contact', ('DNC',)), ('Skill: Go', ())]
    """
    pol = _policy_view(policy)
    declared = {
        f["tag"]: TagFamily(f["tag"], tuple(f.get("aliases") or ()), bool(f.get("normalize")))
        for f in pol.get("families", [])
    }
    given = [tags] if isinstance(tags, str) else tags
    explicit = given is not None
    names = list(dict.fromkeys(given if given is not None else pol.get("contact_level", [])))
    families = [declared.get(t, TagFamily(t)) for t in names]
    if explicit or not pol.get("patterns"):
        return families
    taken = {m for f in families for m in f.members} | set(pol.get("never_touch", []))
    matched = expand_patterns(pol["patterns"], known_tags(frame), exclude=taken)
    return families + [TagFamily(t) for t in matched]


def _snapshot_parts(snapshot: Any) -> tuple[pd.DataFrame, SnapshotMeta]:
    if isinstance(snapshot, pd.DataFrame):
        return snapshot, SnapshotMeta()
    frame = getattr(snapshot, "frame", None)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError("make_plan needs a snapshot frame (DataFrame) or a Snapshot")
    return frame, SnapshotMeta.from_dict(getattr(snapshot, "meta", None))


def _snapshot_meta(frame: pd.DataFrame, meta: SnapshotMeta) -> dict[str, Any]:
    mark = meta.watermark
    if mark is None:
        mark = safe_watermark(frame)
    return {
        "fingerprint": meta.fingerprint or fingerprint(frame),
        "watermark": int(mark) if mark is not None else None,
        "fetched_at": meta.fetched_at,
        "host": meta.host,
        "account": meta.account,
        "opportunities": len(frame),
        "confidential_access": meta.confidential_access,
    }


def check_plan_request(
    mode: str,
    tags: Iterable[str] | None = None,
    policy: PolicySource | None = None,
    renames: Mapping[str, str] | None = None,
    contacts: bool = False,
) -> None:
    """Refuse a plan that cannot be made as asked, before anything is fetched (`PlanError`).

    ``contacts``: the plan is restricted to a list of people (``--contacts``), which ``add``
    mode needs (adding a tag to every opportunity of an account is not a plan anyone means).

    Example:
        >>> check_plan_request("propagate", tags=["Python"])
        >>> check_plan_request("remove", renames={"py": "Python"})
        Traceback (most recent call last):
        ...
        toolkit.errors.PlanError: renames: only for mode rename
    """
    if mode not in MODES:
        raise PlanError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    chosen = [tags] if isinstance(tags, str) else list(tags or [])
    renames = dict(renames or {})
    check_plan_tags([*chosen, *renames, *renames.values()], "bad tag: ")  # before any fetch
    view = _policy_view(policy)
    chosen = chosen or list(view.get("contact_level", [])) or list(view.get("patterns", []))
    if mode == Mode.ADD and not contacts:
        raise PlanError("--mode add needs --contacts FILE (the people whose opportunities get it)")
    if mode == Mode.RENAME:
        if not (renames or chosen):
            raise PlanError.naming("{mode} rename needs {renames} or {tags} (their variants)")
    elif renames:
        raise PlanError.naming("{renames}: only for {mode} rename")
    elif not chosen:
        raise PlanError.naming("no tags to plan: give {tags} or {policy_path}")


def make_plan(
    snapshot: Any,
    mode: str = "propagate",
    tags: Iterable[str] | None = None,
    policy: PolicySource | None = None,
    renames: Mapping[str, str] | None = None,
    include_archived: bool | None = None,
    created_at: str | None = None,
    contacts: Iterable[str] | None = None,
) -> Plan:
    """Plan the writes that fix what the audit found. Pure: no I/O.

    Args:
        snapshot: a snapshot frame (``toolkit.snapshot.fetch`` columns) or a `Snapshot`.
        mode: ``propagate`` (add missing assignments), ``remove`` (take tags off), or
            ``rename`` (variant -> canonical per opportunity).
        tags: the exact tag strings; default the policy's ``contact_level`` tags (propagate).
            In rename mode without ``renames``: rename the near-duplicate variants of these tags
            (``audit.tag_variants``) to their canonical spelling.
        policy: a `toolkit.policy.Policy` (or a mapping): ``never_touch`` tags are skipped,
            ``include_archived`` and ``skip_anonymized`` are honoured.
        renames: ``{variant: canonical}`` for rename mode.
        include_archived: overrides the policy's ``include_archived`` (default True).
        created_at: when the plan was made (ISO 8601), recorded in its meta; the caller's
            clock (`toolkit.workflows.plan_changes` gives now), so planning stays pure.
        contacts: plan for these contact ids only (their opportunities, all of them); ``add``
            mode needs it (`toolkit.remediate.contacts` reads a file of ids or emails).

    Returns:
        A `Plan`. Rows are sorted by contact, opportunity, op, tag.

    Raises:
        PlanError: unknown mode, no tags, or an inconsistent rename map.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["Python"], []], "archived": [False, False],
        ...                   "anonymized": [False, False], "created_at": [1, 2],
        ...                   "updated_at": [5, 6]})
        >>> make_plan(f, tags=["Python"]).rows.values.tolist()
        [['o2', 'c', 'add', 'Python']]
    """
    check_plan_request(mode, tags, policy, renames, contacts=contacts is not None)
    frame, snap_meta = _snapshot_parts(snapshot)
    snapshot_meta = _snapshot_meta(frame, snap_meta)  # of the whole snapshot
    listed = None if contacts is None else list(dict.fromkeys(str(c) for c in contacts))
    if listed is not None:
        frame = frame[frame["contact_id"].isin(listed)]
    pol = _policy_view(policy)
    if include_archived is None:
        include_archived = pol.get("include_archived", True)
    skip_anonymized = pol.get("skip_anonymized", True)
    never_touch = set(pol.get("never_touch", []))
    if isinstance(tags, str):
        tags = [tags]
    families = plan_families(frame, policy, tags) if mode == Mode.PROPAGATE else []
    if mode == Mode.PROPAGATE:
        chosen = [f.tag for f in families]
    else:
        chosen = list(dict.fromkeys(tags if tags is not None else pol.get("contact_level", [])))
    rename_map: dict[str, str] = dict(renames or {})
    if mode == Mode.RENAME and not rename_map:
        rename_map = renames_from_variants(frame, chosen, include_archived)
    if mode != Mode.RENAME and not chosen:
        if pol.get("patterns") and tags is None:
            raise PlanError(
                "the policy's patterns match no tag of this snapshot and it names no other "
                "contact_level tag: nothing to plan"
            )
        raise PlanError.naming("no tags to plan: give {tags} or {policy_path}")
    check_plan_tags([*chosen, *rename_map, *rename_map.values()])
    if mode == Mode.RENAME:
        check_renames(rename_map)
        if not rename_map:
            raise PlanError.naming("{mode} rename needs {renames} or tags with spelling variants")

    frame = frame.reset_index(drop=True)
    for column, default in (("archived", False), ("anonymized", False)):
        if column not in frame.columns:
            frame = frame.assign(**{column: default})
    info = pd.DataFrame(
        {
            "opportunity_id": frame["opportunity_id"].astype(str).to_numpy(dtype=object),
            "contact_id": [contact_text(c) for c in frame["contact_id"]],
            "archived": frame["archived"].fillna(False).astype(bool).to_numpy(),
            "anonymized": frame["anonymized"].fillna(False).astype(bool).to_numpy(),
        }
    )
    tag_lists = [list(t) if isinstance(t, list | tuple) else list(t or []) for t in frame["tags"]]

    if mode == Mode.PROPAGATE:
        candidates = propagate_candidates(frame, families)
    elif mode == Mode.REMOVE:
        candidates = remove_candidates(info, tag_lists, set(chosen))
    elif mode == Mode.ADD:
        candidates = add_candidates(info, tag_lists, chosen)
    else:
        candidates = rename_candidates(info, tag_lists, rename_map)

    flags = info.set_index("opportunity_id")
    if candidates.empty:
        rows, skipped = empty_rows(PLAN_COLUMNS), empty_rows(SKIPPED_COLUMNS)
    else:
        candidates = candidates.merge(
            flags[["archived", "anonymized"]], left_on="opportunity_id", right_index=True
        )
        reason = pd.Series("", index=candidates.index, dtype=object)
        if mode == Mode.RENAME:
            pair = candidates["variant"]
            touched = candidates["tag"].isin(never_touch) | pair.isin(never_touch)
        else:
            touched = candidates["tag"].isin(never_touch)
        reason[touched] = REASON_NEVER_TOUCH
        if not include_archived:
            reason[(reason == "") & candidates["archived"]] = REASON_ARCHIVED
        if skip_anonymized:
            reason[(reason == "") & candidates["anonymized"]] = REASON_ANONYMIZED
        candidates = candidates.assign(reason=reason)
        rows = sorted_rows(candidates[candidates["reason"] == ""], PLAN_COLUMNS)
        skipped = sorted_rows(candidates[candidates["reason"] != ""], SKIPPED_COLUMNS)
        if mode == Mode.PROPAGATE and not include_archived:
            rows, extra = propagate_without_archived(frame, families, rows, skipped)
            skipped = sorted_rows(pd.concat([skipped, extra]), SKIPPED_COLUMNS)

    # The tag sets the plan assumed: every opportunity of every contact it touches (propagate
    # needs the contact's other opportunities to re-plan after drift), or the targets.
    touched_ids = set(rows["opportunity_id"]) if len(rows) else set()
    if mode == Mode.PROPAGATE and touched_ids:
        touched_contacts = {c for c in rows["contact_id"] if c}
        keep = info["opportunity_id"].isin(touched_ids) | (
            info["contact_id"].isin(touched_contacts) & (info["contact_id"] != "")
        )
        if not include_archived:
            keep &= ~info["archived"] | info["opportunity_id"].isin(touched_ids)
    else:
        keep = info["opportunity_id"].isin(touched_ids)
    before: dict[str, dict[str, Any]] = {
        str(info.at[i, "opportunity_id"]): {
            "contact_id": info.at[i, "contact_id"],
            "tags": tag_lists[i],
        }
        for i in info.index[keep.to_numpy()]
    }
    meta = {
        "version": PLAN_VERSION,
        "mode": mode,
        "tags": chosen,
        "families": [f.to_dict() for f in families if f.aliases or f.normalize],
        "renames": rename_map if mode == Mode.RENAME else {},
        "policy": pol or None,
        "include_archived": bool(include_archived),
        "skip_anonymized": bool(skip_anonymized),
        "snapshot": snapshot_meta,
        "created_at": created_at,
    }
    if mode == Mode.PROPAGATE:
        meta["sources"] = propagation_sources(rows, before)
    if listed is not None:
        meta["contacts"] = len(listed)
    plan = Plan(rows=rows, skipped=skipped, meta=meta, before=before)
    plan.meta["counts"] = plan.counts()
    plan.meta["plan_sha256"] = plan.sha256
    return plan


def replan(
    plan: Plan, current: Mapping[str, list[str]], anonymized: Iterable[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-plan the rows of the opportunities whose tags are known now (pure).

    Never writes blindly over a change: an add already present and a remove already absent are
    dropped; in propagate mode an add is dropped when no other opportunity of the contact carries
    the tag any more (someone removed it on purpose), even when the target itself did not change;
    in rename mode both rows of a variant are dropped when the variant is gone. Other rows of
    opportunities not in `current` are kept as planned.

    Args:
        plan: the plan.
        current: {opportunity_id: tags now} for the re-read (drifted) opportunities.
        anonymized: opportunities found anonymized now (their rows are dropped).

    Returns:
        (rows kept, rows dropped with a ``reason`` column).

    Example:
        >>> rows = pd.DataFrame({"opportunity_id": ["o2"], "contact_id": ["c"], "op": ["add"],
        ...                      "tag": ["T"]})
        >>> p = Plan(rows=rows, meta={"mode": "propagate"})
        >>> kept, dropped = replan(p, {"o2": ["T"]})
        >>> len(kept), dropped["reason"].tolist()
        (0, ['drift: tag already present'])
    """
    rows = plan.rows
    if rows.empty or not current:
        return rows.copy(), empty_rows(SKIPPED_COLUMNS)
    anonymized = set(anonymized)
    mode = plan.mode
    renames = dict(plan.info.renames or {})
    members = {f["tag"]: {f["tag"], *f.get("aliases", [])} for f in plan.info.families or []}
    # The contact's opportunities as known now: the plan's view, overridden by what was re-read.
    by_contact: dict[str, dict[str, set[str]]] = {}
    for opp, entry in plan.before.items():
        contact = entry.get("contact_id") or ""
        if contact:
            tags = current.get(opp, entry.get("tags") or [])
            by_contact.setdefault(contact, {})[opp] = set(tags)
    drifted_contacts = {(plan.before.get(opp) or {}).get("contact_id") for opp in current} - {
        None,
        "",
    }
    reasons = []
    for opp, contact, op, tag in rows[PLAN_COLUMNS].itertuples(index=False, name=None):
        source_check = mode == Mode.PROPAGATE and op == "add" and contact in drifted_contacts
        if opp not in current and not source_check:
            reasons.append("")
            continue
        now = set(current.get(opp, (plan.before.get(opp) or {}).get("tags") or []))
        if opp in anonymized:
            reasons.append(REASON_ANONYMIZED)
        elif op == "add" and tag in now:
            reasons.append(REASON_DRIFT_PRESENT)
        elif op == "remove" and tag not in now:
            reasons.append(REASON_DRIFT_ABSENT if mode != Mode.RENAME else REASON_DRIFT_VARIANT)
        elif op == "add" and mode == Mode.RENAME:
            variants = [v for v, c in renames.items() if c == tag]
            reasons.append("" if any(v in now for v in variants) else REASON_DRIFT_VARIANT)
        elif source_check and contact in by_contact:
            # a source: any member of the tag's family on any opportunity of the contact (the
            # target itself may carry an alias; it does not carry the tag, checked above)
            family = members.get(tag, {tag})
            sources = [t for o, t in by_contact[contact].items()]
            found = any(family & t for t in sources)
            reasons.append("" if found else REASON_DRIFT_SOURCE)
        else:
            reasons.append("")
    reason = pd.Series(reasons, index=rows.index, dtype=object)
    kept = rows[reason == ""].reset_index(drop=True)
    dropped = rows[reason != ""].assign(reason=reason[reason != ""]).reset_index(drop=True)
    return kept, dropped[SKIPPED_COLUMNS]
