"""What every ledger row of one run shares (who, why, where, on whose behalf, which toolkit), and
one row per write call (`LedgerRun.record`). The runner of apply/rollback and the sync checker
call `record` once per write they send, before journaling its outcome."""

from __future__ import annotations

import getpass
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import toolkit
from toolkit.enums import CallState
from toolkit.errors import LeverError
from toolkit.ledger.store import Ledger, default_ledger_path

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import TagClient

log = logging.getLogger(__name__)

NO_PERFORM_AS = "(none: Lever attributes the change to the key's own user)"


def os_operator() -> str:
    """The OS user running the toolkit (the default operator)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return f"uid {os.getuid()}"


def after_tags(op: str, tags: list[str], before: list[str] | None, outcome: str) -> list[str]:
    """The tags once the call is through: Lever's echo when given, else computed from before.

    Example:
        >>> after_tags("add", ["x"], ["a"], "done"), after_tags("remove", ["a"], ["a", "b"], "done")
        (['a', 'x'], ['b'])
        >>> after_tags("add", ["x"], ["a"], "failed")
        ['a']
    """
    now = list(before or [])
    if outcome != CallState.DONE:  # (a sync write's "done" is the same word)
        return now
    if op == "add":
        return now + [t for t in tags if t not in now]
    return [t for t in now if t not in set(tags)]


@dataclass
class LedgerRun:
    """The fields one run's rows share, and the ledger they go to.

    Args:
        ledger: the open `Ledger`.
        source: ``apply``, ``rollback`` or ``sync``.
        operator: who ran it (``--operator``, else the OS user).
        reason: why (``--reason``: a ticket, a change request).
        host, account: the Lever host and the account fingerprint written to.
        client: reads the name of each `perform_as` user once (``GET /users/{id}``).
        plan_sha256: the plan's digest (sync: each contact's plan; set per row).
        journal: the run journal (or the sync journal) beside the ledger.
        sources: ``{opportunity: {tag: [opportunities it was copied from]}}`` (the plan's).
    """

    ledger: Ledger
    source: str
    operator: str
    reason: str
    host: str
    account: str
    client: TagClient | None = None
    plan_sha256: str = ""
    journal: str = ""
    sources: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    rows: int = 0
    _names: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def name_of(self, perform_as: str | None) -> str:
        """The name of a perform_as user, read once per run."""
        key = perform_as or ""
        with self._lock:
            if key not in self._names:
                self._names[key] = user_name(self.client, perform_as)
            return self._names[key]

    def record(
        self,
        *,
        opportunity_id: str,
        contact_id: str,
        op: str,
        tags: list[str],
        before: list[str] | None,
        outcome: str,
        status: int | None = None,
        perform_as: str | None = None,
        after: list[str] | None = None,
        plan_sha256: str | None = None,
        sources: dict[str, dict[str, list[str]]] | None = None,
    ) -> int:
        """Append the row of one write call; returns its number in the ledger."""
        known = (sources if sources is not None else self.sources).get(opportunity_id) or {}
        copied = {t: list(known[t]) for t in tags if known.get(t)}
        if after is None:
            after = after_tags(op, tags, before, outcome)
        seq = self.ledger.append(
            {
                "source": self.source,
                "operator": self.operator,
                "reason": self.reason,
                "host": self.host,
                "account": self.account,
                "perform_as": perform_as or "",
                "perform_as_name": self.name_of(perform_as),
                "toolkit_version": toolkit.__version__,
                "plan_sha256": plan_sha256 or self.plan_sha256,
                "journal": self.journal,
                "opportunity_id": opportunity_id,
                "contact_id": contact_id,
                "op": op,
                "tags": list(tags),
                "tags_before": list(before or []),
                "tags_after": list(after),
                "copied_from": copied or None,
                "outcome": outcome,
                "status": status,
            }
        )
        self.rows += 1
        return seq

    def close(self) -> None:
        self.ledger.close()


def user_name(client: TagClient | None, perform_as: str | None) -> str:
    """The name of the `perform_as` user (one ``GET /users/{id}``), for the ledger."""
    if not perform_as:
        return NO_PERFORM_AS
    if client is None:
        return "(unknown: no client to read the user with)"
    try:
        user = client.get_user(perform_as)
    except LeverError as exc:
        log.warning("could not read the name of perform_as user %s: %s", perform_as, exc)
        return "(unknown: the user could not be read)"
    return str(user.get("name") or user.get("email") or "(no name)")


def open_ledger_run(
    client: TagClient | None,
    *,
    source: str,
    account: dict[str, Any] | None,
    operator: str | None = None,
    reason: str = "",
    plan_sha256: str = "",
    journal: str | os.PathLike = "",
    sources: dict[str, dict[str, list[str]]] | None = None,
    path: str | os.PathLike | None = None,
) -> LedgerRun:
    """Open the ledger (`path`, else `LEVER_LEDGER`, else beside the reports) for one run."""
    account = account or {}
    host = account.get("host") or str(getattr(client, "base_url", ""))
    return LedgerRun(
        ledger=Ledger(Path(path) if path else default_ledger_path()),
        source=source,
        operator=(operator or "").strip() or os_operator(),
        reason=reason or "",
        host=host,
        account=account.get("fingerprint") or "(unknown: the key may not list users)",
        client=client,
        plan_sha256=plan_sha256,
        journal=str(journal),
        sources=dict(sources or {}),
    )


__all__ = ["LedgerRun", "after_tags", "open_ledger_run", "os_operator", "user_name"]
