"""The sandbox's run-time settings, declared once: `SandboxConfig`'s fields carry their command
line flag, help, choices and bounds, and both `SandboxConfig.validated` and the argparse front
(`lever_sandbox.cli`) read them from here.

Errors name the field (`SandboxConfigError.field`); each face words it its own way: the admin API
with the field's name, the command line with its flag.

Example:
    >>> SandboxConfig(rate=5, burst=2).validated().burst
    2
    >>> try:
    ...     SandboxConfig(fail_rate=2).validated()
    ... except SandboxConfigError as exc:
    ...     print(exc.field, "|", exc.problem)
    fail_rate | must be between 0 and 1 (got 2)
    >>> option_flag("access_token_ttl_s")
    '--access-token-ttl'
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any

# created: (createdAt, id); newest: createdAt descending; updated / updated-desc: updatedAt (a
# null one counts as createdAt, as the filters do) ascending / descending; shuffled: a fixed
# order unrelated to time (a hash of the id).
LISTING_ORDERS = ("created", "newest", "updated", "updated-desc", "shuffled")
# Where an opportunity whose updatedAt is null stands (Lever does not say), in the updatedAt
# orders: as its createdAt, or below / above every updatedAt (a database's null: the first or
# the last in ascending order); and in the updated_at filters: as its createdAt, never matched,
# or as 0 (a JavaScript comparison: matched by every updated_at_end, by no updated_at_start).
NULL_UPDATED_AT = ("created", "smallest", "largest")
NULL_UPDATED_FILTER = ("created", "never", "zero")


class SandboxConfigError(ValueError):
    """A setting out of its range or choices; `field` names it, `problem` says what is wrong."""

    def __init__(self, name: str, problem: str) -> None:
        self.field = name
        self.problem = problem
        super().__init__(f"{name} {problem}")


def _setting(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    metavar: str | None = None,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    group: str = "",
) -> Any:
    """A `SandboxConfig` field with what the command line and the checks need to know of it."""
    meta = {
        "help": help,
        "flag": flag,
        "metavar": metavar,
        "choices": choices,
        "minimum": minimum,
        "above": above,
        "maximum": maximum,
        "group": group,
    }
    return field(default=default, metadata=meta)


_MODE = "mode"  # the group of Lever behaviours that are not documented


@dataclass
class SandboxConfig:
    """Run-time behaviour; every field can be changed with `Sandbox.configure` or the admin API.

    Attributes:
        latency_ms: delay added to every /v1 request, milliseconds.
        jitter_ms: uniform jitter added to the latency (0..jitter_ms); None = 10 % of latency.
        rate, burst: the token bucket per key (requests/second, bucket size).
        fail_rate: probability of a 500/502/503 answer.
        drop_rate: probability of closing the connection without an answer.
        offset_fault_rate: probability that a request carrying ``offset`` gets the
            invalid-offset-token answer.
        retry_after: send ``Retry-After`` (whole seconds) on 429 answers.
        offset_error_status: HTTP status of the invalid-offset-token answer (400, or 200 as one
            public connector saw).
        offset_fault_each_listing: the Nth follow-up page of every listing (every distinct
            query) answers the invalid-offset-token message, once; the restarted listing then
            goes through (0 = never). Deterministic however requests interleave.
        spike_rate: probability that a request is delayed by an extra `spike_ms` (a latency
            spike: slow enough to hit a client's read timeout).
        spike_ms: the extra delay of a spike, milliseconds.

    Modes for Lever behaviours that are not documented ([guess] in lever-api.md); each default
    is the behaviour the toolkit was first written against, and `lever-tags doctor` reports a
    real account that differs from it:

        perform_as_status: the answer to a write whose ``perform_as`` user does not exist:
            400 (default) or 404 ``users <id> was not found``.
        tag_writes_bump_updated_at: a tag write moves ``updatedAt`` (default true).
        confidential_denied: a key without confidential access asking for confidential data
            gets ``403`` (default) or ``filter``: the confidential ones are silently left out.
        omit_next: ``never`` (default), ``once`` (the first page of every listing that has more
            answers ``hasNext: true`` without ``next`` once), or ``always``.
        access_token_ttl_s: lifetime of the OAuth access token in seconds (Lever: one hour).
        access_token_max_requests: the OAuth access token expires after this many requests
            (0 = only by time): a deterministic expiring-token mode.
        deleted_shape: items of ``GET /opportunities/deleted``: ``documented`` (default: the
            whole opportunity plus ``deletedBy`` and ``deletedAt``, as Lever documents it),
            ``minimal`` (``{id, deletedAt}``) or ``id`` (``{id}`` only).
        refresh_rotation: what ``POST /oauth/token`` answers with: ``rotate`` (default, a new
            refresh token; the old one is refused), ``keep`` (the same one) or ``omit`` (none).
        listing_order: the order `GET /opportunities` lists in (undocumented at Lever):
            ``created`` (createdAt, then id), ``newest`` (createdAt descending), ``updated``
            or ``updated-desc`` (updatedAt, a null one counting as createdAt, ascending or
            descending: a write moves an opportunity while a listing runs) or ``shuffled`` (a
            fixed order unrelated to time, from a hash of the id).
        null_updated_at: where an opportunity whose ``updatedAt`` is null stands in the
            ``updated`` orders: ``created`` (default: as its ``createdAt``), ``smallest`` or
            ``largest`` (below or above every ``updatedAt``, ties by id).
        null_updated_filter: how the ``updated_at_start/_end`` filters treat it: ``created``
            (default: as its ``createdAt``), ``never`` (no such filter matches it) or ``zero``
            (compared as 0: every ``updated_at_end`` matches it, no ``updated_at_start``).
    """

    latency_ms: float = _setting(0.0, "delay per request (default 0)", minimum=0)
    jitter_ms: float | None = _setting(None, "latency jitter (default 10%% of it)", minimum=0)
    rate: float = _setting(10.0, "requests/s per key (default 10)", above=0)
    burst: int = _setting(20, "token bucket size (default 20)", minimum=1)
    fail_rate: float = _setting(0.0, "probability of 500/502/503", minimum=0, maximum=1)
    drop_rate: float = _setting(0.0, "probability of a dropped connection", minimum=0, maximum=1)
    offset_fault_rate: float = _setting(
        0.0,
        "probability of an invalid-offset-token answer on a page after the first",
        minimum=0,
        maximum=1,
    )
    retry_after: bool = _setting(False, "send Retry-After on 429 (Lever does not say)")
    offset_error_status: int = _setting(
        400, "HTTP status of the invalid-offset-token answer (default 400)", choices=(200, 400)
    )
    spike_rate: float = _setting(
        0.0, "probability of a latency spike of --spike-ms on a request", minimum=0, maximum=1
    )
    spike_ms: float = _setting(2000.0, "extra delay of a spike (default 2000)", minimum=0)
    offset_fault_each_listing: int = _setting(
        0,
        "the Nth follow-up page of every listing answers invalid offset token once (default 0: "
        "never)",
        minimum=0,
        metavar="N",
    )
    perform_as_status: int = _setting(
        400,
        "answer to a write whose perform_as user does not exist (default 400)",
        choices=(400, 404),
        group=_MODE,
    )
    tag_writes_bump_updated_at: bool = _setting(
        True, "tag writes leave updatedAt as it was", flag="--no-updated-at-bump", group=_MODE
    )
    confidential_denied: str = _setting(
        "403",
        "a key without confidential access asking for it: 403 (default) or silently filtered",
        choices=("403", "filter"),
        group=_MODE,
    )
    omit_next: str = _setting(
        "never",
        "answer hasNext: true without next on the first page of a listing (once each, or always)",
        choices=("never", "once", "always"),
        group=_MODE,
    )
    access_token_ttl_s: float = _setting(
        3600.0,
        "lifetime of the OAuth access token (default 3600, as Lever's)",
        flag="--access-token-ttl",
        metavar="SECONDS",
        above=0,
        group=_MODE,
    )
    access_token_max_requests: int = _setting(
        0,
        "the OAuth access token expires after N requests (default 0: by time only); "
        "POST /oauth/token (grant_type=refresh_token) issues a new one",
        flag="--access-token-requests",
        metavar="N",
        minimum=0,
        group=_MODE,
    )
    deleted_shape: str = _setting(
        "documented",
        "items of GET /opportunities/deleted: the opportunity plus deletedBy and deletedAt "
        "(default, as Lever documents it), {id, deletedAt}, or {id}",
        choices=("documented", "minimal", "id"),
        group=_MODE,
    )
    refresh_rotation: str = _setting(
        "rotate",
        "POST /oauth/token answers with a new refresh token, the old one refused (default), "
        "the same one, or none",
        choices=("rotate", "keep", "omit"),
        group=_MODE,
    )
    listing_order: str = _setting(
        "created",
        "the order opportunities are listed in (Lever's is undocumented): created, newest "
        "(createdAt descending), updated, updated-desc (updatedAt either way) or shuffled; "
        "default created",
        choices=LISTING_ORDERS,
    )
    null_updated_at: str = _setting(
        "created",
        "where a null updatedAt stands in the updated orders: as its createdAt (default), or "
        "below / above every updatedAt",
        choices=NULL_UPDATED_AT,
        group=_MODE,
    )
    null_updated_filter: str = _setting(
        "created",
        "how updated_at_start/_end treat a null updatedAt: as its createdAt (default), never "
        "matched, or as 0 (every updated_at_end matches it, no updated_at_start)",
        choices=NULL_UPDATED_FILTER,
        group=_MODE,
    )

    def validated(self) -> SandboxConfig:
        """Check every field against its declaration; raise `SandboxConfigError` naming it."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            problem = _problem(value, f.metadata)
            if problem:
                raise SandboxConfigError(f.name, problem)
        self.burst = int(self.burst)
        return self


def _problem(value: Any, meta: typing.Mapping[str, Any]) -> str:
    choices, low, above, high = meta["choices"], meta["minimum"], meta["above"], meta["maximum"]
    if choices is not None and value not in choices:
        return f"must be one of {', '.join(map(str, choices))} (got {value!r})"
    if low is not None and high is not None and not low <= value <= high:
        return f"must be between {low:g} and {high:g} (got {value:g})"
    if low is not None and value < low:
        return f"must be >= {low:g} (got {value:g})"
    if above is not None and value <= above:
        return f"must be > {above:g} (got {value:g})"
    return ""


def _kind(hint: Any) -> type:
    """`float` for `float | None`; the type itself otherwise."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


CONFIG_TYPES: dict[str, type] = {
    name: _kind(hint) for name, hint in typing.get_type_hints(SandboxConfig).items()
}
CONFIG_FIELDS = tuple(f.name for f in fields(SandboxConfig))


def option_flag(name: str) -> str:
    """The command line flag of a `SandboxConfig` field (`rate` -> `--rate`)."""
    meta = next(f.metadata for f in fields(SandboxConfig) if f.name == name)
    return meta["flag"] or "--" + name.replace("_", "-")


def coerce_config(changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` (from JSON or keyword arguments) with each value of its field's type."""
    out = {}
    for name, value in changes.items():
        if name not in CONFIG_TYPES:
            raise ValueError(f"unknown sandbox setting {name!r}")
        kind = CONFIG_TYPES[name]
        if value is None and name == "jitter_ms":
            out[name] = None
        elif kind is str:
            if not isinstance(value, str):
                raise SandboxConfigError(name, "must be a string")
            out[name] = value
        elif kind is bool:
            if not isinstance(value, bool):
                raise SandboxConfigError(name, "must be true or false")
            out[name] = value
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise SandboxConfigError(name, "must be a number")
        else:
            out[name] = kind(value)
    return out
