"""The checks of `lever-tags doctor`, one function per Lever behaviour the toolkit relies on."""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd

from toolkit.client import LeverClient
from toolkit.client.http import deleted_ids
from toolkit.errors import (
    AuthenticationError,
    BadRequestError,
    LeverError,
    PermissionDeniedError,
)
from toolkit.remediate.apply import apply_plan
from toolkit.remediate.plan import Plan
from toolkit.remediate.rollback import rollback
from toolkit.sanitize import private_dir
from toolkit.snapshot.order import OrderEvidence, describe, describe_nulls

OK, DIFFERS, WARN, SKIPPED = "ok", "DIFFERS", "warn", "skipped"
SEEN = "seen"  # a behaviour reported as observed: the toolkit copes with every answer

DELETED_DOCUMENTED = "opportunity + deletedBy + deletedAt"


BURST = 15  # requests of the 429 probe: never more


THROWAWAY_PREFIX = "lever-tags-doctor-"


@dataclass
class Check:
    """One row of the table."""

    name: str
    expected: str
    observed: str
    status: str = OK
    note: str = ""


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(value: Any, limit: int = 120) -> str:
    """Text from Lever for a terminal: control and bidi characters shown escaped, clipped."""
    text = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return clip(text, limit)


class Probe:
    """Raw single requests (no retry) through the client's session and limiter."""

    def __init__(self, client: LeverClient) -> None:
        self.client = client

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.client._request("GET", path, params=params)


def _token_shape(token: str) -> str:
    try:
        value = json.loads(unquote(token))
    except ValueError:
        return "opaque"
    if isinstance(value, list) and token.startswith("%5B"):
        return "percent-encoded JSON array"
    return "JSON, not percent-encoded"


def check_bearer_refuses_key(client, probe, checks, state) -> None:
    if client.auth_kind != "api_key":
        return
    key = client.session.auth[0] if isinstance(client.session.auth, tuple) else None
    if not key:
        return
    response = client.session.request(
        "GET",
        f"{client.base_url}/users",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {key}"},
        auth=_NoAuth(),
        timeout=client.timeout,
        allow_redirects=False,
    )
    client.stats.add(requests=1)
    observed = "refused (401)" if response.status_code == 401 else f"HTTP {response.status_code}"
    status = OK if response.status_code == 401 else DIFFERS
    checks.append(Check("API key sent as Bearer", "refused (401)", observed, status))


class _NoAuth:
    """A requests auth that leaves the headers as given (the session's Basic auth off)."""

    def __call__(self, request: Any) -> Any:
        return request


def check_pagination(client, probe, checks, state) -> None:
    first = probe.get("/opportunities", limit=100)
    data = first.get("data") or []
    state["page1"] = data
    omitted = bool(first.get("hasNext")) and not first.get("next")
    if omitted:
        first = probe.get("/opportunities", limit=100)  # asked again, as the toolkit does
        data = first.get("data") or []
    checks.append(
        Check(
            "hasNext without next",
            "never",
            "seen on the first page" if omitted else "not seen",
            DIFFERS if omitted else OK,
            "the toolkit restarts such a listing, then fails naming it; never a short result"
            if omitted
            else "",
        )
    )
    token = first.get("next")
    if not first.get("hasNext") or not token:
        checks.append(
            Check(
                "pagination past 100",
                "page 2 via offset",
                "one page only",
                SKIPPED,
                "the account has 100 opportunities or fewer (non-confidential)",
            )
        )
        return
    checks.append(
        Check(
            "offset token shape",
            "percent-encoded JSON array",
            _token_shape(token),
            OK if _token_shape(token) == "percent-encoded JSON array" else DIFFERS,
            "treated as opaque either way",
        )
    )
    second = probe.get("/opportunities", limit=100, offset=token)
    ids = {o.get("id") for o in data}
    new = [o for o in second.get("data") or [] if o.get("id") not in ids]
    good = bool(new)
    checks.append(
        Check(
            "pagination past 100",
            "page 2 via the offset token passed back",
            f"page 2: {len(new)} new opportunities" if good else "page 2 brought nothing new",
            OK if good else DIFFERS,
        )
    )
    # The token with other parameters. Lever documents only that a token must come from a
    # previous listing; what it answers to one reused with another query is not documented
    # (a 400 "Invalid offset token" was seen, with the same sort it may well be accepted), and
    # the toolkit never reuses a token that way. So the answer is reported as observed.
    try:
        answer = probe.get("/opportunities", limit=1, archived="false", offset=token)
        observed = "accepted (200 with data)" if "data" in answer else "200 without data"
    except BadRequestError as exc:  # InvalidOffsetTokenError included
        observed = f"HTTP {exc.status}: {terminal_safe(exc.message, 70)}"
    checks.append(
        Check(
            "offset token with another query",
            "not documented (reported as seen)",
            observed,
            SEEN,
            "the toolkit never reuses a token across queries, and reads the body of any "
            "invalid-offset answer whatever its status",
        )
    )


