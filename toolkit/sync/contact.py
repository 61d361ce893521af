"""Checking one contact: list its opportunities, put its contact-level tags on all of them.

This is Lever's recipe for a person-level tag (take the contact, list
``GET /opportunities?contact_id=``, tag each opportunity) done with the fewest calls: one listing
(plus one read when only the opportunity id is known), then one ``addTags`` per opportunity that
lacks something, all its missing tags together; nothing when nothing is missing (idempotent).
Which tags and which opportunities follow the policy through `remediate.planner.make_plan`, as
a planned clean-up would (never_touch, archived and anonymized rules).

`tag_contact` is the public function for integrations; `ContactChecker` is what the sync service
runs, with the journal, the removal rule and the hourly change cap.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit import failpoints
from toolkit.audit.families import policy_families
from toolkit.chars import escaped
from toolkit.errors import AuthenticationError, LeverError, NotFoundError
from toolkit.remediate.plan import calls_from_rows
from toolkit.remediate.planner import make_plan
from toolkit.remediate.reads import clean_tags, tags_of  # apply's write rules, reused
from toolkit.remediate.runner import narrow_tags
from toolkit.sanitize import TAG_RULE, first_tag_problem
from toolkit.snapshot.frame import frame_from_opportunities, known_tags
from toolkit.sync.cap import ChangeCap
from toolkit.sync.confirm import confirm_not_found
from toolkit.sync.outcomes import (  # re-exported: their home before outcomes.py
    ConfidentialAccess,
    TagResult,
    WriteOutcome,
)
from toolkit.sync.store import W_DONE, W_DRY_RUN, W_FAILED, W_NOT_FOUND, SyncJournal

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.policy import Policy
    from toolkit.ports import TagClient

log = logging.getLogger("toolkit.sync")

REPORT, PROPAGATE = "report", "propagate"


def shown(value: Any) -> str:
    """A tag or id for a log line: quoted, dangerous characters escaped (Lever data is
    untrusted; `toolkit.chars`: controls, NEL, line separators, bidi and zero-width ones).

    Example:
        >>> shown("Do not contact\\x1b[31m"), shown("a\\u202eb")
        ('"Do not contact\\\\u001b[31m"', '"a\\\\u202eb"')
    """
    return escaped(json.dumps(value, ensure_ascii=False))


def _contact_of(opp: dict) -> str | None:
    contact = opp.get("contact")
    if isinstance(contact, dict):
        contact = contact.get("id")
    return contact if isinstance(contact, str) and contact else None


def _write(
    client: TagClient,
    contact_id: str,
    call: dict[str, Any],
    *,
    perform_as: str | None,
    dry_run: bool,
    journal: SyncJournal | None,
    session: int | None,
    trigger: str,
) -> WriteOutcome:
    """One write call, journaled before and after, with apply's outcome rules: a 404 confirmed
    by a read is not_found, 400/403 and retries exhausted are failed (recorded, the check goes
    on), 401 stops everything (raised)."""
    opp_id, op, tags = call["opportunity_id"], call["op"], list(call["tags"])
    before = call.get("before")
    write_id = None
    if journal is not None:
        write_id = journal.write_intent(
            contact_id, opp_id, op, tags, before, trigger=trigger, session=session, dry_run=dry_run
        )
    if dry_run:
        return WriteOutcome(opp_id, op, tags, W_DRY_RUN)
    send = client.add_tags if op == "add" else client.remove_tags
    try:
        data = send(opp_id, tags, perform_as=perform_as)
    except AuthenticationError as exc:
        if journal is not None and write_id is not None:
            journal.write_outcome(write_id, W_FAILED, status=401, code=exc.code, message=str(exc))
        raise
    except NotFoundError as exc:
        state, status, why = confirm_not_found(client, opp_id, exc.message)
        outcome = WriteOutcome(opp_id, op, tags, state, status, why)
    except LeverError as exc:
        outcome = WriteOutcome(opp_id, op, tags, W_FAILED, exc.status, str(exc))
    except Exception as exc:  # a bug or an unexpected library error: record, go on
        outcome = WriteOutcome(opp_id, op, tags, W_FAILED, None, f"{type(exc).__name__}: {exc}")
    else:
        failpoints.hit("sync_after_write")
        after = clean_tags(data.get("tags")) if isinstance(data, dict) else None
        if journal is not None and write_id is not None:
            journal.write_outcome(write_id, W_DONE, status=200, after_tags=after)
        return WriteOutcome(opp_id, op, tags, W_DONE, 200)
    if journal is not None and write_id is not None:
        journal.write_outcome(
            write_id, outcome.state, status=outcome.status, message=outcome.message
        )
    return outcome


def _calls(rows: pd.DataFrame, current: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Plan rows as write calls (one per opportunity and op, adds first), narrowed to what is
    still missing (or still present) in the tags just read."""
    out = []
    for call in calls_from_rows(rows).to_dict("records", into=dict):
        now = current.get(call["opportunity_id"], [])
        tags = narrow_tags(call["op"], list(call["tags"]), now)
        if tags:
            out.append({**call, "tags": tags, "before": now})
    return out


