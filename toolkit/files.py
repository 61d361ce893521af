"""Files the toolkit writes: each complete or not at all (temp file, then rename), the one rule
for sidecar names (`plan.csv` -> `plan.meta.json`), and the one way to read a user's YAML.

Every file is created 0600 in a 0700 folder, whatever the umask: reports hold tags, contact ids
and, when asked for, names and emails. Every CSV is safe to open in a spreadsheet: text cells
that a spreadsheet would run as a formula get the reversible OWASP `'` prefix
(`toolkit.sanitize.csv_cell`; `load_plan` strips it, so `plan.csv` reads back exactly).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from toolkit.csvout import write_csv
from toolkit.errors import ConfigurationError
from toolkit.sanitize import csv_safe_frame, private_dir, safe_yaml_load


def _atomic_write(path: Path, write) -> Path:
    if not path.parent.is_dir():
        private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o600)  # mkstemp's private mode, kept on purpose: reports hold personal data
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8), atomically, 0600 in a folder made 0700 when missing."""
    return _atomic_write(Path(path), lambda h: h.write(text))


def write_json_atomic(path: str | os.PathLike, obj: Any, *, sort_keys: bool = True) -> Path:
    """Write `obj` as indented JSON, atomically (keys sorted unless `sort_keys` is False)."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n"
    return _atomic_write(Path(path), lambda h: h.write(text))


def write_csv_atomic(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write `frame` as CSV without its index, atomically, formula-safe (`csv_safe_frame`)."""
    safe = csv_safe_frame(frame)
    return _atomic_write(Path(path), lambda h: write_csv(h, safe))


def sidecar(path: str | os.PathLike, suffix: str, *, keep_suffix: bool = False) -> Path:
    """The one rule for files that belong to another: `plan.csv` -> `plan<suffix>` beside it.

    Plans (`plan.meta.json`, `plan.skipped.csv`, `plan.journal.sqlite`) and journals
    (`j.rollback.sqlite`) drop the owner's suffix; a snapshot keeps it (`keep_suffix`:
    `snap.parquet.meta.json`), so a snapshot and a plan of one stem never share a meta file.

    Example:
        >>> sidecar("runs/plan.csv", ".journal.sqlite").as_posix()
        'runs/plan.journal.sqlite'
        >>> sidecar("runs/plan", ".meta.json").as_posix()
        'runs/plan.meta.json'
    """
    path = Path(path)
    if keep_suffix:
        return path.with_name(path.name + suffix)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + suffix)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file the toolkit wrote (a sidecar), or a ConfigurationError in one line.

    Bad JSON, text that is not UTF-8 and JSON nested too deeply for the parser (a hostile
    `[[[[...` of a million brackets) are refused with the file's name, never a traceback.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "x.json")
        ...     _ = open(path, "w").write("[" * 100_000)
        ...     read_json(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        toolkit.errors.ConfigurationError: .../x.json is JSON nested too deeply ...
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid JSON (line {exc.lineno})") from None
    except RecursionError:
        raise ConfigurationError(
            f"{path} is JSON nested too deeply to be the toolkit's; restore the file or delete it"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path} is not UTF-8 text") from None


def read_yaml(path: str | os.PathLike, what: str = "file") -> Any:
    """A user's YAML file, or a ConfigurationError in one line naming the file and the fix.

    The one reading rule of policy files, batch files and parameter files (``what`` names the
    kind in the messages). An empty file is None.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "x.yaml")
        ...     _ = open(path, "w").write("runs: [\\n")
        ...     read_yaml(path, "batch file")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        toolkit.errors.ConfigurationError: .../x.yaml: YAML syntax error at line 2, column 1: ...
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"no such {what}: {source}; check the path") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{source} is a folder, not a {what}") from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{source}: not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"{source}: cannot read the {what} ({exc.strerror})") from None
    try:
        return safe_yaml_load(text)  # no aliases: a small file cannot expand to gigabytes
    except ValueError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigurationError(
            f"{source}: YAML syntax error{where}: {problem}; fix the YAML there"
        ) from None
