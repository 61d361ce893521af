"""What is known about a snapshot's fetch, typed: `SnapshotMeta` (pure, no I/O).

A snapshot's metadata is a JSON object on disk (`<file>.meta.json`, `toolkit.snapshot.store`)
and a dict in memory (`Snapshot.meta`, which the writers fill); readers take it typed through
`Snapshot.info`. `from_dict` is tolerant (a missing key gets its default, an unknown one is
kept in `extra`, a file of an older version loads) and `to_dict` gives back exactly the dict
it was made from: the same keys, in the same order, with the same values.

`MetaRecord` is the shape both metadata records share (`toolkit.remediate.planmeta` has the
plan's): frozen, slotted dataclasses whose typed fields are the keys the code reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="MetaRecord")

_BOOKKEEPING = ("extra", "source_keys")


@dataclass(frozen=True, slots=True)
class MetaRecord:
    """A metadata dict as a frozen dataclass; subclasses declare the keys as fields.

    Attributes:
        extra: keys the record does not declare, kept as read (nothing on disk is lost).
        source_keys: the keys of the dict it was read from, in order (None: made in code);
            `to_dict` writes exactly these (a key absent there stays absent).
    """

    NESTED: ClassVar[Mapping[str, type[MetaRecord]]] = {}

    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True)
    source_keys: tuple[str, ...] | None = field(default=None, kw_only=True)

    @classmethod
    def declared(cls) -> list[str]:
        """The keys declared as fields, in the order the writers write them."""
        return [f.name for f in fields(cls) if f.name not in _BOOKKEEPING]

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any] | None) -> R:
        """Read a metadata dict: declared keys as fields, the rest in `extra`.

        Example:
            >>> info = SnapshotMeta.from_dict({"host": "api.lever.co", "new_key": 1})
            >>> info.host, info.include_archived, dict(info.extra)
            ('api.lever.co', True, {'new_key': 1})
        """
        data = data or {}
        names = cls.declared()
        known: dict[str, Any] = {}
        for name in names:
            if name in data:
                value = data[name]
                nested = cls.NESTED.get(name)
                if nested is not None and isinstance(value, Mapping):
                    value = nested.from_dict(value)
                known[name] = value
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**known, extra=extra, source_keys=tuple(data))

    def has(self, name: str) -> bool:
        """Whether the dict it was read from had the key `name` (a field made in code: True).

        Example:
            >>> SnapshotMeta.from_dict({}).has("host"), SnapshotMeta().has("host")
            (False, True)
        """
        return self.source_keys is None or name in self.source_keys or name in self.extra

    def to_dict(self) -> dict[str, Any]:
        """The metadata dict, as written: `to_dict(from_dict(d)) == d`, keys in d's order.

        Example:
            >>> d = {"watermark": 5, "host": None, "x": [1]}
            >>> SnapshotMeta.from_dict(d).to_dict() == d
            True
        """
        names = self.declared()
        keys = list(self.source_keys) if self.source_keys is not None else names
        defaults = {f.name: f for f in fields(self)}
        for name in names:  # a field set in code (`dataclasses.replace`) that was absent
            if name not in keys and getattr(self, name) != _default(defaults[name]):
                keys.append(name)
        keys += [k for k in self.extra if k not in keys]
        out: dict[str, Any] = {}
        for key in keys:
            if key in names:
                value = getattr(self, key)
                out[key] = value.to_dict() if isinstance(value, MetaRecord) else value
            elif key in self.extra:
                out[key] = self.extra[key]
        return out


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


@dataclass(frozen=True, slots=True)
class FetchStats(MetaRecord):
    """How a fetch went (`meta["fetch"]`): time, requests, retries; a refresh says `kind`."""

    kind: str | None = None
    seconds: float | None = None
    requests: int | None = None
    retries: int | None = None
    rate_limited: int | None = None
    opportunities_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class SnapshotMeta(MetaRecord):
    """A snapshot's metadata (`toolkit.snapshot.fetch` writes it; `Snapshot.info` reads it).

    Attributes:
        fetched_at: ISO time of the fetch (seconds, UTC); full_fetch_at: of the last full one.
        host: the API host; account: the account the key reads (`recorded_account`).
        filters: the listing's filters; include_archived / with_personal: the fetch's options.
        confidential_access: whether the key read confidential opportunities (None: unknown).
        warnings: what the fetch could not do; counts: opportunities, contacts, tags.
        fingerprint, watermark: the snapshot's identity and Lever's clock when it began.
        fetch: `FetchStats`. refreshed_*: what the last incremental refresh did.
        redacted, redaction: set on a pseudonymised copy (`toolkit.workflows.inputs`).
    """

    NESTED: ClassVar[Mapping[str, type[MetaRecord]]] = {"fetch": FetchStats}

    fetched_at: str | None = None
    full_fetch_at: str | None = None
    host: str | None = None
    account: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None
    include_archived: bool = True
    with_personal: bool = False
    confidential_access: bool | None = None
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    watermark: int | None = None
    fetch: FetchStats | None = None
    refreshed_at: str | None = None
    refreshed_since: int | None = None
    refreshed_changed: int | None = None
    refreshed_written: int | None = None
    refreshed_deleted: int | None = None
    full_fetch_due: bool | None = None
    redacted: bool = False
    redaction: str | None = None
