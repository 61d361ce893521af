"""The `lever-tags` subcommands, one module per step; each registers itself with `toolkit.cli`."""

from toolkit.commands import audit, remediate, report, sandbox, sync  # noqa: F401  (registration)
