"""The sandbox's tornado application: Lever's `/v1` routes and the `/_sandbox/` admin routes
(`lever_sandbox.handlers`), with the webhook admin routes (`lever_sandbox.webhooks`).

It is its own module so that imports go one way: `handlers` <- `webhooks` <- `app` <- `server`.
"""

from __future__ import annotations

import logging

import tornado.web

from lever_sandbox.engine import Engine
from lever_sandbox.handlers import (
    AdminConfigHandler,
    AdminNotFoundHandler,
    AdminOpportunitiesHandler,
    AdminOpportunityHandler,
    AdminResetHandler,
    AdminStatsHandler,
    AdminTagsHandler,
    AdminTokenHandler,
    CandidateTagWriteHandler,
    ContactHandler,
    DeletedOpportunitiesHandler,
    NotFoundHandler,
    OpportunitiesHandler,
    OpportunityHandler,
    TagsHandler,
    TagWriteHandler,
    UserHandler,
    UsersHandler,
)
from lever_sandbox.webhooks import routes as webhook_routes

log = logging.getLogger("lever_sandbox.handlers")  # the request log keeps its logger's name


def _log_request(handler: tornado.web.RequestHandler) -> None:
    log.debug(
        "%s %s -> %s (%.1f ms)",
        handler.request.method,
        handler.request.path,
        handler.get_status(),
        handler.request.request_time() * 1000,
    )


def make_app(engine: Engine) -> tornado.web.Application:
    """The tornado application: /v1 routes and /_sandbox admin routes."""
    kw = {"engine": engine}
    seg = r"([^/]+)"
    return tornado.web.Application(
        [
            (r"/v1/opportunities/?", OpportunitiesHandler, kw),
            (r"/v1/opportunities/deleted/?", DeletedOpportunitiesHandler, kw),
            (rf"/v1/opportunities/{seg}/?", OpportunityHandler, kw),
            (rf"/v1/opportunities/{seg}/(addTags|removeTags)/?", TagWriteHandler, kw),
            (rf"/v1/candidates/{seg}/(addTags|removeTags)/?", CandidateTagWriteHandler, kw),
            (r"/v1/tags/?", TagsHandler, kw),
            (r"/v1/users/?", UsersHandler, kw),
            (rf"/v1/users/{seg}/?", UserHandler, kw),
            (rf"/v1/contacts/{seg}/?", ContactHandler, kw),
            (r"/v1(/.*)?", NotFoundHandler, kw),
            (r"/_sandbox/stats", AdminStatsHandler, kw),
            (r"/_sandbox/reset", AdminResetHandler, kw),
            (r"/_sandbox/oauth/token", AdminTokenHandler, kw),
            (r"/_sandbox/config", AdminConfigHandler, kw),
            (r"/_sandbox/opportunities", AdminOpportunitiesHandler, kw),
            (rf"/_sandbox/opportunities/{seg}", AdminOpportunityHandler, kw),
            (rf"/_sandbox/opportunities/{seg}/tags", AdminTagsHandler, kw),
            *webhook_routes(kw),
            (r"/_sandbox(/.*)?", AdminNotFoundHandler, kw),
        ],
        log_function=_log_request,
        compress_response=False,
    )
