"""The snapshot: every considered opportunity as one DataFrame (see docs/architecture.md).

`frame` is pure (parsing, fingerprint, watermark); `store` reads and writes Parquet; `fetch`
talks to Lever through the client. This package root imports none of them, so the pure parts
load without the HTTP client.
"""
