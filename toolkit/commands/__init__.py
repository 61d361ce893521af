"""The `lever-tags` subcommands, one module per step; each registers itself with `toolkit.cli`."""

from toolkit.commands import audit, doctor, remediate, report, sandbox  # noqa: F401  (registration)
