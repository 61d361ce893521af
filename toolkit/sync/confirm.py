"""A write's 404, confirmed by a read before anything is called deleted.

Lever may answer a write with 404 when the ``perform_as`` user does not exist, not the
opportunity (lever-api.md, [guess]); one ``GET /opportunities/{id}`` tells which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.errors import AuthenticationError, LeverError, NotFoundError
from toolkit.sync.store import W_FAILED, W_NOT_FOUND

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import TagClient


def confirm_not_found(
    client: TagClient, opportunity_id: str, message: str
) -> tuple[str, int | None, str]:
    """``(state, status, message)`` for a write answered 404: ``not_found`` when the read finds
    no opportunity either; ``failed`` when it is there (a wrong ``perform_as``, say), or when the
    read itself failed (status None: tried again later).

    Raises:
        AuthenticationError: the key was refused (the service stops).
    """
    try:
        client.get_opportunity(opportunity_id)
    except NotFoundError:
        return W_NOT_FOUND, 404, message
    except AuthenticationError:
        raise
    except LeverError as exc:
        return W_FAILED, None, f"404, then the read failed: {exc}"
    return W_FAILED, 404, "the write answered 404 but the opportunity exists (check --perform-as)"


__all__ = ["confirm_not_found"]
