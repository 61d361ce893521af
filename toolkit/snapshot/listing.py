"""A whole account's opportunities through `WindowedListing` (no pandas: a CLI can load it
meanwhile), with what is known about how they were fetched."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toolkit.errors import PermissionDeniedError
from toolkit.progress import progress_bar
from toolkit.snapshot.windows import WindowedListing

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

log = logging.getLogger(__name__)

NO_CONFIDENTIAL_ACCESS = (
    "this key has no access to confidential opportunities: the snapshot holds "
    "non-confidential opportunities only (ask a Lever admin for a key with "
    "confidential access for a complete audit)"
)


@dataclass
class Fetched:
    """Every opportunity of one fetch, by id, and what is known about how it was fetched."""

    items: dict[str, dict]
    filters: dict[str, Any]
    warnings: list[str]
    started: float  # time.monotonic() when the fetch began
    server_started_ms: int | None  # Lever's clock at its first answer
    stats: dict[str, Any]


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
    """
    started = time.monotonic()
    filters: dict[str, Any] = {"confidentiality": "all", "expand": list(EXPAND)}
    if not include_archived:
        filters["archived"] = False
    before = client.stats.as_dict()
    warnings_: list[str] = []
    bar = progress_bar(progress, desc="opportunities", unit=" opp")

    def windowed() -> WindowedListing:  # the same listing, again after a 403
        return WindowedListing(
            client, trust_order=trust_order, workers=workers, now_ms=now_ms, on_items=bar.update
        )

    try:
        listing = windowed()
        items = listing.run([(filters, (None, None))])
    except PermissionDeniedError:
        log.warning(NO_CONFIDENTIAL_ACCESS)
        warnings_.append(NO_CONFIDENTIAL_ACCESS)
        filters = {k: v for k, v in filters.items() if k != "confidentiality"}
        listing = windowed()
        items = listing.run([(filters, (None, None))])
    finally:
        bar.close()
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
    if replaced := after["replaced_text"] - before["replaced_text"]:
        warnings_.append(hostile_text_warning(replaced))
    return Fetched(items, filters, warnings_, started, listing.server_time_ms, stats)
