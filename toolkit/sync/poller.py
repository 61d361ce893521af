"""Polling: the opportunities updated since the last watermark, grouped by contact.

Webhooks can be lost and Lever has no tag event, so the service also lists
``updated_at_start=<watermark - margin>`` every poll interval. A contact is queued for a check
when one of its listed opportunities is new to the service or its contact-level tags (or its
archived / anonymized flags) differ from what the service last saw: its own writes, already
seen, cost no check. An opportunity now under another contact than last seen (a merge) queues
both the old and the new contact. The watermark only moves after a listing completed, to the
time the listing started **on Lever's clock** (from the HTTP ``Date`` of its answers, as the
snapshot does: a host clock ahead of Lever's would otherwise skip changes), so a crash or an
error means the next poll covers the gap again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from toolkit.policy import Policy
from toolkit.snapshot.frame import REFRESH_OVERLAP_MS, frame_from_opportunities
from toolkit.sync.contact import ConfidentialAccess, flags_of, shown
from toolkit.sync.store import SyncJournal

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

log = logging.getLogger("toolkit.sync")

DEFAULT_MARGIN_MS = REFRESH_OVERLAP_MS  # Lever's clock, writes in flight, coarse timestamps


@dataclass
class PollResult:
    opportunities: int
    contacts: int
    queued: int
    watermark: int


def skew_ms(client: OpportunityReader) -> int | None:
    """Lever's clock minus ours, measured now from the ``Date`` of the client's last answer.

    ``Date`` is truncated to the second and that answer came before now, so the estimate is
    never above the true skew: a watermark from it lists a little more, never less.

    Example:
        >>> class Client:
        ...     server_time_ms = None
        >>> skew_ms(Client()) is None
        True
    """
    server = getattr(client, "server_time_ms", None)
    return None if server is None else int(server) - int(time.time() * 1000)


def poll_once(
    client: OpportunityReader,
    journal: SyncJournal,
    contact_tags: Policy | Iterable[str],
    *,
    margin_ms: int = DEFAULT_MARGIN_MS,
    start_ms: int | None = None,
    access: ConfidentialAccess | None = None,
) -> PollResult:
    """One poll: list what changed since the watermark, queue the contacts worth a check.

    Args:
        client: a `LeverClient`.
        journal: the sync journal (watermark, last-seen tags, the queue).
        contact_tags: the policy's contact-level tags (or the `Policy`: aliases and pattern
            matches count too).
        margin_ms: how far before the watermark to list again.
        start_ms: the first watermark of a new journal (default: now on Lever's clock; polling
            covers what changes from now on; a clean-up of the past is `plan` + `apply`).

    Returns:
        A `PollResult`.
    """
    local_start = int(time.time() * 1000)
    stored = journal.get_state("watermark")
    if stored is None and start_ms is None:
        if skew_ms(client) is None:  # one small request to learn Lever's clock
            next(iter(client.iter_opportunity_pages(limit=1)), None)
        start_ms = local_start + (skew_ms(client) or 0)
    mark = int(stored) if stored is not None else int(start_ms or local_start)
    access = access or ConfidentialAccess()
    opps = access.list(client, updated_at_start=max(0, mark - margin_ms))
    skew = skew_ms(client)
    if skew is None:
        log.warning("poll: Lever sent no Date header; the watermark uses this host's clock")
    started = local_start + (skew or 0)
    frame = frame_from_opportunities(opps)
    frame = frame[frame["contact_id"].notna()]
    seen = journal.seen(list(frame["opportunity_id"]))
    # a Policy tests membership itself (aliases, patterns); a plain tuple becomes a set
    wanted: Container[str] = contact_tags if isinstance(contact_tags, Policy) else set(contact_tags)
    due: dict[str, None] = {}
    for opp, contact, tags, archived, anonymized in frame[
        ["opportunity_id", "contact_id", "tags", "archived", "anonymized"]
    ].itertuples(index=False, name=None):
        now = (sorted(t for t in tags if t in wanted), flags_of(bool(archived), bool(anonymized)))
        before = seen.get(opp)
        if before is None or (sorted(before[0]), before[1]) != now:
            due.setdefault(contact, None)
        if before is not None and before[2] and before[2] != contact:  # moved: a merge
            due.setdefault(contact, None)
            due.setdefault(before[2], None)
    queued = sum(1 for contact in due if journal.enqueue_contact(contact, source="poll"))
    journal.set_state(watermark=started, last_poll=int(time.time() * 1000))
    log.info(
        "poll: %d opportunities updated since %d (margin %d ms), %d contacts to check, %d queued",
        len(frame),
        mark,
        margin_ms,
        len(due),
        queued,
    )
    if due and log.isEnabledFor(logging.DEBUG):
        log.debug("poll: contacts %s", ", ".join(map(shown, due)))
    return PollResult(len(frame), len(due), queued, started)


__all__ = ["DEFAULT_MARGIN_MS", "PollResult", "poll_once"]


def iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
