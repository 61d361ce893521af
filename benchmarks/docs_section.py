"""Write one benchmark's section of docs/benchmarks.md, leaving the other sections alone."""

from __future__ import annotations

import sys
from pathlib import Path


def write_section(docs: Path, heading: str, section: str) -> None:
    """Replace the section that starts with the line `heading` (up to the next "## " line), or
    append it when the page has none yet.

    Example:
        >>> import tempfile
        >>> page = Path(tempfile.mkdtemp()) / "b.md"
        >>> _ = page.write_text("# B\\n\\n## A\\nold\\n\\n## C\\nkeep\\n")
        >>> write_section(page, "## A", "## A\\nnew\\n")
        >>> page.read_text()
        '# B\\n\\n## A\\nnew\\n\\n## C\\nkeep\\n'
    """
    docs.parent.mkdir(parents=True, exist_ok=True)
    text = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    docs.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command that reproduces this run, as written in the docs (without ``--write-docs``).

    Example:
        >>> command_line("bench_writes.py", ["--writes", "10", "--write-docs"])
        '.venv/bin/python benchmarks/bench_writes.py --writes 10'
    """
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--write-docs"]
    return " ".join([".venv/bin/python", f"benchmarks/{script}", *args])
