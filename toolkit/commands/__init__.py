"""The `lever-tags` subcommands, one module per step; each registers itself with `toolkit.cli`."""

from toolkit.commands import (  # noqa: F401  (registration)
    audit,
    diff,
    doctor,
    ledger,
    policy,
    remediate,
    report,
    sandbox,
    sync,
    users,
)
