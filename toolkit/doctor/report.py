"""`lever-tags doctor`: check, against the configured account, every Lever behaviour the toolkit
relies on, and print a compatibility table.

Read-only by default and bounded (about a dozen reads plus a burst of at most `BURST` cheap reads):
safe on production. ``write_test`` adds and removes a throwaway tag on one opportunity, through
`apply_plan` and `rollback` (so journaled and reversible), to see whether a tag write moves
``updatedAt`` and what a write with a wrong ``perform_as`` answers.

Each row compares what the account answers with what the toolkit was written and tested
against (the local sandbox's defaults, see docs/lever-fidelity.md). A row that differs does not
always break the toolkit (it tolerates every variant the sandbox offers as a mode), but it is
what we need to hear about: the exit code is 1 and the table says what to send.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from toolkit import __version__
from toolkit.client import LeverClient
from toolkit.doctor.checks import (
    DIFFERS,
    SKIPPED,
    Check,
    Probe,
    check_archived,
    check_bearer_refuses_key,
    check_burst,
    check_confidential,
    check_deleted,
    check_listing_order,
    check_pagination,
    check_perform_as_read,
    check_windows,
    clip,
    run_write_test,
    terminal_safe,
)
from toolkit.errors import (
    AuthenticationError,
    LeverError,
)


@dataclass
class DoctorReport:
    """The rows, the requests they took, and the exit code they mean."""

    host: str
    auth_kind: str
    checks: list[Check] = field(default_factory=list)
    requests: int = 0

    @property
    def differences(self) -> list[Check]:
        return [c for c in self.checks if c.status == DIFFERS]

    @property
    def exit_code(self) -> int:
        return 1 if self.differences else 0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.checks])

    def as_dict(self) -> dict[str, Any]:
        return {
            "toolkit_version": __version__,
            "host": self.host,
            "auth_kind": self.auth_kind,
            "requests": self.requests,
            "differences": [c.name for c in self.differences],
            "checks": [asdict(c) for c in self.checks],
        }

    def table(self) -> str:
        """The compatibility table as aligned plain text (terminal-safe)."""
        header = ("check", "expected", "observed", "status")
        rows = [(c.name, c.expected, c.observed, c.status) for c in self.checks]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        widths = [min(w, 60) for w in widths]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(clip(c, w).ljust(w) for c, w in zip(cells, widths, strict=True))

        out = [line(header), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in rows]
        notes = [f"- {c.name}: {c.note}" for c in self.checks if c.note]
        return "\n".join(out + (["", *notes] if notes else []))


def run_doctor(
    client: LeverClient,
    *,
    write_test: str | None = None,
    journal_dir: str | os.PathLike | None = None,
    perform_as: str | None = None,
    clock: Callable[[], float] = time.time,
) -> DoctorReport:
    """Run every check; returns the report (see `DoctorReport.exit_code`).

    Args:
        client: a `LeverClient` for the account to check.
        write_test: an opportunity id: add and remove a throwaway tag on it (journaled).
        journal_dir: where the write test's journals go (default: a new temporary folder).
        perform_as: the user the write test's changes are attributed to.
        clock: seconds since the epoch (tests).

    Raises:
        AuthenticationError: the very first call was refused (bad configuration).
    """
    report = DoctorReport(host=client.base_url, auth_kind=client.auth_kind)
    before = client.stats.requests
    probe = Probe(client)
    checks = report.checks
    # 1. auth: the first call; a refusal here is bad configuration (raised: exit 2)
    probe.get("/users", limit=1)
    kind = "API key (HTTP Basic)" if client.auth_kind == "api_key" else "OAuth token (Bearer)"
    checks.append(Check("auth", "accepted", f"{kind} accepted"))
    steps = [
        check_bearer_refuses_key,
        check_pagination,
        check_confidential,
        check_archived,
        check_windows,
        check_listing_order,
        check_perform_as_read,
        check_deleted,
        check_burst,
    ]
    state: dict[str, Any] = {}
    for step in steps:
        try:
            step(client, probe, checks, state)
        except AuthenticationError as exc:
            checks.append(
                Check(
                    "credential stays valid",
                    "valid for the whole run (OAuth tokens live one hour)",
                    f"refused after {client.stats.requests - before} requests: {exc.message}",
                    DIFFERS,
                    "refresh the token and run doctor again; a long apply stops the same way "
                    "and resumes from its journal",
                )
            )
            report.requests = client.stats.requests - before
            return report
        except LeverError as exc:  # one check failed to run: shown, the others go on
            checks.append(
                Check(
                    step.__name__.removeprefix("check_"), "an answer", terminal_safe(exc), DIFFERS
                )
            )
    if write_test:
        run_write_test(client, checks, write_test, journal_dir, perform_as)
    else:
        checks.append(
            Check(
                "tag write moves updatedAt",
                "yes (never relied on)",
                "not checked",
                SKIPPED,
                "run with --write-test OPPORTUNITY_ID --yes to check (adds and removes a "
                "throwaway tag on that one opportunity, journaled)",
            )
        )
    report.requests = client.stats.requests - before
    return report
