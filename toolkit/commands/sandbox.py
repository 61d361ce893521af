"""`lever-tags sandbox`: placeholder registration replaced by the sandbox work (issue 3)."""
