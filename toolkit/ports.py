"""What the use-case layer, the remediation and sync receive from the Lever client, as Protocols.

`toolkit.client.LeverClient` is one of each; a test's fake (or another transport) is another, as
long as it has the methods. Light: nothing is imported at run time but `typing` (the client's
types are named for the type checker only), so any layer may name these.

- `OpportunityReader`: lists and reads opportunities (the snapshot, the remediation's re-reads,
  verify, sync's polling).
- `TagClient`: reads, writes tags and names the acting user (apply, rollback, sync's checks).
- `LeverAPI`: the whole client as the workflows use it (snapshots, users, webhooks too).
- `ContactLevelSource`: a policy as the audit and the reports read it (its contact-level tags;
  a `toolkit.policy.Policy` also resolves its patterns and families).
- `PolicySource`: a policy as the planner reads it: a `Policy` or the mapping of a policy file.

mypy checks that a `LeverClient` is each of them wherever one is passed (`make test`); they
are runtime-checkable too (`isinstance` sees whether the methods are there, not their types).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:  # types of higher layers, named for the checker only
    from toolkit.client.http import Page
    from toolkit.client.stats import CallRecord, ClientStats
    from toolkit.policy import Policy

    PolicySource: TypeAlias = Policy | Mapping[str, Any]


@runtime_checkable
class ContactLevelSource(Protocol):
    """A policy as the audit and the reports read it: its contact-level tags."""

    @property
    def contact_level(self) -> Sequence[str]: ...


@runtime_checkable
class OpportunityReader(Protocol):
    """Lists and reads opportunities through the client's one request path."""

    base_url: str
    stats: ClientStats
    server_time_ms: int | None  # Lever's clock, from the last answer's Date header

    def iter_opportunities(self, **filters: Any) -> Iterator[dict[str, Any]]: ...

    def iter_opportunity_pages(self, **filters: Any) -> Iterator[Page]: ...

    def get_opportunity(self, opportunity_id: str, **params: Any) -> dict[str, Any]: ...

    def iter_users(self, email: str | None = None) -> Iterator[dict[str, Any]]: ...


@runtime_checkable
class TagClient(OpportunityReader, Protocol):
    """An `OpportunityReader` that also writes tags, per thread counting what each call took."""

    def add_tags(
        self, opportunity_id: str, tags: Iterable[str], perform_as: str | None = None
    ) -> dict[str, Any]: ...

    def remove_tags(
        self, opportunity_id: str, tags: Iterable[str], perform_as: str | None = None
    ) -> dict[str, Any]: ...

    def get_user(self, user_id: str) -> dict[str, Any]: ...

    def start_call_record(self) -> CallRecord: ...

    @property
    def call_record(self) -> CallRecord: ...


@runtime_checkable
class LeverAPI(TagClient, Protocol):
    """The whole client as the workflows and sync use it: also the account's catalogs and
    Lever's webhooks API."""

    def iter_postings(self) -> Iterator[dict[str, Any]]: ...

    def iter_archive_reasons(self) -> Iterator[dict[str, Any]]: ...

    def iter_deleted_opportunities(self, **filters: Any) -> Iterator[dict[str, Any]]: ...

    def list_webhooks(self) -> Iterator[dict[str, Any]]: ...

    def create_webhook(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete_webhook(self, webhook_id: str) -> None: ...