def check_confidential(client, probe, checks, state) -> None:
    default = state.get("page1") or []
    leaked = sum(1 for o in default if o.get("confidentiality") == "confidential")
    checks.append(
        Check(
            "confidentiality default",
            "non-confidential only",
            "non-confidential only" if not leaked else f"{leaked} confidential on page 1",
            OK if not leaked else DIFFERS,
        )
    )
    try:
        everything = probe.get("/opportunities", limit=100, confidentiality="all")
    except PermissionDeniedError:
        checks.append(Check("confidentiality=all", "200, or 403 without access", "403", OK))
        checks.append(
            Check(
                "key sees confidential data",
                "yes",
                "no (403)",
                WARN,
                "audits miss confidential opportunities; ask a Lever admin for a key with "
                "confidential access",
            )
        )
        return
    seen = sum(
        1 for o in everything.get("data") or [] if o.get("confidentiality") == "confidential"
    )
    checks.append(Check("confidentiality=all", "200, or 403 without access", "200", OK))
    if seen:
        checks.append(Check("key sees confidential data", "yes", f"yes ({seen} on page 1)", OK))
        return
    try:
        only = probe.get("/opportunities", limit=1, confidentiality="confidential")
        observed = "unknown: none returned" + (
            " (confidential-only listing empty)" if not only.get("data") else ""
        )
    except PermissionDeniedError:
        checks.append(Check("key sees confidential data", "yes", "no (403)", WARN))
        return
    checks.append(
        Check(
            "key sees confidential data",
            "yes, or a 403",
            observed,
            DIFFERS,
            "Lever may leave confidential ones out silently for a key without access, or the "
            "account has none; audits then report confidential_access: null",
        )
    )


def check_archived(client, probe, checks, state) -> None:
    archived = probe.get("/opportunities", limit=100, archived="true").get("data") or []
    active = probe.get("/opportunities", limit=100, archived="false").get("data") or []

    def is_archived(o: dict) -> bool:
        return bool(o.get("archived")) or o.get("archivedAt") is not None

    wrong = sum(1 for o in archived if not is_archived(o)) + sum(
        1 for o in active if is_archived(o)
    )
    checks.append(
        Check(
            "archived filter",
            "true = archived only, false = active only",
            f"{len(archived)} archived / {len(active)} active on page 1"
            + (f", {wrong} misfiled" if wrong else ""),
            OK if not wrong else DIFFERS,
        )
    )


def check_windows(client, probe, checks, state) -> None:
    sample = next(
        (o for o in state.get("page1") or [] if isinstance(o.get("createdAt"), int)), None
    )
    if sample is None:
        checks.append(
            Check("time filters inclusive", "both ends", "no opportunity to test", SKIPPED)
        )
        return
    at = sample["createdAt"]
    found = probe.get("/opportunities", limit=100, created_at_start=at, created_at_end=at)
    hit = any(o.get("id") == sample.get("id") for o in found.get("data") or [])
    checks.append(
        Check(
            "time filters inclusive",
            "both ends (start = end = createdAt finds it)",
            "inclusive" if hit else "exclusive",
            OK if hit else DIFFERS,
        )
    )


def _answer(action: Callable[[], Any], expected: int, success: str) -> tuple[str, str]:
    """(observed, status) of one call that should fail with `expected` (401 is raised)."""
    try:
        action()
    except AuthenticationError:
        raise
    except LeverError as exc:
        observed = f"{exc.status}: {terminal_safe(exc.message, 60)}"
        return observed, OK if exc.status == expected else DIFFERS
    return success, DIFFERS


def check_perform_as_read(client, probe, checks, state) -> None:
    bogus = str(uuid.uuid4())
    observed, status = _answer(lambda: client.get_user(bogus), 404, "200 (found)")
    checks.append(
        Check(
            "unknown user (GET /users/{id})",
            "404",
            observed,
            status,
            "apply checks --perform-as this way before any write" if status != OK else "",
        )
    )


def check_deleted(client, probe, checks, state) -> None:
    try:
        answer = probe.get("/opportunities/deleted", limit=5)
    except AuthenticationError:
        raise
    except LeverError as exc:
        checks.append(
            Check(
                "deleted opportunities list",
                "200",
                f"HTTP {exc.status}",
                DIFFERS,
                "snapshot --refresh then cannot drop deleted opportunities",
            )
        )
        return
    items = answer.get("data") or []
    expected = f"200, items: {DELETED_DOCUMENTED}"
    if not items:
        checks.append(
            Check(
                "deleted opportunities list",
                expected,
                "200, no deleted opportunity to inspect",
                OK,
            )
        )
        return
    shape = deleted_shape(items[0])
    ids = deleted_ids(items)
    if not ids:
        status, note = DIFFERS, "no id found in the items: refresh cannot use them"
    elif shape != DELETED_DOCUMENTED:
        status, note = WARN, "not Lever's documented shape; the toolkit reads only the id"
    else:
        status, note = OK, ""
    checks.append(
        Check("deleted opportunities list", expected, f"200, items: {shape}", status, note)
    )


