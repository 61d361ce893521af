"""A whole account's opportunities through `WindowedListing` (no pandas: a CLI can load it
meanwhile), with what is known about how they were fetched.

`start_fetch` runs the listing in a thread of its own, so that `lever-tags snapshot` lists while
pandas and the rest of the toolkit load; the account check and the catalogs (users, postings,
archive reasons: a few requests) go beside the first pages instead of after the last one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from toolkit.client.account import recorded_account
from toolkit.errors import AuthenticationError, LeverError, PermissionDeniedError
from toolkit.progress import progress_bar
from toolkit.snapshot.rows import opportunity_row
from toolkit.snapshot.windows import WindowedListing

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_CONFIDENTIAL_ACCESS = (
    "this key has no access to confidential opportunities: the snapshot holds "
    "non-confidential opportunities only (ask a Lever admin for a key with "
    "confidential access for a complete audit)"
)


@dataclass
class AccountContext:
    """What a snapshot records beside the opportunities: the account and the catalogs' texts."""

    account: dict[str, Any] | None  # `recorded_account`: None when GET /users failed
    catalogs: dict[str, dict[str, str]]  # `account_catalogs`
    warnings: list[str] = field(default_factory=list)
    requests: int = 0  # HTTP attempts these reads took


@dataclass
class Fetched:
    """Every opportunity of one fetch, by id, and what is known about how it was fetched."""

    items: dict[str, dict]
    filters: dict[str, Any]
    warnings: list[str]
    started: float  # time.monotonic() when the fetch began
    server_started_ms: int | None  # Lever's clock at its first answer
    stats: dict[str, Any]
    context: AccountContext | None = None  # read during the fetch (`read_context=True`)
    rows: dict[str, tuple] | None = None  # `rows.opportunity_row` of each item, parsed as listed
    with_personal: bool = False  # the rows' personal columns


class ParsedItems(dict[str, dict]):
    """The listing's opportunities by id, each also parsed into its snapshot row when stored
    (the catch-up's newer copy replaces both), so the frame is ready with the last page."""

    def __init__(self, with_personal: bool) -> None:
        super().__init__()
        self.with_personal = with_personal
        self.rows: dict[str, tuple] = {}

    def __setitem__(self, key: str, value: dict) -> None:
        super().__setitem__(key, value)
        row = opportunity_row(value, self.with_personal)
        if row is not None:
            self.rows[key] = row


def account_catalogs(client: Any, warnings_: list[str]) -> dict[str, dict[str, str]]:
    """The texts behind the snapshot's ids: postings' titles and archive reasons (a few calls).

    A key that may not read a catalog (403), an account without it (404) or a failing one
    keeps the ids only, with a warning: the audit does not need the texts, the people do.
    """
    catalogs: dict[str, dict[str, str]] = {}
    for name, items in (
        ("postings", client.iter_postings),
        ("reasons", client.iter_archive_reasons),
    ):
        try:
            catalogs[name] = {
                i["id"]: i["text"]
                for i in items()
                if isinstance(i.get("id"), str) and isinstance(i.get("text"), str)
            }
        except AuthenticationError:
            raise
        except LeverError as exc:  # decoration: a refused or failing catalog costs its texts
            label = "posting titles" if name == "postings" else "archive reasons"
            note = f"{label} not read ({exc.status or type(exc).__name__}): the reports show ids"
            log.warning(note)
            warnings_.append(note)
    return catalogs


def read_account_context(client: Any) -> AccountContext:
    """The account (`recorded_account`) and the catalogs, counting the attempts they take.

    Call it in a thread of its own: the count is that thread's (`LeverClient.call_record`).
    """
    record = client.start_call_record() if hasattr(client, "start_call_record") else None
    notes: list[str] = []
    account = recorded_account(client)
    catalogs = account_catalogs(client, notes)
    return AccountContext(account, catalogs, notes, record.attempts if record else 0)


def hostile_text_warning(count: int) -> str:
    """The snapshot's warning when Lever's answers held undecodable text (a lone surrogate).

    Example:
        >>> hostile_text_warning(2)[:48]
        'hostile text: 2 value(s) from Lever held undecod'
    """
    return (
        f"hostile text: {count} value(s) from Lever held undecodable characters (lone "
        "surrogates or invalid UTF-8), replaced with U+FFFD; such a tag shows as its "
        "replacement and is never written back"
    )


