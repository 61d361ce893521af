"""The ledger: one append-only, hash-chained record of every tag write (docs/operations.md)."""
