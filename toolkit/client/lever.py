"""`LeverClient`: one `requests.Session`, one `_request`, pagination as a generator.

Every call goes through `_request`, which takes a token from the shared rate limiter, sends the
request with a timeout, maps failures onto the `LeverError` tree, and retries what is worth
retrying (429, 5xx, dropped connections and timeouts; tag writes included, since adding or removing
a set of tags is idempotent in effect). The key travels only in the Authorization header of the
session; it never enters an error, a log line or a repr.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from toolkit.chars import escaped
from toolkit.client.http import (
    Page,
    RetryableFailure,
    decode_answer,
    describe_listing,
    encode_params,
    never_connected,
    parse_retry_after,
    redirect_advice,
    short_reason,
)
from toolkit.client.oauth import TokenSource
from toolkit.client.ratelimit import TokenBucket
from toolkit.client.resources import LeverResources
from toolkit.client.stats import CallRecord, CallRecords, ClientStats
from toolkit.config import DEFAULT_BASE_URL, OAuthRefresh, load_settings
from toolkit.errors import (
    INVALID_OFFSET_MARKER,
    RETRYABLE_STATUSES,
    BaseUrlUnreachableError,
    ConfigurationError,
    ConnectionFailedError,
    InvalidOffsetTokenError,
    LeverError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    error_for_status,
)
from toolkit.scrub import register_secret

log = logging.getLogger(__name__)

DEFAULT_RATE = 10.0  # requests per second: Lever's documented steady rate
# Lever's bucket holds 20 [doc]; two fewer leave 200 ms for requests that arrive closer together
# than they were sent (measured on the sandbox at Lever's limits: 20 drew a 429 and the halved
# rate that follows it, 18 none, and 0.75 s off a fetch of 10,000 against a burst of 10)
DEFAULT_BURST = 18
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
PAGE_LIMIT = 100
MAX_LISTING_RESTARTS = 5
MAX_REFRESHES_PER_REQUEST = 5  # OAuth: 401s on tokens that Lever had accepted before


class LeverClient(LeverResources):
    """A client for the Lever Data API v1.

    Args:
        base_url: API root, e.g. ``https://api.lever.co/v1`` or a sandbox's URL.
        api_key: sent as the HTTP Basic user name with an empty password.
        access_token: an OAuth token, sent as ``Authorization: Bearer``. A key or OAuth, never
            both.
        oauth: OAuth refresh settings (or a ready `TokenSource`): the access token is then
            refreshed before it expires and on a 401, and the request goes on with the new one.
        session: an injectable `requests.Session` (tests, proxies, custom adapters).
        rate, burst: the shared token bucket's steady rate (requests/second) and burst size.
        limiter: a `TokenBucket` to share between clients; overrides rate and burst.
        timeout: (connect, read) seconds on every request.
        max_attempts: attempts per request, the first included.
        max_retry_seconds: total time one request may spend retrying.
        backoff_base, backoff_max: exponential backoff with full jitter, in seconds.
        sleep: how to wait between attempts; injectable for tests.

    Example:
        >>> client = LeverClient.from_env()  # doctest: +SKIP
        >>> for opp in client.iter_opportunities(confidentiality="all"):  # doctest: +SKIP
        ...     print(opp["id"], opp.get("tags"))
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        access_token: str | None = None,
        oauth: OAuthRefresh | TokenSource | None = None,
        session: requests.Session | None = None,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        limiter: TokenBucket | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_attempts: int = 6,
        max_retry_seconds: float = 120.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if bool(api_key) == bool(access_token or oauth):
            raise ConfigurationError(
                "give exactly one of api_key (LEVER_API_KEY) or OAuth (LEVER_ACCESS_TOKEN, or "
                "LEVER_REFRESH_TOKEN with its client)"
            )
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        parts = urlsplit(base_url)
        if parts.username or parts.password:
            # Never echo the URL here: its user-info is a credential.
            raise ConfigurationError(
                "the base URL must not carry credentials; put the key in LEVER_API_KEY"
            )
        self.base_url = base_url.rstrip("/")
        self._host = parts.hostname or self.base_url
        if parts.port:
            self._host = f"{self._host}:{parts.port}"
        self._base_path = parts.path.rstrip("/")
        self.session = session if session is not None else self._new_session()
        register_secret(api_key or access_token)  # errors scrub it from server messages
        if isinstance(oauth, OAuthRefresh):
            oauth = TokenSource(oauth, access_token=access_token, session=self.session)
        self.tokens: TokenSource | None = oauth  # sends its live token on every request
        if api_key:
            self.session.auth = (api_key, "")
        elif oauth is None:
            self.session.headers["Authorization"] = f"Bearer {access_token}"
        self.auth_kind = "api_key" if api_key else "oauth"  # Basic for a key, Bearer for OAuth
        # requests.Session starts with "Accept: */*", so setdefault would never apply.
        self.session.headers["Accept"] = "application/json"
        self.limiter = limiter if limiter is not None else TokenBucket(rate, burst)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_retry_seconds = max_retry_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self.stats = ClientStats()
        self._records = CallRecords()
        self._reached = False  # set once any HTTP answer arrives from the server
        self.server_time_ms: int | None = None  # the server's clock, from its last Date header

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> LeverClient:
        """A client configured from `LEVER_API_KEY` / `LEVER_ACCESS_TOKEN` and `LEVER_BASE_URL`."""
        settings = load_settings(None if environ is None else dict(environ))
        return cls(
            settings.base_url,
            api_key=settings.api_key,
            access_token=settings.access_token,
            oauth=settings.oauth,
            **kwargs,
        )

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "lever-tag-toolkit/0.1"
        return session

    def __repr__(self) -> str:
        return f"LeverClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LeverClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- instrumentation --------------------------------------------------------------------------

    def start_call_record(self) -> CallRecord:
        """Start counting, for this thread, what the next calls take (see `call_record`)."""
        return self._records.start()

    @property
    def call_record(self) -> CallRecord:
        """This thread's `CallRecord` since `start_call_record()`: attempts, last status, waits."""
        return self._records.current

    # -- the one request path -------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        """Send one API call with rate limiting and bounded retries; return the JSON body.

        At most `max_attempts` attempts; the waits between them never add up to more than
        `max_retry_seconds` (a `Retry-After` beyond the remaining budget ends the retries at once,
        a jittered backoff is cut to what remains).
        """
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type(RetryableFailure),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        refreshed: list[int] = []  # the OAuth refreshes this request asked for (at most one)
        try:
            return retrying(self._attempt, method, path, params, json, refreshed)
        except RetryableFailure as exhausted:
            raise exhausted.error from None

    def _spent(self, state: RetryCallState) -> float:
        """Seconds of the retry budget used: waits slept (fake or real) or wall time."""
        return max(state.idle_for, state.seconds_since_start or 0.0)

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        remaining = max(self.max_retry_seconds - self._spent(state), 0.0)
        return min(random.uniform(0, ceiling), remaining)  # full jitter, cut to the budget

    def _stop(self, state: RetryCallState) -> bool:
        spent = self._spent(state)
        if state.attempt_number >= self.max_attempts:
            reason = f"after {state.attempt_number} attempts"
        elif (
            spent >= self.max_retry_seconds or spent + state.upcoming_sleep > self.max_retry_seconds
        ):
            reason = f"a wait of {state.upcoming_sleep:.2f} s exceeds the retry budget"
        else:
            return False
        log.info("giving up on %s %s: %s", *state.args[:2], reason)
        return True

    def _before_sleep(self, state: RetryCallState) -> None:
        wait = state.upcoming_sleep
        self.stats.add(retries=1, backoff_seconds=wait)
        self._records.current.waited += wait
        failure = state.outcome.exception() if state.outcome else None
        log.info("retrying %s %s after %.2f s: %s", *state.args[:2], wait, failure)

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        refreshed: list[int],
    ) -> dict[str, Any]:
        headers, generation = None, 0
        if self.tokens is not None:  # before the rate limiter: a refresh is not a Lever call
            token, generation = self.tokens.token()
            headers = {"Authorization": f"Bearer {token}"}
        throttled = self.limiter.acquire()
        self.stats.add(throttle_seconds=throttled, requests=1)
        record = self._records.current
        record.attempts, record.status = record.attempts + 1, None
        record.waited += throttled
        url = f"{self.base_url}{path}"
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                params=encode_params(params),
                json=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,  # connection dropped mid-body
        ) as exc:
            self.stats.add(connection_errors=1)
            error: LeverError = ConnectionFailedError(
                f"cannot reach {self._host}: {short_reason(exc)}",
                method=method,
                path=path,
            )
            log.debug("%s %s failed: %s", method, path, short_reason(exc))
            if not self._reached and never_connected(exc):
                # Nothing has ever answered at this address (refused, no such host): a wrong
                # LEVER_BASE_URL, not a blip. Say so now instead of after a minute of retries.
                raise BaseUrlUnreachableError(error.message, method=method, path=path) from None
            raise RetryableFailure(error) from None
        except requests.RequestException as exc:
            raise ConnectionFailedError(
                f"request to {self._host} failed: {short_reason(exc)}", method=method, path=path
            ) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        status = response.status_code
        self._reached = True
        if self.tokens is not None and status != 401:
            self.tokens.accepted(generation)
        self._note_server_time(response.headers.get("Date"))
        self.stats.count_status(status)
        record.status = status
        log.debug("%s %s -> %s in %.0f ms", method, path, status, elapsed_ms)
        if 300 <= status < 400:
            # Checked before decoding: a redirect's body is usually HTML. Never followed, since
            # requests would turn a redirected POST into a GET.
            location = response.headers.get("Location", "")
            message = f"redirected to {location!r}; not followed" if location else "redirected"
            raise UnexpectedResponseError(
                f"{message}; {redirect_advice(location, self._base_path)}",
                status=status,
                method=method,
                path=path,
            )
        payload = self._decode(response, method, path)
        if 200 <= status < 300:
            if (
                "data" not in payload
                and INVALID_OFFSET_MARKER in str(payload.get("message", "")).lower()
            ):
                raise InvalidOffsetTokenError(
                    str(payload.get("message")),
                    status=status,
                    code=payload.get("code"),
                    method=method,
                    path=path,
                )
            return payload
        message = str(payload.get("message") or response.reason or "")
        if status == 404 and "code" not in payload:
            # Lever's 404s carry {code, message}; a bare one comes from something else (a proxy,
            # a web server, a wrong path in LEVER_BASE_URL).
            raise UnexpectedResponseError(
                f"the server at {self._host} answered 404 without Lever's error body",
                status=status,
                method=method,
                path=path,
            )
        error = error_for_status(status, message)(
            message, status=status, code=payload.get("code"), method=method, path=path
        )
        if status == 401 and self.tokens is not None and self._refresh_again(refreshed, generation):
            # Refreshed (unless another thread already did), then tried again at once. Under
            # many threads a short-lived token can expire between the refresh and the retry;
            # a token that Lever has never accepted means the app itself is refused.
            refreshed.append(generation)
            self.tokens.refresh_after_401(generation)
            raise RetryableFailure(error, 0.0)
        if status == 401 and self.tokens is not None:
            error.hint = (
                "Lever refused a freshly refreshed OAuth access token: check the app's scopes "
                "and that LEVER_BASE_URL is the account's host"
            )
        elif status == 401 and self.auth_kind == "oauth":
            error.hint = (
                "the OAuth access token is invalid or expired (they live one hour): refresh it, "
                "set LEVER_ACCESS_TOKEN to the new one and run the same command again (a write "
                "run resumes from its journal), or set LEVER_REFRESH_TOKEN, LEVER_CLIENT_ID and "
                "LEVER_CLIENT_SECRET and the toolkit refreshes it itself"
            )
        if status == 429:
            self.stats.add(rate_limited=1)
            self.limiter.slow_down()  # every thread sharing the key slows down, not just this one
            raise RetryableFailure(error, parse_retry_after(response.headers))
        if status in RETRYABLE_STATUSES:
            self.stats.add(server_errors=1)
            raise RetryableFailure(error, parse_retry_after(response.headers))
        raise error

    def _refresh_again(self, refreshed: list[int], generation: int) -> bool:
        """Whether a 401 on a token of `generation` is worth a refresh and another attempt."""
        assert self.tokens is not None
        if len(refreshed) >= MAX_REFRESHES_PER_REQUEST:
            return False
        return not refreshed or not self.tokens.refused_fresh(generation)

    def _note_server_time(self, date: str | None) -> None:
        """Remember the server's clock (HTTP `Date`), so watermarks use Lever's time, not ours."""
        if not date:
            return
        try:
            when = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        self.server_time_ms = int(when.timestamp() * 1000)

    def _decode(self, response: requests.Response, method: str, path: str) -> dict[str, Any]:
        payload, replaced = decode_answer(response, self._host, method, path)
        if replaced:
            self.stats.add(replaced_text=replaced)
            log.warning(
                "%s: %d text value(s) from Lever held undecodable characters (lone surrogates "
                "or invalid UTF-8); replaced with U+FFFD",
                escaped(path),
                replaced,
            )
        return payload

    # -- pagination -----------------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Page]:
        """Yield the pages of a list endpoint, following `next` while `hasNext`.

        An invalid-offset-token answer restarts the listing from its first page; items already
        yielded (by `id`, or `text` for tags) are dropped from later pages, so none repeats.
        """
        base = {k: v for k, v in (params or {}).items() if k != "offset"}
        base.setdefault("limit", PAGE_LIMIT)
        seen: set[str] = set()
        tokens: set[str] = set()  # offset tokens of this pass: a repeat would loop forever
        restarts = 0
        offset: str | None = None
        while True:
            page_params = dict(base, offset=offset) if offset else base
            try:
                payload = self._request("GET", path, params=page_params)
            except InvalidOffsetTokenError:
                restarts += 1
                self.stats.add(listing_restarts=1)
                if restarts > MAX_LISTING_RESTARTS:
                    raise
                log.info("offset token rejected on %s; restarting the listing", path)
                offset = None
                tokens.clear()
                continue
            data = payload.get("data")
            if not isinstance(data, list):
                raise UnexpectedResponseError(
                    f"the list answer from {self._host} has no 'data' array",
                    method="GET",
                    path=path,
                )
            items = []
            for item in data:
                key = (item.get("id") or item.get("text")) if isinstance(item, dict) else None
                if key is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                items.append(item)
            offset = payload.get("next")
            if payload.get("hasNext") and not offset:
                # Malformed: more follows but no token to reach it. Ending here would silently
                # undercount, so the listing restarts (like a rejected token), then fails.
                restarts += 1
                self.stats.add(listing_restarts=1)
                if restarts > MAX_LISTING_RESTARTS:
                    raise UnexpectedResponseError(
                        f"the listing {describe_listing(path, base)} answered hasNext: true "
                        f"without a 'next' token {restarts} times; its result would be "
                        "incomplete, so it was not used",
                        method="GET",
                        path=path,
                    )
                log.info("hasNext without next on %s; restarting the listing", path)
                offset = None
                tokens.clear()
                yield Page(items, True)
                continue
            has_next = bool(payload.get("hasNext") and offset)
            yield Page(items, has_next)
            if not has_next or offset is None:  # (has_next implies a token; this tells mypy)
                return
            if offset in tokens:
                raise UnexpectedResponseError(
                    f"the list answer from {self._host} repeats a 'next' token",
                    method="GET",
                    path=path,
                )
            tokens.add(offset)

    def _paginate(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of a list endpoint, each once (see `_pages`)."""
        for page in self._pages(path, params):
            yield from page.items


__all__ = ["ClientStats", "LeverClient", "LeverError", "RateLimitedError", "ServerError"]
