"""Remediation: the plan model and files, drift, the journaled runner, rollback and verify
(see docs/architecture.md). The plan modules are pure; apply, rollback and verify use a client."""
