"""The account's catalogs Lever lists beside opportunities: postings, stages, archive reasons.

`GET /postings`, `GET /stages` and `GET /archive_reasons`, paginated like every list (Lever's
documentation: all list endpoints take `limit` and `offset`). They give the text behind the ids
an opportunity carries (its application's `posting`, its `stage`, its `archived.reason`).
"""

from __future__ import annotations

from typing import Any

from lever_sandbox.handlers import V1Handler


class _CatalogHandler(V1Handler):
    """A paginated list of one of the state's catalogs (`attribute`)."""

    attribute = ""

    async def get(self) -> None:
        await self._run(self._list)

    def _list(self) -> None:
        items = list(getattr(self.engine.state, self.attribute))

        def fetch(limit: int, after: list | None):
            start = after[0] if after else 0
            page = items[start : start + limit]
            more = start + limit < len(items)
            return [dict(i) for i in page], ([start + limit] if more else None)

        body = self.paginate(fetch)
        if body is not None:
            self.reply(200, body)


class PostingsHandler(_CatalogHandler):
    route = "GET /v1/postings"
    attribute = "postings"


class StagesHandler(_CatalogHandler):
    route = "GET /v1/stages"
    attribute = "stages"


class ArchiveReasonsHandler(_CatalogHandler):
    route = "GET /v1/archive_reasons"
    attribute = "archive_reasons"


def routes(kw: dict[str, Any]) -> list[tuple]:
    return [
        (r"/v1/postings/?", PostingsHandler, kw),
        (r"/v1/stages/?", StagesHandler, kw),
        (r"/v1/archive_reasons/?", ArchiveReasonsHandler, kw),
    ]