def tag_contact(
    client: TagClient,
    opportunity_id: str,
    tags: Iterable[str],
    perform_as: str | None = None,
    *,
    contact_id: str | None = None,
    include_archived: bool = True,
    dry_run: bool = False,
) -> TagResult:
    """Put ``tags`` on every opportunity of the contact of ``opportunity_id``, fewest calls.

    Lever's recipe for a person-level tag, done right: the contact comes from the opportunity
    (one read; none when ``contact_id`` is given, e.g. from the webhook's ``data.contactId``),
    its opportunities from one ``contact_id`` listing (confidential ones included when the key may
    read them), then one ``addTags`` per opportunity that lacks any of the tags, with all of them
    at once. Opportunities that already carry every tag get no call, so calling it again is a
    single listing and changes nothing. Anonymized opportunities are never written; archived ones
    are tagged unless ``include_archived=False``. Writes go through the client's rate limiter and
    retries.

    Args:
        client: a `toolkit.client.LeverClient`.
        opportunity_id: the opportunity that triggered you (for example a webhook's).
        tags: exact tag strings (Lever's tags are case sensitive).
        perform_as: Lever user id the changes are attributed to.
        contact_id: the contact, when known (saves one read).
        include_archived: tag archived opportunities too (default True).
        dry_run: plan and return the calls without sending them.

    Returns:
        A `TagResult`: the calls made (``writes``, each done / failed / not_found) and
        ``requests`` used.

    Raises:
        NotFoundError: the opportunity does not exist (when its contact had to be read).
        AuthenticationError: the key is refused.

    Example:
        >>> from toolkit.client import LeverClient  # doctest: +SKIP
        >>> client = LeverClient.from_env()  # doctest: +SKIP
        >>> result = tag_contact(client, "250d8f03-...", ["Do not contact"])  # doctest: +SKIP
        >>> [(w.opportunity_id, w.state) for w in result.writes]  # doctest: +SKIP
        [('8d5e9a1c-...', 'done')]
    """
    if isinstance(tags, str):
        raise ValueError(f"tags must be a list of strings, not one string ({tags!r})")
    wanted = list(dict.fromkeys(tags))
    if not wanted:
        raise ValueError("tags must be a non-empty list of non-empty strings")
    if problem := first_tag_problem(wanted):  # the CLI's tag rule, before any request
        raise ValueError(f"bad tag: {problem}: {TAG_RULE}")
    requests = 0
    trigger: dict | None = None
    if contact_id is None:
        trigger = client.get_opportunity(opportunity_id)
        requests += 1
        contact_id = _contact_of(trigger)
    if contact_id is None:
        opps = [trigger] if trigger else []
    else:
        opps = ConfidentialAccess().list(client, contact_id=contact_id)
        requests += 1
        if trigger is not None and trigger.get("id") not in {o.get("id") for o in opps}:
            opps.append(trigger)  # e.g. a confidential one the listing left out
    frame = frame_from_opportunities(opps)
    result = TagResult(contact_id, opportunities=len(frame))
    current = {o["id"]: tags_of(o) for o in opps if isinstance(o.get("id"), str)}
    records = [
        (opp, contact_id or "", "add", tag)
        for opp, archived, anonymized in frame[
            ["opportunity_id", "archived", "anonymized"]
        ].itertuples(index=False, name=None)
        if not anonymized and (include_archived or not archived)
        for tag in wanted
    ]
    rows = pd.DataFrame.from_records(records, columns=["opportunity_id", "contact_id", "op", "tag"])
    for call in _calls(rows, current):
        outcome = _write(
            client,
            contact_id or "",
            call,
            perform_as=perform_as,
            dry_run=dry_run,
            journal=None,
            session=None,
            trigger="tag_contact",
        )
        result.writes.append(outcome)
        result.requests += 0 if dry_run else 1
    result.requests += requests
    return result