# The ids Lever may replace by their objects in the same listing (no extra call): the owner
# (a user: name, email), the stage (its text), the applications (their posting's id).
EXPAND = ("applications", "stage", "owner")


def fetch_opportunities(
    client: OpportunityReader,
    *,
    include_archived: bool = True,
    workers: int = 8,
    progress: bool | None = None,
    now_ms: int | None = None,
    trust_order: bool = True,
    read_context: bool = False,
    with_personal: bool | None = None,
) -> Fetched:
    """List every considered opportunity of the account (no pandas: a CLI can load it meanwhile).

    Confidential ones included (`confidentiality=all`; a key without that access gets the
    non-confidential ones and a warning), archived ones unless `include_archived` is False.

    Args:
        client: a `LeverClient`; its rate limiter paces every window.
        include_archived: keep archived opportunities.
        workers: the fewest windows listed at once (see `WindowedListing`).
        progress: show a tqdm bar; None = in a terminal or Jupyter (see `toolkit.progress`).
        now_ms: the present, ms since the epoch (tests).
        trust_order: see `WindowedListing`.
        read_context: also read the account and the catalogs (`read_account_context`) beside
            the listing's first pages; their requests are counted apart (`context_requests`).
        with_personal: parse each page into snapshot rows as it arrives (`Fetched.rows`), with
            names and emails or without; None = keep the items only.
    """
    started = time.monotonic()
    before = client.stats.as_dict()
    context = in_thread(read_account_context, client) if read_context else None
    filters: dict[str, Any] = {"confidentiality": "all", "expand": list(EXPAND)}
    if not include_archived:
        filters["archived"] = False
    warnings_: list[str] = []
    bar = progress_bar(progress, desc="opportunities", unit=" opp")

    options: dict[str, Any] = {"workers": workers, "now_ms": now_ms, "on_items": bar.update}
    try:
        listing = _listing(client, trust_order, with_personal, options)
        items = listing.run([(filters, (None, None))])
    except PermissionDeniedError:
        log.warning(NO_CONFIDENTIAL_ACCESS)
        warnings_.append(NO_CONFIDENTIAL_ACCESS)
        filters = {k: v for k, v in filters.items() if k != "confidentiality"}
        listing = _listing(client, trust_order, with_personal, options)
        items = listing.run([(filters, (None, None))])
    finally:
        bar.close()
    side = context.result() if context is not None else None
    after = client.stats.as_dict()
    stats = {
        "pages": listing.stats["pages"],
        "windows": listing.stats["windows"],
        "cuts": listing.stats["cuts"],
        "order": listing.order_seen,
        "order_trusted": listing.order_trusted,
        "handed_on": listing.stats["handed_on"],
        "relisted": listing.stats["relisted"],
        "catch_up_pages": listing.stats["catch_up_pages"],
        **{k: after[k] - before[k] for k in ("requests", "retries", "rate_limited")},
    }
    if side is not None:  # the listing's own requests, and the context's beside them
        stats["requests"] -= side.requests
        stats["context_requests"] = side.requests
    if replaced := after["replaced_text"] - before["replaced_text"]:
        warnings_.append(hostile_text_warning(replaced))
    rows = items.rows if isinstance(items, ParsedItems) else None
    return Fetched(
        items,
        filters,
        warnings_,
        started,
        listing.server_time_ms,
        stats,
        side,
        rows,
        bool(with_personal),
    )


def _listing(
    client: Any, trust_order: bool, with_personal: bool | None, options: dict[str, Any]
) -> WindowedListing:
    listing = WindowedListing(client, trust_order=trust_order, **options)
    if with_personal is not None:
        listing.items = ParsedItems(with_personal)
    return listing


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """`function(*args, **kwargs)` in a daemon thread (an interrupted command does not wait
    for it); its result or exception in the returned future.

    Example:
        >>> in_thread(sum, [1, 2]).result()
        3
    """
    future: Future[T] = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=work, name=getattr(function, "__name__", "work"), daemon=True).start()
    return future


def start_fetch(client: Any, **options: Any) -> Future[Fetched]:
    """`fetch_opportunities(client, read_context=True, **options)`, started in a thread now.

    What `lever-tags snapshot` does first: the listing runs while the rest of the toolkit
    (pandas, pyarrow) loads; `fetch_snapshot(client, fetched=future)` waits for it.
    """
    return in_thread(fetch_opportunities, client, read_context=True, **options)