def deleted_shape(item: Any) -> str:
    """Name the shape of one item of "List deleted opportunities".

    Example:
        >>> deleted_shape({"id": "a", "contact": "c", "tags": [], "deletedBy": "u",
        ...                "deletedAt": 1})
        'opportunity + deletedBy + deletedAt'
        >>> deleted_shape({"id": "a", "deletedAt": 1})
        '{deletedAt, id}'
    """
    if isinstance(item, dict) and ("contact" in item or "tags" in item):
        extra = [name for name in ("deletedBy", "deletedAt") if name in item]
        return " + ".join(["opportunity", *extra])
    if isinstance(item, dict):
        return "{" + ", ".join(sorted(item)) + "}"
    return type(item).__name__


def check_burst(client, probe, checks, state) -> None:
    url = f"{client.base_url}/users"
    for sent in range(1, BURST + 1):
        response = client.session.request(
            "GET", url, params={"limit": 1}, timeout=client.timeout, allow_redirects=False
        )
        client.stats.add(requests=1)
        if response.status_code == 401:
            raise AuthenticationError("refused during the burst", status=401)
        if response.status_code == 429:
            headers = [
                h
                for h in ("Retry-After", "X-RateLimit-Reset", "X-RateLimit-Remaining")
                if h in response.headers
            ]
            observed = f"429 after {sent} requests; headers: {', '.join(headers) or 'none'}"
            checks.append(
                Check(
                    "429 under a burst",
                    "429, Retry-After optional",
                    observed,
                    OK,
                    "the toolkit honours Retry-After, else backs off with jitter",
                )
            )
            time.sleep(1.0)  # give the bucket back before anything else runs
            return
    checks.append(
        Check(
            "429 under a burst",
            "429, Retry-After optional",
            f"no 429 within {BURST} quick requests",
            OK,
        )
    )


def run_write_test(
    client: LeverClient,
    checks: list[Check],
    opportunity_id: str,
    journal_dir: str | os.PathLike | None,
    perform_as: str | None,
) -> None:
    """Add then remove a throwaway tag on one opportunity, journaled (apply, then rollback)."""

    opp = client.get_opportunity(opportunity_id)
    tag = THROWAWAY_PREFIX + secrets.token_hex(4)
    folder = Path(journal_dir) if journal_dir else Path(tempfile.mkdtemp(prefix="lever-doctor-"))
    private_dir(folder)  # a folder made for --journal-dir is 0700
    journal = folder / f"doctor-write-test-{tag}.sqlite"
    # a write with an unknown perform_as: what does Lever answer?
    bogus = str(uuid.uuid4())

    def wrong_user_write() -> None:
        client.add_tags(opportunity_id, [tag], perform_as=bogus)
        client.remove_tags(opportunity_id, [tag])  # it landed: take it back at once

    observed, status = _answer(wrong_user_write, 400, "200 (written!)")
    checks.append(
        Check(
            "write with a wrong perform_as",
            "400",
            observed,
            status,
            "apply checks --perform-as before writing and confirms any write 404 with a read"
            if status == DIFFERS
            else "",
        )
    )
    contact = opp.get("contact") if isinstance(opp.get("contact"), str) else ""
    rows = pd.DataFrame(
        {"opportunity_id": [opportunity_id], "contact_id": [contact], "op": ["add"], "tag": [tag]}
    )
    plan = Plan(
        rows=rows,
        meta={"mode": "doctor-write-test"},
        before={opportunity_id: {"contact_id": contact, "tags": opp.get("tags") or []}},
    )
    updated_before = opp.get("updatedAt")
    result = apply_plan(
        client,
        plan,
        dry_run=False,
        journal_path=journal,
        perform_as=perform_as,
        workers=1,
        progress=False,
    )
    after = client.get_opportunity(opportunity_id)
    undo = rollback(
        client, journal, dry_run=False, perform_as=perform_as, workers=1, progress=False
    )
    moved = after.get("updatedAt") != updated_before
    checks.append(
        Check(
            "tag write moves updatedAt",
            "yes (never relied on)",
            "yes" if moved else "no",
            OK if moved else DIFFERS,
            f"throwaway tag added and removed, journal {journal}"
            + ("" if result.ok and undo.ok else " (a step failed: see the journal)"),
        )
    )


def check_listing_order(client, probe, checks, state) -> None:
    """The order Lever lists in, plain and under `updated_at_start` (observed, never a failure:
    the fetch is correct in any order and fast in each; see `toolkit.snapshot.order`)."""
    plain = state.get("page1") or probe.get("/opportunities", limit=100).get("data") or []
    since = probe.get("/opportunities", limit=100, updated_at_start=1).get("data") or []
    for name, items in (("plain", plain), ("updated_at_start", since)):
        evidence = OrderEvidence()
        evidence.see(None, [o for o in items if isinstance(o, dict)])
        seen = describe(evidence.left)
        if evidence.proven in evidence.nulls:  # along updatedAt: where a null one stands
            seen += "; " + describe_nulls(evidence.proven, evidence.nulls[evidence.proven])
        checks.append(
            Check(
                f"listing order ({name})",
                "undocumented: any",
                f"{seen} ({len(items)} on page 1)",
                OK,
                "the fetch hands on windows early only in a proven order (along updatedAt, "
                "once the pages show where a null updatedAt is listed)",
            )
        )
