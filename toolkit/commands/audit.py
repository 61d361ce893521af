"""`lever-tags` audit commands."""
