"""The sandbox's state: opportunities, contacts, users, counters, and how they are queried.

Pure Python and thread-safe: every public method takes one re-entrant lock, so the tornado
IOLoop thread and test threads can call it at the same time. No HTTP here; `server.py` maps
requests onto these methods.

Ordering (Lever's is undocumented): by default opportunities are listed by ``(createdAt, id)``;
``LISTING_ORDERS`` names the others (newest first, by ``updatedAt`` either way, shuffled). A
page cursor is the key of the last item in that order, so a write that moves ``updatedAt``
moves an opportunity in the ``updated`` orders while a listing runs, as it would at Lever.

Time filters: ``updated_at_start/_end`` compare ``updatedAt``. Where an opportunity whose
``updatedAt`` is null stands is undocumented, so it is two modes (the config's
``null_updated_at`` and ``null_updated_filter``): by default it is compared by its
``createdAt``, in the ``updated`` orders and in the filters (a record that never changed was
last updated when it was created); the orders may put it below / above every ``updatedAt``
(ties by id), and the filters may never match it or compare it as 0.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import itertools
import json
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lever_sandbox.config import LISTING_ORDERS
from lever_sandbox.data import Dataset, generate_dataset
from lever_sandbox.filters import opportunity_filter
from lever_sandbox.protocol import Stats, now_ms

STATE_FORMAT = "lever-sandbox-state"
STATE_VERSION = 1


SAVE_DELAY = 0.05  # seconds: writes within this window share one save of the state file
# Where a null updatedAt sorts in the `smallest` / `largest` modes: below / above every timestamp
NULL_SORTS_LOW = -1
NULL_SORTS_HIGH = 2**62

log = logging.getLogger(__name__)


class SandboxState:
    """Opportunities, contacts and users of one sandbox, with Lever's query semantics.

    Args:
        dataset: the initial data (ignored when `state_file` exists: the file wins).
        state_file: JSON file to load from (if it exists); saved within ~50 ms of every write
            (a background thread coalesces bursts) and by `close`.
    """

    def __init__(self, dataset: Dataset, state_file: str | os.PathLike | None = None) -> None:
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        if self.state_file is not None and self.state_file.exists():
            dataset = load_state_file(self.state_file)
        self._opps: dict[str, dict[str, Any]] = {o["id"]: o for o in dataset.opportunities}
        self._keys: list[tuple[int, str]] = sorted(
            (int(o.get("createdAt") or 0), o["id"]) for o in dataset.opportunities
        )
        self.contacts = dataset.contacts
        self.users = dataset.users
        self.archive_reasons = dataset.archive_reasons
        self.postings = dataset.postings
        self.applications = dataset.applications
        self.stages = dataset.stages
        self.stats = Stats()
        # Whether a tag write moves updatedAt (Lever does not document it): a sandbox mode.
        self.bump_on_tag_write = True
        # Where a null updatedAt stands in the orders and the filters: sandbox modes (config
        # NULL_UPDATED_AT, NULL_UPDATED_FILTER).
        self.null_updated = "created"
        self.null_filter = "created"
        # Deleted opportunities, for GET /opportunities/deleted: {"id", "deletedAt", "opp"}
        # (kept in the state file too).
        self.deleted: list[dict[str, Any]] = list(dataset.deleted)
        self._file_lock = threading.Lock()
        self._save_cond = threading.Condition()
        self._dirty = False
        self._closing = False
        self._saver: threading.Thread | None = None
        if self.state_file is not None and not self.state_file.exists():
            self.save()

    # -- persistence ----------------------------------------------------------------------------

    def to_dataset(self) -> Dataset:
        with self.lock:
            return Dataset(
                opportunities=[self._opps[k[1]] for k in self._keys],
                contacts=self.contacts,
                users=self.users,
                archive_reasons=self.archive_reasons,
                deleted=list(self.deleted),
                postings=self.postings,
                applications=self.applications,
                stages=self.stages,
            )

    def save(self) -> None:
        """Write the state file now, atomically (temp file in the same folder, then os.replace).

        The data is copied under the state lock (shallow: values are replaced, never mutated) and
        serialized outside it, so a large state does not stall the server while it is written.
        """
        if self.state_file is None:
            return
        with self._file_lock:
            with self.lock:
                self._dirty = False
                opps = [dict(self._opps[k[1]]) for k in self._keys]
                raw = {
                    "format": STATE_FORMAT,
                    "version": STATE_VERSION,
                    "opportunities": opps,
                    "contacts": dict(self.contacts),
                    "users": list(self.users),
                    "archive_reasons": list(self.archive_reasons),
                    "deleted": [dict(d) for d in self.deleted],
                    "postings": list(self.postings),
                    "applications": dict(self.applications),
                    "stages": list(self.stages),
                }
            text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
            folder = self.state_file.parent
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.state_file.name}.", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, self.state_file)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def _changed(self) -> None:
        """Schedule a save after a write: coalesced, at most one every SAVE_DELAY seconds."""
        if self.state_file is None:
            return
        with self._save_cond:
            self._dirty = True
            if self._saver is None and not self._closing:
                self._saver = threading.Thread(
                    target=self._save_loop, name="lever-sandbox-saver", daemon=True
                )
                self._saver.start()
            self._save_cond.notify()

    def _save_loop(self) -> None:
        while True:
            with self._save_cond:
                while not self._dirty and not self._closing:
                    self._save_cond.wait()
                if self._closing:
                    return
                self._save_cond.wait(SAVE_DELAY)  # let a burst of writes coalesce
            try:
                self.save()
            except OSError as exc:  # keep serving; the final save on close reports it
                log.error("cannot save the sandbox state: %s", exc)

    def close(self) -> None:
        """Stop the background saver and write any pending change."""
        with self._save_cond:
            self._closing = True
            saver, self._saver = self._saver, None
            self._save_cond.notify_all()
        if saver is not None:
            saver.join()
        if self._dirty:
            self.save()
        with self._save_cond:
            self._closing = False

    # -- reads ----------------------------------------------------------------------------------

    def get(self, opp_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self._opps.get(opp_id)

    def all_opportunities(self) -> list[dict[str, Any]]:
        """Deep copies of every current opportunity, in listing order."""
        with self.lock:
            return copy.deepcopy([self._opps[k[1]] for k in self._keys])

    def __len__(self) -> int:
        with self.lock:
            return len(self._opps)

    def render(self, opp: dict[str, Any], expand: bool | Iterable[str]) -> dict[str, Any]:
        """An opportunity as Lever answers it; `expand` replaces ids by their objects (`contact`,
        `owner`, `stage`, `applications`; True: `contact`, as older callers ask)."""
        # shallow: the state only ever replaces values (tags get a new list), never mutates them
        out = dict(opp)
        expand = {"contact"} if expand is True else set(expand or ())
        if "contact" in expand and out.get("contact"):
            contact = self.contacts.get(out["contact"])
            if contact is not None:
                out["contact"] = copy.deepcopy(contact)
        if "owner" in expand and isinstance(out.get("owner"), str):
            user = next((u for u in self.users if u["id"] == out["owner"]), None)
            out["owner"] = dict(user) if user else out["owner"]
        if "stage" in expand and isinstance(out.get("stage"), str):
            stage = next((s for s in self.stages if s["id"] == out["stage"]), None)
            out["stage"] = dict(stage) if stage else out["stage"]
        if "applications" in expand and isinstance(out.get("applications"), list):
            out["applications"] = [
                dict(self.applications[a]) if a in self.applications else a
                for a in out["applications"]
            ]
        return out

    def opportunity_filter(
        self,
        params: dict[str, list[str]],
        confidential_access: bool,
        confidential_denied: str = "403",
    ) -> Callable[[dict[str, Any]], bool]:
        """`lever_sandbox.filters.opportunity_filter`, in this state's null-`updatedAt` mode."""
        return opportunity_filter(
            params, confidential_access, confidential_denied, self.null_filter
        )

    def list_opportunities(
        self,
        keep: Callable[[dict[str, Any]], bool],
        limit: int,
        after: tuple[int, str] | None,
        expand_contact: bool = False,
        order: str = "created",
    ) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
        """One page after the cursor `after`; returns (items, cursor of the last item or None).

        `order` is one of `LISTING_ORDERS`; the cursor is the last item's key in that order.
        """
        with self.lock:
            keys = self._keys if order == "created" else self._ordered_keys(order)
            cursor = bisect.bisect_right(keys, tuple(after)) if after else 0
            start, stop = cursor, len(keys)
            c_start, c_end = getattr(keep, "created_range", (None, None))
            # fast paths: skip what the created_at filter drops anyway
            if order == "created" and c_start is not None:
                start = max(start, bisect.bisect_left(keys, (c_start,)))
            if order == "created" and c_end is not None:
                stop = bisect.bisect_right(keys, (c_end, "\U0010ffff"))
            if order == "newest" and c_end is not None:
                start = max(start, bisect.bisect_left(keys, (-c_end,)))
            if order == "newest" and c_start is not None:
                stop = bisect.bisect_right(keys, (-c_start, "\U0010ffff"))
            spans = [range(start, stop)]
            if order in ("updated", "updated-desc") and c_start is not None:
                # updatedAt >= createdAt + lag_floor >= start + lag_floor (lag_floor <= 0); the
                # nulls of the `smallest` mode stand outside that bound (first ascending, last
                # descending): listed apart, in their place
                bound = c_start + self._lag_floor()
                if order == "updated":
                    nulls = range(0, bisect.bisect_left(keys, (0,)) if self._null_low() else 0)
                    start = max(start, nulls.stop, bisect.bisect_left(keys, (bound,)))
                    spans = [range(max(cursor, nulls.start), nulls.stop), range(start, stop)]
                else:
                    first = bisect.bisect_left(keys, (1,)) if self._null_low() else len(keys)
                    stop = min(first, bisect.bisect_right(keys, (-bound, "\U0010ffff")))
                    spans = [range(start, stop), range(max(cursor, first), len(keys))]
            page: list[dict[str, Any]] = []
            last: tuple[int, str] | None = None
            has_next = False
            for i in itertools.chain.from_iterable(spans):
                key = keys[i]
                opp = self._opps[key[-1]]
                if not keep(opp):
                    continue
                if len(page) == limit:
                    has_next = True
                    break
                page.append(self.render(opp, expand_contact))
                last = key
            return page, (last if has_next else None)

    def list_deleted(
        self,
        start: int | None,
        end: int | None,
        confidential_access: bool,
        limit: int,
        after: list | None,
        shape: str = "documented",
    ) -> tuple[list[dict[str, Any]], list | None]:
        """One page of deleted opportunities (oldest deletion first), in the configured shape.

        Shapes: ``documented`` (Lever's documentation: the whole opportunity plus ``deletedBy``,
        a user id, and ``deletedAt``); ``minimal`` = ``{id, deletedAt}`` and ``id`` = ``{id}``,
        kept as modes to show that the toolkit reads only the id.
        """
        with self.lock:
            rows = [
                d
                for d in self.deleted
                if (start is None or d["deletedAt"] >= start)
                and (end is None or d["deletedAt"] <= end)
                and (confidential_access or d["opp"].get("confidentiality") != "confidential")
            ]
            begin = int(after[0]) if after else 0
            page = rows[begin : begin + limit]
            more = begin + limit < len(rows)
            out = []
            for d in page:
                if shape == "documented":
                    extra = {"deletedBy": d.get("deletedBy"), "deletedAt": d["deletedAt"]}
                    out.append({**copy.deepcopy(d["opp"]), **extra})
                elif shape == "id":
                    out.append({"id": d["id"]})
                else:
                    out.append({"id": d["id"], "deletedAt": d["deletedAt"]})
            return out, ([begin + limit] if more else None)

    def _ordered_keys(self, order: str) -> list[tuple]:
        """Sort keys for a listing order other than createdAt (cached until an insert or delete)."""
        if order not in LISTING_ORDERS:
            raise ValueError(f"listing order must be one of {', '.join(LISTING_ORDERS)}")
        cache = self.__dict__.setdefault("_order_cache", {})
        if order not in cache:
            if order == "newest":
                cache[order] = sorted((-created, opp_id) for created, opp_id in self._keys)
            elif order in ("updated", "updated-desc"):
                sign = 1 if order == "updated" else -1
                cache[order] = sorted(
                    (sign * self._sort_updated(self._opps[opp_id]), opp_id)
                    for _c, opp_id in self._keys
                )
            else:
                cache[order] = sorted(
                    (hashlib.sha256(opp_id.encode()).hexdigest(), opp_id)
                    for _created, opp_id in self._keys
                )
        return cache[order]

    def _lag_floor(self) -> int:
        """The least `updatedAt - createdAt`, 0 at most: generated data can hold an `updatedAt`
        before its `createdAt` (capped at `LAST_UPDATE_MS`), and the fast paths of the `updatedAt`
        orders must not skip it (cached like the orders; a bump only raises a lag)."""
        cache = self.__dict__.setdefault("_order_cache", {})
        if "lag" not in cache:
            lags = (self._updated(o) - int(o.get("createdAt") or 0) for o in self._opps.values())
            cache["lag"] = min(0, min(lags, default=0))
        return int(cache["lag"])

    @staticmethod
    def _updated(opp: dict[str, Any]) -> int:
        updated = opp.get("updatedAt")
        return int(opp.get("createdAt") or 0) if updated is None else int(updated)

    def _null_low(self) -> bool:
        return self.null_updated == "smallest"

    def _sort_updated(self, opp: dict[str, Any]) -> int:
        """`updatedAt` as the `updated` orders sort it (`null_updated`: where a null stands)."""
        if opp.get("updatedAt") is None and self.null_updated != "created":
            return NULL_SORTS_LOW if self._null_low() else NULL_SORTS_HIGH
        return self._updated(opp)

    def orders_changed(self) -> None:
        """The listing orders are sorted anew at their next use (a mode changed)."""
        with self.lock:
            self.__dict__.pop("_order_cache", None)

    def tag_counts(self) -> list[dict[str, Any]]:
        with self.lock:
            counts = Counter(t for o in self._opps.values() for t in o.get("tags") or ())
        return [{"text": t, "count": n} for t, n in sorted(counts.items())]

    def user_ids(self) -> set[str]:
        return {u["id"] for u in self.users}

    def user_deactivated(self, user_id: str) -> bool:
        return any(u["id"] == user_id and u.get("deactivatedAt") for u in self.users)

    def deactivate_user(self, user_id: str) -> None:
        """Deactivate a user now (its id stays known; writes attributed to it are refused)."""
        with self.lock:
            for user in self.users:
                if user["id"] == user_id:
                    user["deactivatedAt"] = now_ms()
                    self._changed()
                    return
        raise KeyError(user_id)

    # -- writes ---------------------------------------------------------------------------------

    def _bump(self, opp: dict[str, Any]) -> None:
        previous = opp.get("updatedAt")
        if previous is None:
            previous = opp.get("createdAt") or 0
        opp["updatedAt"] = max(now_ms(), int(previous) + 1)
        cache = self.__dict__.get("_order_cache") or {}
        cache.pop("updated", None)  # the updatedAt orders see the move
        cache.pop("updated-desc", None)

    def change_tags(self, opp_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> dict:
        """Add and/or remove exact tag strings; bumps updatedAt. KeyError for unknown ids."""
        with self.lock:
            opp = self._opps[opp_id]
            tags = list(opp.get("tags") or [])
            gone = set(remove)
            tags = [t for t in tags if t not in gone]
            for tag in add:
                if tag not in tags:
                    tags.append(tag)
            opp["tags"] = tags
            if self.bump_on_tag_write:
                self._bump(opp)
            self._changed()
            return opp

    def set_tags(self, opp_id: str, tags: Iterable[str]) -> dict:
        """Replace the tags (admin/test helper); bumps updatedAt. KeyError for unknown ids."""
        with self.lock:
            opp = self._opps[opp_id]
            opp["tags"] = list(tags)
            if self.bump_on_tag_write:
                self._bump(opp)
            self._changed()
            return opp

    def archive(self, opp_id: str, reason: str = "sandbox-archive-reason") -> dict:
        """Archive an opportunity now (the `archived` object); bumps updatedAt."""
        with self.lock:
            opp = self._opps[opp_id]
            opp["archived"] = {"reason": reason, "archivedAt": now_ms()}
            opp.pop("archivedAt", None)
            opp.pop("archiveReason", None)
            self._bump(opp)
            self._changed()
            return opp

    def insert(self, opp: dict[str, Any]) -> None:
        """Add a new opportunity (an application of an existing contact). ValueError if its id
        exists."""
        with self.lock:
            if opp["id"] in self._opps:
                raise ValueError(f"opportunity {opp['id']} exists")
            self._opps[opp["id"]] = opp
            bisect.insort(self._keys, (int(opp.get("createdAt") or 0), opp["id"]))
            self.__dict__.pop("_order_cache", None)  # the other listing orders see it too
            self._changed()

    def delete(self, opp_id: str) -> None:
        """Delete an opportunity; later reads answer 404. KeyError for unknown ids."""
        with self.lock:
            opp = self._opps.pop(opp_id)
            by = self.users[0]["id"] if self.users else None  # an admin deletes in the sandbox
            self.deleted.append({"id": opp_id, "deletedAt": now_ms(), "deletedBy": by, "opp": opp})
            key = (int(opp.get("createdAt") or 0), opp_id)
            index = bisect.bisect_left(self._keys, key)
            if index < len(self._keys) and self._keys[index] == key:
                del self._keys[index]
            self.__dict__.pop("_order_cache", None)
            self._changed()


def load_state_file(path: str | os.PathLike) -> Dataset:
    """Read a sandbox state file written by `SandboxState.save`."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read sandbox state file {path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a sandbox state file")
    return Dataset.from_dict(raw)


def default_dataset(seed: int, contacts: int, opportunities: int | None) -> Dataset:
    return generate_dataset(seed=seed, contacts=contacts, opportunities=opportunities)
