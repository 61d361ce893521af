"""The sandbox's tornado application: Lever's `/v1` routes and the `/_sandbox/` admin routes
(`lever_sandbox.handlers`), Lever's webhooks API (`webhooks_api`), its postings, stages and
archive reasons (`catalog`), the OAuth token endpoint, and the webhook admin routes (`webhooks`).

It is its own module so that imports go one way: `handlers` <- `webhooks`, `webhooks_api`,
`catalog` <- `app` <- `server`.
"""

from __future__ import annotations

import logging

import tornado.web

from lever_sandbox.catalog import routes as catalog_routes
from lever_sandbox.engine import Engine
from lever_sandbox.handlers import (
    AdminConfigHandler,
    AdminNotFoundHandler,
    AdminOpportunitiesHandler,
    AdminOpportunityHandler,
    AdminResetHandler,
    AdminStatsHandler,
    AdminTagsHandler,
    CandidateTagWriteHandler,
    ContactHandler,
    DeletedOpportunitiesHandler,
    NotFoundHandler,
    OAuthTokenHandler,
    OpportunitiesHandler,
    OpportunityHandler,
    TagsHandler,
    TagWriteHandler,
    UserHandler,
    UsersHandler,
)
from lever_sandbox.webhooks import routes as webhook_routes
from lever_sandbox.webhooks_api import admin_routes as webhook_admin_routes
from lever_sandbox.webhooks_api import api_routes as webhook_api_routes

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
            *webhook_api_routes(kw),
            *catalog_routes(kw),
            (r"/v1(/.*)?", NotFoundHandler, kw),
            (r"/oauth/token", OAuthTokenHandler, kw),
            (r"/_sandbox/stats", AdminStatsHandler, kw),
            (r"/_sandbox/reset", AdminResetHandler, kw),
            (r"/_sandbox/config", AdminConfigHandler, kw),
            (r"/_sandbox/opportunities", AdminOpportunitiesHandler, kw),
            (rf"/_sandbox/opportunities/{seg}", AdminOpportunityHandler, kw),
            (rf"/_sandbox/opportunities/{seg}/tags", AdminTagsHandler, kw),
            *webhook_admin_routes(kw),
            *webhook_routes(kw),
            (r"/_sandbox(/.*)?", AdminNotFoundHandler, kw),
        ],
        log_function=_log_request,
        compress_response=False,
    )
