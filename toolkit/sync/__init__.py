"""`lever-tags sync`: keep contact-level tags consistent as new opportunities arrive.

Modules: `webhook` (Lever's signature, replay window), `store` (the SQLite queue and journal),
`contact` (the contact check; `tag_contact` for integrations), `cap` (hourly change cap),
`poller` (watermark polling), `metrics` (Prometheus), `web` (tornado routes), `service` (the
threads and the clean stop), `activity` (the sync-activity report's tables).
"""

from toolkit.sync.contact import TagResult, WriteOutcome, tag_contact

__all__ = ["TagResult", "WriteOutcome", "tag_contact"]
