"""What a contact check did (`toolkit.sync.contact`): one write call, the whole result, and the
key's confidential access learnt once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from toolkit.errors import PermissionDeniedError
from toolkit.sync.store import W_DONE, W_DRY_RUN, W_FAILED, W_NOT_FOUND

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader


@dataclass
class WriteOutcome:
    """One write call: ``state`` is done, dry_run, failed or not_found (or skipped: not sent)."""

    opportunity_id: str
    op: str
    tags: list[str]
    state: str
    status: int | None = None
    message: str | None = None


@dataclass
class TagResult:
    """What `tag_contact` / a contact check did.

    Attributes:
        contact_id: the contact (None when the opportunity has none).
        opportunities: how many opportunities the contact has (as listed).
        writes: one `WriteOutcome` per write call made (or, in a dry run, that would be made).
        requests: API requests this call used (reads and writes, retries excluded).
        removals: contact-level tags found removed from one opportunity while still on others.
        skipped: plan rows left out by the policy, with the reason.
        paused: the hourly change cap stopped the writes; the rest waits.
        interrupted: the service is stopping; the rest waits.
    """

    contact_id: str | None
    opportunities: int = 0
    writes: list[WriteOutcome] = field(default_factory=list)
    requests: int = 0
    removals: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    paused: bool = False
    interrupted: bool = False

    @property
    def changes(self) -> int:
        """Tags written (or that a dry run would write)."""
        return sum(len(w.tags) for w in self.writes if w.state in (W_DONE, W_DRY_RUN))

    @property
    def failed(self) -> list[WriteOutcome]:
        return [w for w in self.writes if w.state in (W_FAILED, W_NOT_FOUND)]


class ConfidentialAccess:
    """Whether the key may list confidential opportunities, learnt once (a 403 means no)."""

    def __init__(self) -> None:
        self.confidential: bool | None = None

    def list(self, client: OpportunityReader, **filters: Any) -> list[dict]:
        if self.confidential is not False:
            try:
                found = list(client.iter_opportunities(confidentiality="all", **filters))
                self.confidential = True
                return found
            except PermissionDeniedError:
                self.confidential = False
        return list(client.iter_opportunities(**filters))
