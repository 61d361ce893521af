"""The sync service as a use case: its options checked once, then the service started.

`lever-tags sync` parses arguments into `SyncOptions`, calls `start_sync`, prints what it
returns and waits for a signal; every rule about what a valid service is lives here. Errors
name the options as fields (``{poll_interval}``), which each face words its own way.

Example:
    >>> SyncOptions("policy.yaml", "sync.sqlite", poll_interval=0).check()
    Traceback (most recent call last):
    ...
    toolkit.errors.ConfigurationError: poll_interval must be > 0 (0 is allowed only with listen)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from toolkit.client import LeverClient
from toolkit.client.account import account_of
from toolkit.errors import ConfigurationError
from toolkit.ledger.entry import LedgerRun, open_ledger_run
from toolkit.policy import load_policy
from toolkit.sync.registration import check_receiver_url, unregister_webhooks
from toolkit.sync.service import SyncService
from toolkit.sync.store import SyncJournal
from toolkit.sync.webhook import SECRET_ENV, WebhookSecrets


@dataclass(frozen=True)
class SyncOptions:
    """What a sync service is asked to do (the `lever-tags sync` options, by field)."""

    policy_path: str
    journal_path: str
    listen: str | None = None  # HOST:PORT for webhooks, /healthz and /metrics
    poll_interval: float = 300.0  # seconds; 0: webhooks only (needs listen)
    perform_as: str | None = None
    max_changes_per_hour: int = 500
    workers: int = 4
    replay_window: float | None = None  # seconds; None: a delivery of any age
    register_url: str | None = None  # make Lever's webhooks to this HTTPS URL
    write: bool = False  # False: a dry run
    operator: str | None = None
    reason: str | None = None

    def address(self) -> tuple[str, int] | None:
        """`listen` as (host, port); None when the service does not listen.

        Example:
            >>> SyncOptions("p", "j", listen="[::1]:8080").address()
            ('::1', 8080)
        """
        if self.listen is None:
            return None
        host, sep, port = self.listen.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            got = repr(self.listen).replace("{", "{{").replace("}", "}}")  # braces: not fields
            raise ConfigurationError.naming(
                f"{{listen}} takes HOST:PORT, e.g. 127.0.0.1:8080 (got {got})"
            )
        return host, int(port)

    def check(self) -> None:
        """Refuse options no service can run with, naming the field (nothing started)."""
        listen = self.address()
        if self.register_url is not None:
            if listen is None:
                raise ConfigurationError.naming(
                    "{register_url} needs {listen} HOST:PORT (where Lever's calls arrive, "
                    "behind your HTTPS proxy)"
                )
            check_receiver_url(self.register_url)
        for name, value in (
            ("poll_interval", self.poll_interval),
            ("replay_window", self.replay_window),
        ):
            if value is not None and not math.isfinite(value):  # nan passes every comparison
                raise ConfigurationError.naming(
                    f"{{{name}}} must be a finite number of seconds (got {value})"
                )
        if self.poll_interval < 0 or (listen is None and self.poll_interval == 0):
            raise ConfigurationError.naming(
                "{poll_interval} must be > 0 (0 is allowed only with {listen})"
            )
        if self.max_changes_per_hour < 1:
            raise ConfigurationError.naming("{max_changes_per_hour} must be at least 1")
        if self.workers < 1:
            raise ConfigurationError.naming("{workers} must be at least 1")
        if self.replay_window is not None and not 0 < self.replay_window < math.inf:
            raise ConfigurationError.naming(
                "{replay_window} must be a finite number of seconds > 0"
            )


@dataclass
class SyncRun:
    """A started service and the ledger its writes go to; `stop` ends both."""

    service: SyncService
    ledger: LedgerRun | None = None
    registered: list[str] = field(default_factory=list)  # events of the webhooks it made

    def stop(self) -> None:
        try:
            self.service.stop()
        finally:
            if self.ledger is not None:
                self.ledger.close()


def webhook_secrets() -> WebhookSecrets:
    """The webhook tokens of `LEVER_WEBHOOK_SECRET` (one token or EVENT=TOKEN pairs)."""
    try:
        return WebhookSecrets.parse(os.environ.get(SECRET_ENV))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def start_sync(options: SyncOptions, client: LeverClient | None = None) -> SyncRun:
    """Check the options and the policy, then start the service (journal, threads, listener).

    Raises:
        ConfigurationError: bad options, a policy without contact-level tags, bad webhook
            tokens, a journal of another run or account, or an address it cannot listen on.
    """
    options.check()
    policy = load_policy(options.policy_path)
    if not policy.contact_level and not policy.patterns:
        raise ConfigurationError(
            f"{options.policy_path}: no contact_level tags: there is nothing to sync"
        )
    secret = webhook_secrets()
    client = client or LeverClient.from_env()
    ledger = None
    if options.write:  # every write also goes to the ledger (docs/operations.md)
        ledger = open_ledger_run(
            client,
            source="sync",
            account=account_of(client),
            operator=options.operator,
            reason=options.reason or f"sync: contact-level tags of {options.policy_path}",
            journal=options.journal_path,
        )
    service = SyncService(
        client,
        policy,
        options.journal_path,
        dry_run=not options.write,
        perform_as=options.perform_as,
        listen=options.address(),
        secret=secret,
        poll_interval=options.poll_interval,
        max_changes_per_hour=options.max_changes_per_hour,
        workers=options.workers,
        replay_window=options.replay_window,
        register_url=options.register_url,
        ledger=ledger,
    )
    try:
        service.start()
    except OSError as exc:  # the port is taken, the address is not this machine's
        if ledger is not None:
            ledger.close()
        raise ConfigurationError(
            f"cannot listen on {options.listen}: {exc.strerror or exc}"
        ) from None
    except BaseException:
        if ledger is not None:
            ledger.close()
        raise
    registered = []
    if options.register_url and service.journal is not None:
        registered = [r["event"] for r in service.journal.registered_webhooks()]
    return SyncRun(service, ledger, registered)


def unregister_sync_webhooks(
    journal_path: str, client: LeverClient | None = None
) -> list[dict[str, Any]]:
    """Delete the webhooks a sync journal's `register_url` made; their tokens leave it."""
    with SyncJournal(journal_path) as journal:
        run = journal.run()
        if run is not None and run["kind"] != "sync":
            raise ConfigurationError(f"the journal {journal_path} belongs to an {run['kind']} run")
        return unregister_webhooks(client or LeverClient.from_env(), journal)


__all__ = ["SyncOptions", "SyncRun", "start_sync", "unregister_sync_webhooks", "webhook_secrets"]
