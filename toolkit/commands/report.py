"""`lever-tags` report commands."""