def flags_of(archived: bool, anonymized: bool) -> str:
    """The opportunity flags kept beside the last-seen tags (a change triggers a check)."""
    return f"{'A' if archived else '-'}{'X' if anonymized else '-'}"


class ContactChecker:
    """The sync service's contact check (thread-safe; the queue never hands one contact to two
    workers at once).

    Args:
        client: a `LeverClient` shared by every worker (one rate limiter).
        policy: a `toolkit.policy.Policy`; its ``contact_level`` tags are kept consistent.
        journal: the `SyncJournal` (writes, last-seen tags, held removals).
        dry_run: journal what would be written, send nothing.
        perform_as: Lever user id for the writes.
        on_removal: ``report`` (log, count, hold) or ``propagate`` (remove it from the others).
        cap: the hourly `ChangeCap`.
        session: the journal session of this service run.
        on_removal_found: called with each removal dict (metrics).
    """

    def __init__(
        self,
        client: TagClient,
        policy: Policy,
        journal: SyncJournal,
        *,
        dry_run: bool = True,
        perform_as: str | None = None,
        on_removal: str = REPORT,
        cap: ChangeCap | None = None,
        session: int | None = None,
        on_write: Callable[[WriteOutcome], None] | None = None,
        ledger: Any = None,
    ) -> None:
        if on_removal not in (REPORT, PROPAGATE):
            raise ValueError(f"on_removal must be report or propagate (got {on_removal!r})")
        self.client = client
        self.policy = policy
        self.journal = journal
        self.dry_run = dry_run
        self.perform_as = perform_as
        self.on_removal = on_removal
        self.cap = cap
        self.session = session
        self.on_write = on_write
        self.ledger = ledger  # a `toolkit.ledger.entry.LedgerRun`: each write sent, a row
        self.tags = tuple(policy.contact_level)
        # the tags remembered and watched: members of a family and a pattern's matches count
        # (toolkit.policy.Policy.__contains__); the poller filters with the same test
        self.watched = policy if hasattr(policy, "decision") else frozenset(self.tags)
        self._access = ConfidentialAccess()
        self._lock = threading.Lock()

    def resolve_contact(self, opportunity_id: str) -> tuple[str | None, dict]:
        """The contact of an opportunity (a webhook without ``contactId``): one read."""
        opp = self.client.get_opportunity(opportunity_id)
        return _contact_of(opp), opp

    def check(
        self, contact_id: str, *, trigger: str = "", stop: threading.Event | None = None
    ) -> TagResult:
        """Check one contact now; see the module doc. Raises AuthenticationError (stop the
        service) and LeverError for a failed listing (the caller retries later)."""
        opps = self._access.list(self.client, contact_id=contact_id)
        result = TagResult(contact_id, opportunities=len(opps), requests=1)
        frame = frame_from_opportunities(opps)
        current = {o: list(t) for o, t in zip(frame["opportunity_id"], frame["tags"], strict=True)}
        considered = frame
        if not self.policy.include_archived:
            considered = frame[~frame["archived"].astype(bool)]
        # the families over this contact's tags (aliases, patterns): toolkit.audit.families
        tags = [f.tag for f in policy_families(self.policy, known_tags(frame))]
        contact_tags = set(tags)
        removed = self._removals(contact_id, considered, current, contact_tags)
        result.removals = removed
        held = self.journal.held(contact_id)
        propagate_removal = sorted({r["tag"] for r in removed if r["action"] == PROPAGATE})
        # Held removals settle when the tag is on all or none of the considered opportunities.
        settled = [
            t
            for t in held
            if all(t in current[o] for o in considered["opportunity_id"])
            or not any(t in current[o] for o in considered["opportunity_id"])
        ]
        if settled:
            self.journal.unhold(contact_id, settled)
            log.info(
                "contact %s: removal of %s settled",
                shown(contact_id),
                ", ".join(map(shown, settled)),
            )
        held_now = set(held) - set(settled) | {r["tag"] for r in removed if r["action"] == REPORT}
        add_tags = [t for t in tags if t not in held_now and t not in propagate_removal]
        rows = []
        plans = {}  # op -> the plan its calls come from (the ledger names it and the sources)
        if add_tags:
            plan = make_plan(frame, mode="propagate", tags=add_tags, policy=self.policy)
            rows.append(plan.rows)
            result.skipped.extend(plan.skipped.to_dict("records", into=dict))
            plans["add"] = plan
        if propagate_removal:
            plan = make_plan(frame, mode="remove", tags=propagate_removal, policy=self.policy)
            rows.append(plan.rows)
            result.skipped.extend(plan.skipped.to_dict("records", into=dict))
            plans["remove"] = plan
        calls = _calls(pd.concat(rows), current) if rows else []
        trig = trigger or "check"
        for call in calls:
            if stop is not None and stop.is_set():
                result.interrupted = True
                break
            if self.cap is not None:
                granted = self.cap.take(len(call["tags"]))
                if granted < len(call["tags"]):
                    result.paused = True
                    if not granted:
                        break
                    call = {**call, "tags": call["tags"][:granted]}
            outcome = _write(
                self.client,
                contact_id,
                call,
                perform_as=self.perform_as,
                dry_run=self.dry_run,
                journal=self.journal,
                session=self.session,
                trigger=trig,
            )
            result.writes.append(outcome)
            result.requests += 0 if self.dry_run else 1
            if self.ledger is not None and not self.dry_run:
                origin = plans[call["op"]]
                self.ledger.record(
                    opportunity_id=call["opportunity_id"],
                    contact_id=contact_id,
                    op=call["op"],
                    tags=list(call["tags"]),
                    before=call.get("before"),
                    outcome=outcome.state,
                    status=outcome.status,
                    perform_as=self.perform_as,
                    plan_sha256=origin.sha256,
                    sources=origin.info.sources or {},
                )
            verb = "would write" if self.dry_run else outcome.state
            log.info(
                "contact %s: %s %s %s on %s -> %s%s",
                shown(contact_id),
                "dry run:" if self.dry_run else "write",
                call["op"],
                ", ".join(map(shown, call["tags"])),
                shown(call["opportunity_id"]),
                verb,
                f" ({outcome.status}: {outcome.message})"
                if outcome.state in (W_FAILED, W_NOT_FOUND)
                else "",
            )
            if self.on_write is not None:
                self.on_write(outcome)
            if outcome.state == W_DONE:
                now = current.get(call["opportunity_id"], [])
                if call["op"] == "add":
                    current[call["opportunity_id"]] = now + [
                        t for t in call["tags"] if t not in now
                    ]
                else:
                    current[call["opportunity_id"]] = [t for t in now if t not in call["tags"]]
            if result.paused:
                break
        self._remember(contact_id, frame, current)
        return result

    def _removals(
        self,
        contact_id: str,
        considered: pd.DataFrame,
        current: dict[str, list[str]],
        contact_tags: set[str],
    ) -> list[dict[str, Any]]:
        """Contact-level tags last seen on an opportunity, gone from it now, still on another."""
        ids = list(considered["opportunity_id"])
        seen = self.journal.seen(ids)
        found = []
        for opp in ids:
            if opp not in seen:
                continue
            before = set(seen[opp][0]) & contact_tags
            for tag in sorted(before - set(current[opp])):
                others = [o for o in ids if o != opp and tag in current[o]]
                if not others:
                    continue  # gone everywhere: nothing is split
                action = self.on_removal
                found.append(
                    {"contact_id": contact_id, "opportunity_id": opp, "tag": tag, "action": action}
                )
                if action == REPORT:
                    self.journal.hold(contact_id, tag, opp)
                self.journal.add_event(
                    self.session,
                    "removal",
                    {"contact_id": contact_id, "opportunity_id": opp, "tag": tag, "action": action},
                )
                log.warning(
                    "contact %s: contact-level tag %s was removed from %s but is still on %d "
                    "other opportunit%s; %s",
                    shown(contact_id),
                    shown(tag),
                    shown(opp),
                    len(others),
                    "y" if len(others) == 1 else "ies",
                    "removing it from them (on_removal: propagate)"
                    if action == PROPAGATE
                    else "reported, not propagated and not re-added (on_removal: report)",
                )
        return found

    def _remember(
        self, contact_id: str, frame: pd.DataFrame, current: dict[str, list[str]]
    ) -> None:
        watched = self.watched
        self.journal.remember(
            [
                (
                    opp,
                    contact_id,
                    [t for t in current[opp] if t in watched],
                    flags_of(bool(archived), bool(anonymized)),
                )
                for opp, archived, anonymized in frame[
                    ["opportunity_id", "archived", "anonymized"]
                ].itertuples(index=False, name=None)
            ]
        )


__all__ = [
    "ConfidentialAccess",
    "ContactChecker",
    "TagResult",
    "WriteOutcome",
    "flags_of",
    "shown",
    "tag_contact",
]
