"""The audit: pure pandas functions from a snapshot frame to split pairs, missing assignments,
per-tag statistics, variants and evidence (see docs/architecture.md). Never loads the client."""
