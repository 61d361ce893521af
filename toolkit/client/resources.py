"""Lever's resources as methods: opportunities, tags, contacts, users, deleted opportunities,
webhooks.

A mixin of `LeverClient`: every method goes through the client's one request path
(`_request`, `_paginate`, `_pages`); nothing here opens a connection of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from toolkit.client.http import Page, data_object, path_id


class LeverResources:
    """The endpoints the toolkit uses (see lever-api.md); `LeverClient` provides the transport."""

    _host: str  # the API's host (LeverClient sets it)

    if TYPE_CHECKING:  # the transport's signatures, for the type checker; LeverClient defines them

        def _request(
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, Any] | None = None,
            json: Any = None,
        ) -> dict[str, Any]: ...

        def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Page]: ...

        def _paginate(
            self, path: str, params: Mapping[str, Any] | None = None
        ) -> Iterator[dict[str, Any]]: ...

    def iter_opportunities(self, **filters: Any) -> Iterator[dict]:
        """Every opportunity matching Lever's filters, as a generator.

        Filters use Lever's names: ``confidentiality="all"``, ``archived=False``,
        ``tag=["a", "b"]`` (union), ``contact_id=...``, ``created_at_start=ms``,
        ``expand="contact"``.
        Remember that Lever's default is ``confidentiality="non-confidential"``.
        """
        return self._paginate("/opportunities", filters)

    def iter_opportunity_pages(self, **filters: Any) -> Iterator[Page]:
        """Like `iter_opportunities`, page by page: each `Page` has `items` and `has_next`."""
        return self._pages("/opportunities", filters)

    def get_opportunity(self, opportunity_id: str, **params: Any) -> dict:
        """One opportunity; raises `NotFoundError` for unknown or deleted ids."""
        path = f"/opportunities/{path_id(opportunity_id)}"
        return data_object(self._request("GET", path, params=params), self._host, path)

    def add_tags(
        self, opportunity_id: str, tags: Iterable[str], perform_as: str | None = None
    ) -> dict:
        """Add tags to one opportunity. Returns the updated opportunity when Lever echoes it."""
        return self._write_tags("opportunities", opportunity_id, "addTags", tags, perform_as)

    def remove_tags(
        self, opportunity_id: str, tags: Iterable[str], perform_as: str | None = None
    ) -> dict:
        """Remove tags from one opportunity. Returns the updated opportunity when echoed."""
        return self._write_tags("opportunities", opportunity_id, "removeTags", tags, perform_as)

    def add_candidate_tags(
        self, candidate_id: str, tags: Iterable[str], perform_as: str | None = None
    ) -> dict:
        """Deprecated candidate endpoint; use `add_tags`."""
        warnings.warn(
            "POST /candidates/{id}/addTags is deprecated by Lever; use add_tags (opportunities)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._write_tags("candidates", candidate_id, "addTags", tags, perform_as)

    def remove_candidate_tags(
        self, candidate_id: str, tags: Iterable[str], perform_as: str | None = None
    ) -> dict:
        """Deprecated candidate endpoint; use `remove_tags`."""
        warnings.warn(
            "POST /candidates/{id}/removeTags is deprecated by Lever; use remove_tags",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._write_tags("candidates", candidate_id, "removeTags", tags, perform_as)

    def _write_tags(
        self, kind: str, object_id: str, action: str, tags: Iterable[str], perform_as: str | None
    ) -> dict:
        if isinstance(tags, str):
            # list("vip") would send ["v", "i", "p"].
            raise ValueError(f"tags must be a list of strings, not one string ({tags!r})")
        tag_list = list(tags)
        if not tag_list or not all(isinstance(t, str) and t for t in tag_list):
            raise ValueError("tags must be a non-empty list of non-empty strings")
        params = {"perform_as": perform_as} if perform_as else None
        payload = self._request(
            "POST", f"/{kind}/{path_id(object_id)}/{action}", params=params, json={"tags": tag_list}
        )
        data = payload.get("data")
        return data if isinstance(data, dict) else {}

    def iter_tags(self) -> Iterator[dict]:
        """Every tag of the account as ``{"text", "count"}``."""
        return self._paginate("/tags")

    def get_contact(self, contact_id: str) -> dict:
        """One contact (a person): name, emails, phones, headline, location."""
        path = f"/contacts/{path_id(contact_id)}"
        return data_object(self._request("GET", path), self._host, path)

    def iter_users(self, email: str | None = None) -> Iterator[dict]:
        """Users of the account, e.g. to find the id for ``perform_as``."""
        return self._paginate("/users", {"email": email})

    def get_user(self, user_id: str) -> dict:
        """One user (``GET /users/{id}``); raises `NotFoundError` for an unknown id."""
        path = f"/users/{path_id(user_id)}"
        return data_object(self._request("GET", path), self._host, path)

    def list_webhooks(self) -> Iterator[dict]:
        """Lever's webhooks (``GET /webhooks``): ``{id, url, event, configuration}`` each."""
        return self._paginate("/webhooks")

    def create_webhook(self, body: dict[str, Any]) -> dict:
        """Create one (``POST /webhooks {url, event, configuration}``); the answer carries
        ``configuration.signatureToken``, shown only here. Lever's documented example nests it
        as ``{"data": {"data": {...}}}``: both that and ``{"data": {...}}`` are read."""
        payload = self._request("POST", "/webhooks", json=body)
        data = payload.get("data")
        if isinstance(data, dict) and "id" not in data and isinstance(data.get("data"), dict):
            data = data["data"]
        return data if isinstance(data, dict) else {}

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete one (``DELETE /webhooks/{id}``, 204); `NotFoundError` if it is gone."""
        self._request("DELETE", f"/webhooks/{path_id(webhook_id)}")

    def iter_postings(self) -> Iterator[dict]:
        """Every posting (``GET /postings``): ``id``, ``text`` (the title), ``categories``."""
        return self._paginate("/postings")

    def iter_archive_reasons(self) -> Iterator[dict]:
        """Every archive reason (``GET /archive_reasons``): ``id``, ``text``."""
        return self._paginate("/archive_reasons")

    def iter_deleted_opportunities(self, **filters: Any) -> Iterator[dict]:
        """Lever's "List deleted opportunities" (``GET /opportunities/deleted``).

        Filters: ``deleted_at_start`` / ``deleted_at_end`` (epoch ms, inclusive). The items'
        shape is not documented beyond an ``id``; read them with `deleted_ids`.
        """
        return self._paginate("/opportunities/deleted", filters)
