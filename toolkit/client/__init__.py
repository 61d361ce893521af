"""The HTTP side: `LeverClient` (one session, one `_request`, retries, pagination), its rate
limiter and its instrumentation. Nothing here loads pandas (see docs/architecture.md)."""

from toolkit.client.lever import LeverClient
from toolkit.client.stats import CallRecord, ClientStats

__all__ = ["CallRecord", "ClientStats", "LeverClient"]
