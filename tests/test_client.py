"""LeverClient against transport-level fakes (`responses`): waits are recorded, never slept."""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from toolkit.client.http import parse_retry_after
from toolkit.client.lever import MAX_LISTING_RESTARTS, LeverClient
from toolkit.client.ratelimit import TokenBucket
from toolkit.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectionFailedError,
    InvalidOffsetTokenError,
    LeverError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)

BASE = "https://lever.test/v1"
OPPS = f"{BASE}/opportunities"
KEY = "lvr_SECRET_KEY_d41d8cd98f00b204"
TOKEN = "oauth_SECRET_TOKEN_e3b0c44298fc"
INVALID_OFFSET = "Invalid offset token: Offset token is invalid for sort"


class SleepRecorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class FrozenClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleep() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make(sleep: SleepRecorder) -> Callable[..., LeverClient]:
    """A client with a recording sleep and a limiter that never waits (unless a test says so)."""

    def factory(**kwargs: Any) -> LeverClient:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("sleep", sleep)
        kwargs.setdefault("limiter", TokenBucket(1e6, 10**6, sleep=_never_sleep))
        return LeverClient(kwargs.pop("base_url", BASE), **kwargs)

    return factory


def _never_sleep(seconds: float) -> None:
    # A 429 halves the limiter's rate and empties its bucket, so the next token of this
    # 1e6/s limiter is microseconds away; anything longer is throttling these tests do not want.
    if seconds > 1e-3:
        raise AssertionError(f"the limiter slept {seconds} s in a test that should not throttle")


def query(call: Any) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True)


def qdict(call: Any) -> dict[str, str]:
    return dict(query(call))


