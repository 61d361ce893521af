"""The sync journal's tables and states (`toolkit.sync.store` reads and writes them).

sync_inbox   one row per accepted webhook or polled contact: queued -> processing -> done
             (or failed); a webhook ``id`` is unique, so a redelivery is stored once
sync_writes  one row per write call: intent committed before the request, outcome after;
             ``dry_run`` rows for what a dry run would have written
sync_seen    the contact-level tags last seen on each opportunity (removal detection)
sync_held    (contact, tag) removals reported and held: not re-added until a person settles it
sync_state   the poll watermark and last poll time
sync_tokens  the signed ``token`` of every stored webhook (Lever's advice against replays:
             refuse a token seen before), kept 30 days (`webhook.TOKEN_MEMORY_MS`)
"""

from __future__ import annotations

from toolkit.enums import InboxState, WriteState

# sync_inbox states and sync_writes states: `toolkit.enums` (short names for the sync side)
QUEUED, PROCESSING = InboxState.QUEUED, InboxState.PROCESSING
DONE, FAILED = InboxState.DONE, InboxState.FAILED
W_INTENT, W_DONE, W_DRY_RUN = WriteState.INTENT, WriteState.DONE, WriteState.DRY_RUN
W_FAILED, W_NOT_FOUND = WriteState.FAILED, WriteState.NOT_FOUND
W_INTERRUPTED = WriteState.INTERRUPTED
# Writes that count against the hourly change cap: every one that was (or may have been) sent,
# and what a dry run would have sent.
CAPPED_STATES = (W_INTENT, W_DONE, W_DRY_RUN, W_INTERRUPTED, W_FAILED)
SYNC_TABLES = ("sync_inbox", "sync_writes", "sync_seen", "sync_held", "sync_state", "sync_tokens")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    webhook_id TEXT UNIQUE,
    event TEXT,
    contact_key TEXT NOT NULL,
    contact_id TEXT,
    opportunity_id TEXT,
    triggered_at INTEGER,
    received_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    strikes INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL DEFAULT 0,
    finished_at INTEGER,
    message TEXT
);
CREATE INDEX IF NOT EXISTS sync_inbox_state ON sync_inbox (state, contact_key);
CREATE TABLE IF NOT EXISTS sync_writes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id TEXT NOT NULL,
    opportunity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    tags TEXT NOT NULL,
    before_tags TEXT,
    after_tags TEXT,
    state TEXT NOT NULL,
    status INTEGER,
    code TEXT,
    message TEXT,
    trigger TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    session INTEGER
);
CREATE INDEX IF NOT EXISTS sync_writes_started ON sync_writes (started_at);
CREATE TABLE IF NOT EXISTS sync_seen (
    opportunity_id TEXT PRIMARY KEY,
    contact_id TEXT,
    tags TEXT NOT NULL,
    flags TEXT NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_held (
    contact_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    opportunity_id TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE TABLE IF NOT EXISTS sync_state (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS sync_tokens (
    token TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
);
"""
