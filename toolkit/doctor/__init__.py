"""`lever-tags doctor`: read-only checks, against the configured account, of every Lever behaviour
the toolkit relies on (see docs/lever-fidelity.md). `report` runs them and words the answer;
`checks` holds one function per behaviour."""