def page(ids: list[str], next_token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": [{"id": i} for i in ids], "hasNext": next_token is not None}
    if next_token is not None:
        body["next"] = next_token
    return body


def lever_error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


# -- pagination -----------------------------------------------------------------------------------


def test_pagination_follows_next_until_the_last_page(rsps, make) -> None:
    rsps.get(OPPS, json=page(["o1", "o2"], "tok-1"))
    rsps.get(OPPS, json=page(["o3"], "tok-2"))
    rsps.get(OPPS, json=page(["o4"]))  # last page: no "next" key at all
    client = make()
    assert [o["id"] for o in client.iter_opportunities()] == ["o1", "o2", "o3", "o4"]
    assert len(rsps.calls) == 3
    assert [qdict(c).get("limit") for c in rsps.calls] == ["100", "100", "100"]
    assert [qdict(c).get("offset") for c in rsps.calls] == [None, "tok-1", "tok-2"]
    assert client.stats.requests == 3


def test_pagination_is_lazy(rsps, make) -> None:
    rsps.get(OPPS, json=page(["o1"], "tok-1"))
    rsps.get(OPPS, json=page(["o2"]))
    listing = make().iter_opportunities()
    assert len(rsps.calls) == 0
    assert next(listing)["id"] == "o1"
    assert len(rsps.calls) == 1


def test_hasnext_without_next_restarts_the_listing_never_truncates(rsps, make) -> None:
    # once malformed, then Lever answers properly: nothing lost, nothing repeated
    rsps.get(OPPS, json={"data": [{"id": "o1"}], "hasNext": True})
    rsps.get(OPPS, json=page(["o1", "o2"], "tok-1"))
    rsps.get(OPPS, json=page(["o3"]))
    client = make()
    assert [o["id"] for o in client.iter_opportunities()] == ["o1", "o2", "o3"]
    assert [qdict(c).get("offset") for c in rsps.calls] == [None, None, "tok-1"]
    assert client.stats.listing_restarts == 1


def test_hasnext_without_next_every_time_is_an_error_naming_the_listing(rsps, make) -> None:
    rsps.get(OPPS, json={"data": [{"id": "o1"}], "hasNext": True})
    with pytest.raises(UnexpectedResponseError) as info:
        list(make().iter_opportunities(confidentiality="all"))
    assert "GET /opportunities (confidentiality)" in str(info.value)
    assert "without a 'next' token" in str(info.value)
    assert len(rsps.calls) == MAX_LISTING_RESTARTS + 1


def test_pagination_deduplicates_by_id(rsps, make) -> None:
    rsps.get(OPPS, json=page(["o1", "o2"], "tok-1"))
    rsps.get(OPPS, json=page(["o2", "o3"]))
    assert [o["id"] for o in make().iter_opportunities()] == ["o1", "o2", "o3"]


@pytest.mark.timeout(10)  # the bug this guards against is an endless loop
def test_a_repeated_next_token_is_an_error_not_an_endless_loop(rsps, make) -> None:
    rsps.get(OPPS, json=page(["o1"], "same"))
    rsps.get(OPPS, json=page(["o2"], "same"))
    rsps.get(OPPS, json=page(["o3"], "same"))
    with pytest.raises(UnexpectedResponseError, match="repeats a 'next' token"):
        list(make().iter_opportunities())
    assert len(rsps.calls) == 2


def test_caller_offset_and_limit(rsps, make) -> None:
    rsps.get(OPPS, json=page(["o1"]))
    list(make().iter_opportunities(offset="stale", limit=25))
    assert qdict(rsps.calls[0]) == {"limit": "25"}


# -- filters and query encoding -------------------------------------------------------------------


def test_filters_multi_value_keys_booleans_and_pass_through(rsps, make) -> None:
    rsps.get(OPPS, json=page(["o1"]))
    list(
        make().iter_opportunities(
            tag=["a", "b c"],
            archived=False,
            snoozed=True,
            confidentiality="all",
            expand="contact",
            created_at_start=1_600_000_000_000,
            created_at_end=1_700_000_000_000,
            contact_id="c-1",
            email=None,  # None is dropped
        )
    )
    url = rsps.calls[0].request.url
    assert "tag=a&tag=b+c" in url or "tag=a&tag=b%20c" in url
    pairs = query(rsps.calls[0])
    assert [v for k, v in pairs if k == "tag"] == ["a", "b c"]
    got = dict(pairs)
    assert got["archived"] == "false"
    assert got["snoozed"] == "true"
    assert got["confidentiality"] == "all"
    assert got["expand"] == "contact"
    assert got["created_at_start"] == "1600000000000"
    assert got["created_at_end"] == "1700000000000"
    assert got["contact_id"] == "c-1"
    assert got["limit"] == "100"
    assert "email" not in got


def test_multi_value_expand_as_a_tuple(rsps, make) -> None:
    rsps.get(OPPS, json=page([]))
    list(make().iter_opportunities(expand=("contact", "stage")))
    assert [v for k, v in query(rsps.calls[0]) if k == "expand"] == ["contact", "stage"]


# -- invalid offset token: restart without duplicates ---------------------------------------------


def _invalid_400() -> dict[str, Any]:
    return {"status": 400, "json": lever_error("BadRequestError", INVALID_OFFSET)}


def _invalid_200() -> dict[str, Any]:
    return {"status": 200, "json": lever_error("BadRequestError", INVALID_OFFSET)}


@pytest.mark.parametrize("invalid", [_invalid_400, _invalid_200], ids=["http400", "http200"])
def test_an_invalid_offset_token_restarts_the_listing_without_duplicates(
    rsps, make, sleep, invalid
) -> None:
    rsps.get(OPPS, json=page(["o1", "o2"], "tok-1"))
    rsps.get(OPPS, **invalid())
    rsps.get(OPPS, json=page(["o2", "o1"], "tok-9"))  # first page again, in another order
    rsps.get(OPPS, json=page(["o3"]))
    client = make()
    assert [o["id"] for o in client.iter_opportunities(confidentiality="all")] == ["o1", "o2", "o3"]
    assert [qdict(c).get("offset") for c in rsps.calls] == [None, "tok-1", None, "tok-9"]
    assert all(qdict(c)["confidentiality"] == "all" for c in rsps.calls)
    stats = client.stats.as_dict()
    assert stats["listing_restarts"] == 1
    assert stats["retries"] == 0  # a restart is not a retry of the same request
    assert sleep.waits == []


@pytest.mark.parametrize("invalid", [_invalid_400, _invalid_200], ids=["http400", "http200"])
def test_the_listing_gives_up_after_the_restart_bound(rsps, make, invalid) -> None:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        if "offset" in dict(parse_qsl(urlsplit(request.url).query)):
            spec = invalid()
            return spec["status"], {}, json.dumps(spec["json"])
        return 200, {}, json.dumps(page(["o1"], "tok-1"))

    rsps.add_callback(responses.GET, OPPS, callback=answer, content_type="application/json")
    client = make()
    seen = []
    with pytest.raises(InvalidOffsetTokenError) as e:
        seen.extend(o["id"] for o in client.iter_opportunities())
    assert seen == ["o1"]
    assert isinstance(e.value, BadRequestError)
    assert e.value.message == INVALID_OFFSET
    assert len(rsps.calls) == 2 * (MAX_LISTING_RESTARTS + 1)
    assert client.stats.listing_restarts == MAX_LISTING_RESTARTS + 1


# -- 429 and Retry-After --------------------------------------------------------------------------


def test_429_with_retry_after_seconds(rsps, make, sleep) -> None:
    rsps.get(f"{OPPS}/o1", status=429, headers={"Retry-After": "7"})
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    client = make()
    assert client.get_opportunity("o1") == {"id": "o1"}
    assert sleep.waits == [7.0]
    assert len(rsps.calls) == 2
    stats = client.stats.as_dict()
    assert (stats["rate_limited"], stats["retries"], stats["backoff_seconds"]) == (1, 1, 7.0)


def test_429_with_retry_after_as_an_http_date(rsps, make, sleep) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    rsps.get(f"{OPPS}/o1", status=429, headers={"Retry-After": when})
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    make().get_opportunity("o1")
    assert len(sleep.waits) == 1
    assert 28.0 <= sleep.waits[0] <= 30.0  # the date has one-second resolution


def test_429_with_x_ratelimit_reset(rsps, make, sleep) -> None:
    rsps.get(f"{OPPS}/o1", status=429, headers={"X-RateLimit-Reset": str(int(time.time()) + 12)})
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    make().get_opportunity("o1")
    assert len(sleep.waits) == 1
    assert 10.0 <= sleep.waits[0] <= 12.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 10.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 -0000"}, 10.0),  # UTC, not local time
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # in the past
        ({"X-RateLimit-Reset": "1445412510"}, 10.0),  # epoch seconds
        ({"X-RateLimit-Reset": "1445412505000"}, 5.0),  # epoch milliseconds
        ({"X-RateLimit-Reset": "4"}, 4.0),  # seconds from now
        ({"Retry-After": "soon", "X-RateLimit-Reset": "2"}, 2.0),
        ({"X-RateLimit-Reset": "later"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412500.0  # 2015-10-21 07:28:20 UTC
    got = parse_retry_after(headers, now=now)
    assert got == (None if expected is None else pytest.approx(expected))


def test_429_without_headers_backs_off_exponentially_up_to_backoff_max(
    rsps, make, sleep, monkeypatch
) -> None:
    worst_jitter = lambda lo, hi: hi  # noqa: E731
    monkeypatch.setattr("toolkit.client.lever.random.uniform", worst_jitter)
    for _ in range(5):
        rsps.get(f"{OPPS}/o1", status=429)
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    client = make(backoff_base=1.0, backoff_max=4.0, max_attempts=6)
    client.get_opportunity("o1")
    assert sleep.waits == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert client.stats.backoff_seconds == pytest.approx(15.0)


def test_backoff_jitter_stays_within_the_exponential_ceiling(rsps, make, sleep) -> None:
    rsps.get(f"{OPPS}/o1", status=429)  # repeated for every call
    limiter = TokenBucket(1e6, 10**6, sleep=lambda s: None)  # 429s slow it: tiny waits are fine
    client = make(
        backoff_base=0.5, backoff_max=3.0, max_attempts=12, max_retry_seconds=1e9, limiter=limiter
    )
    with pytest.raises(RateLimitedError):
        client.get_opportunity("o1")
    assert len(sleep.waits) == 11
    for attempt, wait in enumerate(sleep.waits, start=1):
        assert 0.0 <= wait <= min(3.0, 0.5 * 2 ** (attempt - 1))
    assert len(set(sleep.waits)) > 1  # jitter, not a fixed schedule


# -- 5xx, connection errors and timeouts ----------------------------------------------------------


def test_503_then_success(rsps, make, sleep) -> None:
    rsps.get(f"{OPPS}/o1", status=503, json=lever_error("ServiceUnavailable", "maintenance"))
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    client = make()
    assert client.get_opportunity("o1") == {"id": "o1"}
    assert len(sleep.waits) == 1
    assert client.stats.server_errors == 1


def test_502_on_add_tags_is_retried_with_the_same_body(rsps, make) -> None:
    url = f"{OPPS}/o1/addTags"
    rsps.post(url, status=502, body="<html>Bad Gateway</html>", content_type="text/html")
    rsps.post(url, json={"data": {"id": "o1", "tags": ["vip"]}})
    assert make().add_tags("o1", ["vip"]) == {"id": "o1", "tags": ["vip"]}
    assert [c.request.method for c in rsps.calls] == ["POST", "POST"]
    assert [json.loads(c.request.body) for c in rsps.calls] == [{"tags": ["vip"]}] * 2


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("[Errno 111] Connection refused"),
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("IncompleteRead(12 bytes read)"),
    ],
    ids=["connection-error", "connect-timeout", "read-timeout", "dropped-mid-body"],
)
def test_transport_failure_then_success(rsps, make, sleep, failure) -> None:
    rsps.get(f"{OPPS}/o1", body=failure)
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    client = make()
    assert client.get_opportunity("o1") == {"id": "o1"}
    assert len(sleep.waits) == 1
    assert client.stats.connection_errors == 1
    assert client.stats.retries == 1


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        ({"status": 429}, RateLimitedError, 429),
        ({"status": 503, "json": lever_error("ServiceUnavailable", "down")}, ServerError, 503),
        ({"status": 500, "body": "oops", "content_type": "text/plain"}, ServerError, 500),
        ({"body": requests.ConnectionError("boom")}, ConnectionFailedError, None),
        ({"body": requests.ReadTimeout("slow")}, ConnectionFailedError, None),
    ],
)
def test_retry_budget_exhausted(rsps, make, sleep, answer, error, status) -> None:
    rsps.get(f"{OPPS}/o1", **answer)
    client = make(max_attempts=4)
    with pytest.raises(error) as e:
        client.get_opportunity("o1")
    assert e.value.status == status
    assert (e.value.method, e.value.path) == ("GET", "/opportunities/o1")
    assert len(rsps.calls) == 4
    assert len(sleep.waits) == 3
    assert client.stats.retries == 3


