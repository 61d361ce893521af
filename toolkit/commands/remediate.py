"""`lever-tags` remediate commands."""
