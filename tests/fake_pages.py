"""One page of a fake Lever listing for `responses` callbacks: offsets as tokens."""

from __future__ import annotations

import json
from typing import Any


def page_answer(rows: list[dict], query: dict[str, list[str]]) -> tuple[int, dict, str]:
    """The page of `rows` that `query` (parsed `limit` and `offset`) asks for, as a callback's
    ``(status, headers, body)``; ``next`` is the following offset while more rows are left."""
    start = int(query.get("offset", ["0"])[0])
    limit = int(query["limit"][0])
    more = start + limit < len(rows)
    body: dict[str, Any] = {"data": rows[start : start + limit], "hasNext": more}
    if more:
        body["next"] = str(start + limit)
    return 200, {}, json.dumps(body)