def test_connection_failure_names_the_host_and_reason(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", body=requests.ConnectionError("[Errno 111] Connection refused"))
    with pytest.raises(ConnectionFailedError) as e:
        make(max_attempts=1).get_opportunity("o1")
    assert "lever.test" in str(e.value)
    assert "Connection refused" in str(e.value)
    assert "LEVER_BASE_URL" in str(e.value)


def test_max_retry_seconds_stops_retry_after_waits_that_would_exceed_it(rsps, make, sleep) -> None:
    rsps.get(f"{OPPS}/o1", status=429, headers={"Retry-After": "50"})
    client = make(max_attempts=10, max_retry_seconds=120)
    with pytest.raises(RateLimitedError):
        client.get_opportunity("o1")
    assert sleep.waits == [50.0, 50.0]  # a third 50 s wait would pass 120 s
    assert len(rsps.calls) == 3


def test_a_retry_after_beyond_the_budget_gives_up_at_once(rsps, make, sleep) -> None:
    rsps.get(f"{OPPS}/o1", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimitedError):
        make(max_retry_seconds=120).get_opportunity("o1")
    assert sleep.waits == []
    assert len(rsps.calls) == 1


def test_backoff_is_cut_to_the_remaining_budget(rsps, make, sleep, monkeypatch) -> None:
    monkeypatch.setattr("toolkit.client.lever.random.uniform", lambda lo, hi: hi)
    rsps.get(f"{OPPS}/o1", status=503)
    client = make(max_attempts=10, max_retry_seconds=3.0, backoff_base=2.0, backoff_max=30)
    with pytest.raises(ServerError):
        client.get_opportunity("o1")
    assert sleep.waits == [2.0, 1.0]
    assert sum(sleep.waits) <= 3.0
    assert len(rsps.calls) == 3


# -- errors that are never retried ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "BadRequestError", BadRequestError),
        (401, "UnauthorizedError", AuthenticationError),
        (403, "ForbiddenError", PermissionDeniedError),
        (404, "ResourceNotFound", NotFoundError),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_client_errors_are_never_retried(rsps, make, sleep, status, code, error, method) -> None:
    url = f"{OPPS}/o1" if method == "GET" else f"{OPPS}/o1/addTags"
    rsps.add(method, url, status=status, json=lever_error(code, "the details"))
    client = make()
    with pytest.raises(error) as e:
        if method == "GET":
            client.get_opportunity("o1")
        else:
            client.add_tags("o1", ["vip"])
    assert len(rsps.calls) == 1
    assert sleep.waits == []
    assert (e.value.status, e.value.code, e.value.message) == (status, code, "the details")
    assert e.value.method == method
    assert client.stats.retries == 0
    assert isinstance(e.value, LeverError)


def test_401_says_to_check_lever_api_key(rsps, make) -> None:
    rsps.get(OPPS, status=401, json=lever_error("UnauthorizedError", "Invalid API key"))
    with pytest.raises(AuthenticationError) as e:
        list(make().iter_opportunities())
    text = str(e.value)
    assert "LEVER_API_KEY" in text
    assert "Invalid API key" in text
    assert "HTTP 401" in text


def test_401_with_a_non_json_body_is_still_an_authentication_error(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", status=401, body="Unauthorized", content_type="text/plain")
    with pytest.raises(AuthenticationError, match="LEVER_API_KEY"):
        make().get_opportunity("o1")


def test_a_301_on_a_write_is_not_followed(rsps, make) -> None:
    moved = "https://elsewhere.test/v1/opportunities/o1/addTags"
    rsps.post(
        f"{OPPS}/o1/addTags",
        status=301,
        body="<html><body>Moved Permanently</body></html>",
        content_type="text/html",
        headers={"Location": moved},
    )
    with pytest.raises(UnexpectedResponseError) as e:
        make().add_tags("o1", ["vip"])
    assert moved in str(e.value)
    assert e.value.status == 301
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.method == "POST"


def test_a_base_url_answering_html(rsps, make) -> None:
    rsps.get(OPPS, body="<!doctype html><title>Welcome</title>", content_type="text/html")
    with pytest.raises(UnexpectedResponseError) as e:
        list(make().iter_opportunities())
    assert "text/html" in str(e.value)
    assert "LEVER_BASE_URL" in str(e.value)
    assert len(rsps.calls) == 1


def test_a_404_html_page_means_a_wrong_base_url(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", status=404, body="<html>Not Found</html>", content_type="text/html")
    with pytest.raises(UnexpectedResponseError):
        make().get_opportunity("o1")


@pytest.mark.parametrize(
    "body", [[{"id": "o1"}], {"results": [{"id": "o1"}]}, {"data": {"id": "o1"}}, "just text"]
)
def test_json_that_is_not_a_lever_list(rsps, make, body) -> None:
    rsps.get(OPPS, json=body)
    with pytest.raises(UnexpectedResponseError):
        list(make().iter_opportunities())


@pytest.mark.parametrize("body", [[{"id": "o1"}], {"id": "o1"}, {"data": ["o1"]}])
def test_json_that_is_not_a_lever_object(rsps, make, body) -> None:
    rsps.get(f"{OPPS}/o1", json=body)
    with pytest.raises(UnexpectedResponseError):
        make().get_opportunity("o1")


# -- credentials and configuration ----------------------------------------------------------------


def test_basic_auth_header_is_the_key_with_an_empty_password(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    make().get_opportunity("o1")
    headers = rsps.calls[0].request.headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert headers["Accept"] == "application/json"


def test_bearer_header_for_an_access_token(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    make(api_key=None, access_token=TOKEN).get_opportunity("o1")
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "credentials", [{}, {"api_key": KEY, "access_token": TOKEN}, {"api_key": ""}]
)
def test_both_or_neither_credential_is_a_configuration_error(credentials) -> None:
    with pytest.raises(ConfigurationError) as e:
        LeverClient(BASE, **credentials)
    assert KEY not in str(e.value) and TOKEN not in str(e.value)


def test_a_base_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigurationError) as e:
        LeverClient(f"https://{KEY}:@lever.test/v1", api_key=KEY)
    assert KEY not in str(e.value)


def test_from_env_with_an_api_key(rsps) -> None:
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    client = LeverClient.from_env(
        {"LEVER_API_KEY": KEY, "LEVER_BASE_URL": BASE + "/"}, sleep=SleepRecorder()
    )
    assert client.base_url == BASE
    client.get_opportunity("o1")
    assert rsps.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_from_env_with_an_access_token_and_the_default_host() -> None:
    client = LeverClient.from_env({"LEVER_ACCESS_TOKEN": TOKEN})
    assert client.base_url == "https://api.lever.co/v1"
    assert client.session.headers["Authorization"] == f"Bearer {TOKEN}"


def test_from_env_without_a_key_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="LEVER_API_KEY"):
        LeverClient.from_env({"LEVER_BASE_URL": BASE})


def test_from_env_passes_keyword_arguments_through() -> None:
    limiter = TokenBucket(3, 3)
    client = LeverClient.from_env({"LEVER_API_KEY": KEY}, limiter=limiter, max_attempts=2)
    assert client.limiter is limiter
    assert client.max_attempts == 2


# -- the key never leaks --------------------------------------------------------------------------


def test_the_key_is_absent_from_errors_reprs_and_debug_logs(rsps, make, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.get(f"{OPPS}/ok", status=429, headers={"Retry-After": "1"})
    rsps.get(f"{OPPS}/ok", body=requests.ConnectionError(f"refused for https://{BASE}"))
    rsps.get(f"{OPPS}/ok", status=503)
    rsps.get(f"{OPPS}/ok", json={"data": {"id": "ok"}})
    rsps.get(f"{OPPS}/e400", status=400, json=lever_error("BadRequestError", "bad"))
    rsps.get(f"{OPPS}/e401", status=401, json=lever_error("UnauthorizedError", "no"))
    rsps.get(f"{OPPS}/e403", status=403, json=lever_error("ForbiddenError", "no"))
    rsps.get(f"{OPPS}/e404", status=404, json=lever_error("ResourceNotFound", "gone"))
    rsps.get(f"{OPPS}/e429", status=429)
    rsps.get(f"{OPPS}/e503", status=503)
    rsps.get(f"{OPPS}/conn", body=requests.ConnectionError("refused"))
    rsps.get(f"{OPPS}/html", body="<html></html>", content_type="text/html")
    rsps.post(f"{OPPS}/moved/addTags", status=301, headers={"Location": "https://x.test/"})
    rsps.get(OPPS, status=400, json=lever_error("BadRequestError", INVALID_OFFSET))

    errors: list[BaseException] = []
    for client in (make(max_attempts=4), make(api_key=None, access_token=TOKEN, max_attempts=2)):
        assert client.get_opportunity("ok") == {"id": "ok"}
        for name in ("e400", "e401", "e403", "e404", "e429", "e503", "conn", "html"):
            with pytest.raises(LeverError) as e:
                client.get_opportunity(name)
            errors.append(e.value)
        with pytest.raises(UnexpectedResponseError) as e:
            client.add_tags("moved", ["x"])
        errors.append(e.value)
        with pytest.raises(InvalidOffsetTokenError) as e:
            list(client.iter_opportunities())
        errors.append(e.value)
        texts = [repr(client), str(client.stats.as_dict())]
        texts += [str(err) for err in errors] + [repr(err) for err in errors]
        texts.append(caplog.text)
        texts += [r.getMessage() for r in caplog.records]
        for text in texts:
            assert KEY not in text
            assert TOKEN not in text
    for bad in (ConfigurationError, ValueError):
        assert not any(isinstance(err, bad) for err in errors)
    assert {type(err).__name__ for err in errors} >= {
        "BadRequestError",
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "RateLimitedError",
        "ServerError",
        "ConnectionFailedError",
        "UnexpectedResponseError",
        "InvalidOffsetTokenError",
    }
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)


# -- tag writes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["addTags", "removeTags"])
def test_tag_writes_send_the_tags_body_and_perform_as(rsps, make, action) -> None:
    rsps.post(f"{OPPS}/o1/{action}", json={"data": {"id": "o1", "tags": ["keep"]}})
    client = make()
    write = client.add_tags if action == "addTags" else client.remove_tags
    assert write("o1", ("vip", "Do Not Contact"), perform_as="user-9") == {
        "id": "o1",
        "tags": ["keep"],
    }
    request = rsps.calls[0].request
    assert request.method == "POST"
    assert json.loads(request.body) == {"tags": ["vip", "Do Not Contact"]}
    assert request.headers["Content-Type"] == "application/json"
    assert qdict(rsps.calls[0]) == {"perform_as": "user-9"}


def test_tag_writes_without_perform_as_send_no_query(rsps, make) -> None:
    rsps.post(f"{OPPS}/o1/addTags", status=200, body="")
    assert make().add_tags("o1", ["vip"]) == {}  # no echo: an empty dict
    assert urlsplit(rsps.calls[0].request.url).query == ""


@pytest.mark.parametrize("tags", [[], (), iter([]), [""], ["ok", ""], [None], "vip"])
def test_bad_tag_lists_raise_value_error_without_a_request(rsps, make, tags) -> None:
    client = make()
    with pytest.raises(ValueError):
        client.add_tags("o1", tags)
    with pytest.raises(ValueError):
        client.remove_tags("o1", tags)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("raw", "segment"),
    [("../x", "..%2Fx"), ("a/b", "a%2Fb"), ("a b?c#d", "a%20b%3Fc%23d"), (" o1 ", "o1")],
)
def test_ids_are_quoted_into_one_path_segment(rsps, make, raw, segment) -> None:
    rsps.post(f"{OPPS}/{segment}/addTags", json={})
    make().add_tags(raw, ["vip"])
    assert urlsplit(rsps.calls[0].request.url).path == f"/v1/opportunities/{segment}/addTags"


@pytest.mark.parametrize("raw", ["", "  ", ".", "..", None, 42])
def test_ids_that_are_not_ids_are_refused_without_a_request(rsps, make, raw) -> None:
    client = make()
    with pytest.raises(ValueError):
        client.add_tags(raw, ["vip"])
    with pytest.raises(ValueError):
        client.get_opportunity(raw)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("action", ["addTags", "removeTags"])
def test_deprecated_candidate_endpoints(rsps, make, action) -> None:
    rsps.post(f"{BASE}/candidates/c1/{action}", json={"data": {"id": "c1"}})
    client = make()
    write = client.add_candidate_tags if action == "addTags" else client.remove_candidate_tags
    with pytest.warns(DeprecationWarning, match="deprecated"):
        assert write("c1", ["vip"], perform_as="u1") == {"id": "c1"}
    assert urlsplit(rsps.calls[0].request.url).path == f"/v1/candidates/c1/{action}"
    assert json.loads(rsps.calls[0].request.body) == {"tags": ["vip"]}
    assert qdict(rsps.calls[0]) == {"perform_as": "u1"}


# -- other resources ------------------------------------------------------------------------------


def test_iter_tags_pages_and_deduplicates_by_text(rsps, make) -> None:
    first = {"data": [{"text": "vip", "count": 3}, {"text": "Java", "count": 1}], "hasNext": True}
    rsps.get(f"{BASE}/tags", json=dict(first, next="t1"))
    rsps.get(f"{BASE}/tags", json={"data": [{"text": "vip", "count": 3}], "hasNext": False})
    assert [t["text"] for t in make().iter_tags()] == ["vip", "Java"]
    assert [qdict(c).get("offset") for c in rsps.calls] == [None, "t1"]


def test_get_contact(rsps, make) -> None:
    person = {"id": "c1", "name": "Ada", "emails": ["ada@example.com"], "location": {"name": "X"}}
    rsps.get(f"{BASE}/contacts/c1", json={"data": person})
    assert make().get_contact("c1") == person


def test_get_opportunity_passes_params(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    make().get_opportunity("o1", expand="contact")
    assert qdict(rsps.calls[0]) == {"expand": "contact"}


def test_iter_users_by_email(rsps, make) -> None:
    rsps.get(f"{BASE}/users", json={"data": [{"id": "u1", "email": "bot@example.com"}]})
    users = list(make().iter_users(email="bot@example.com"))
    assert users == [{"id": "u1", "email": "bot@example.com"}]
    assert qdict(rsps.calls[0]) == {"email": "bot@example.com", "limit": "100"}


def test_iter_users_without_email(rsps, make) -> None:
    rsps.get(f"{BASE}/users", json={"data": []})
    assert list(make().iter_users()) == []
    assert qdict(rsps.calls[0]) == {"limit": "100"}


# -- stats, timeouts, threads ---------------------------------------------------------------------


def test_stats_after_a_scripted_sequence(rsps, make, sleep, monkeypatch) -> None:
    monkeypatch.setattr("toolkit.client.lever.random.uniform", lambda lo, hi: 0.25)
    url = f"{OPPS}/o1"
    rsps.get(url, status=429, headers={"Retry-After": "2"})
    rsps.get(url, status=503)
    rsps.get(url, body=requests.ConnectionError("refused"))
    rsps.get(url, status=502)
    rsps.get(url, json={"data": {"id": "o1"}})
    rsps.get(f"{OPPS}/gone", status=404, json=lever_error("ResourceNotFound", "gone"))
    client = make()
    client.get_opportunity("o1")
    with pytest.raises(NotFoundError):
        client.get_opportunity("gone")
    assert sleep.waits == [2.0, 0.25, 0.25, 0.25]
    assert client.stats.as_dict() == {
        "requests": 6,
        "retries": 4,
        "rate_limited": 1,
        "server_errors": 2,
        "connection_errors": 1,
        "listing_restarts": 0,
        "replaced_text": 0,
        "backoff_seconds": 2.75,
        "throttle_seconds": 0.0,
        "by_status": {"200": 1, "404": 1, "429": 1, "502": 1, "503": 1},
    }


class RecordingSession(requests.Session):
    """A real Session (so `responses` still answers) that records the keyword arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.kwargs: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.kwargs.append(kwargs)
        return super().request(method, url, **kwargs)


@pytest.mark.parametrize("timeout", [None, 7.5, (2.0, 11.0)])
def test_a_timeout_is_passed_on_every_request(rsps, make, timeout) -> None:
    rsps.get(OPPS, json=page(["o1"], "tok-1"))
    rsps.get(OPPS, status=503)
    rsps.get(OPPS, json=page(["o2"]))
    rsps.post(f"{OPPS}/o1/addTags", body=requests.ReadTimeout("slow"))
    rsps.post(f"{OPPS}/o1/addTags", json={})
    rsps.get(f"{BASE}/contacts/c1", json={"data": {"id": "c1"}})
    session = RecordingSession()
    kwargs: dict[str, Any] = {"session": session}
    if timeout is not None:
        kwargs["timeout"] = timeout
    client = make(**kwargs)
    list(client.iter_opportunities())
    client.add_tags("o1", ["vip"])
    client.get_contact("c1")
    expected = (5.0, 30.0) if timeout is None else timeout
    assert len(session.kwargs) == len(rsps.calls) == 6
    assert all(k["timeout"] == expected for k in session.kwargs)
    assert all(k["allow_redirects"] is False for k in session.kwargs)
    assert all(c.request.req_kwargs["timeout"] == expected for c in rsps.calls)
    assert session.headers["Accept"] == "application/json"


def test_repr_and_context_manager() -> None:
    with LeverClient(BASE, api_key=KEY) as client:
        assert repr(client) == f"LeverClient(base_url={BASE!r})"


def test_a_shared_token_bucket_paces_eight_threads(rsps, make, sleep) -> None:
    rate, burst, total, threads = 10.0, 20, 100, 8
    throttle = SleepRecorder()
    limiter = TokenBucket(rate, burst, clock=FrozenClock(), sleep=throttle)
    rsps.get(f"{OPPS}/o", json={"data": {"id": "o"}})
    client = make(limiter=limiter)
    jobs = iter(range(total))
    jobs_lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        while True:
            with jobs_lock:
                if next(jobs, None) is None:
                    return
            try:
                client.get_opportunity("o")
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert failures == []
    assert len(rsps.calls) == total
    expected = [k / rate for k in range(1, total - burst + 1)]
    assert sorted(throttle.waits) == pytest.approx(expected)  # each slot handed out once
    assert max(throttle.waits) == pytest.approx((total - burst) / rate)  # the last request's slot
    assert client.stats.throttle_seconds == pytest.approx(sum(expected))
    assert client.stats.requests == total
    assert sleep.waits == []  # no retries


def test_iter_opportunity_pages(rsps, make) -> None:
    rsps.get(OPPS, json=page(["o1", "o2"], "tok-1"))
    rsps.get(OPPS, json=page(["o2", "o3"]))
    pages = list(make().iter_opportunity_pages(archived=True))
    assert [([o["id"] for o in p.items], p.has_next) for p in pages] == [
        (["o1", "o2"], True),
        (["o3"], False),
    ]
    assert [qdict(c).get("archived") for c in rsps.calls] == ["true", "true"]


def test_a_429_slows_the_shared_limiter_for_every_thread(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", status=429)
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    limiter = TokenBucket(8, 8, sleep=lambda s: None)
    client = make(limiter=limiter)
    assert client.get_opportunity("o1") == {"id": "o1"}
    assert limiter.rate < 8  # halved on the 429, then climbing back


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("HTTPConnectionPool: NewConnectionError: [Errno 111] refused"),
        requests.ConnectionError("NameResolutionError: Failed to resolve 'nohost.invalid'"),
    ],
    ids=["refused", "unresolvable"],
)
def test_a_base_url_that_never_answered_fails_at_once(rsps, make, sleep, failure) -> None:
    rsps.get(f"{OPPS}/o1", body=failure)
    client = make()
    with pytest.raises(ConnectionFailedError, match="cannot reach"):
        client.get_opportunity("o1")
    assert sleep.waits == [] and len(rsps.calls) == 1


def test_refused_after_the_server_answered_once_is_retried(rsps, make, sleep) -> None:
    rsps.get(f"{OPPS}/o1", json={"data": {"id": "o1"}})
    rsps.get(f"{OPPS}/o2", body=requests.ConnectionError("NewConnectionError: refused"))
    rsps.get(f"{OPPS}/o2", json={"data": {"id": "o2"}})
    client = make()
    client.get_opportunity("o1")
    assert client.get_opportunity("o2") == {"id": "o2"}
    assert len(sleep.waits) == 1


def test_a_bare_404_is_not_taken_for_a_missing_opportunity(rsps, make) -> None:
    rsps.get(f"{OPPS}/o1", status=404, body=b"")
    with pytest.raises(UnexpectedResponseError, match="LEVER_BASE_URL"):
        make().get_opportunity("o1")
