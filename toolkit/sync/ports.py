"""What the HTTP side (`toolkit.sync.web`) needs of the service, as a Protocol.

`toolkit.sync.service` builds the HTTP side and the HTTP side calls the service back; with this
type between them the imports go one way (`web` <- `service`), checked by the import contract in
pyproject.toml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from toolkit.sync.metrics import SyncMetrics
    from toolkit.sync.store import SyncJournal
    from toolkit.sync.webhook import WebhookSecrets


class WebhookSink(Protocol):
    """The service as its HTTP handlers see it (`toolkit.sync.service.SyncService` is one)."""

    secrets: WebhookSecrets
    replay_window: float | None
    max_body_bytes: int
    metrics: SyncMetrics
    journal: SyncJournal | None

    def queue_full(self) -> bool: ...

    def wake(self) -> None: ...

    def health(self, *, with_error: bool = True) -> dict[str, Any]: ...
