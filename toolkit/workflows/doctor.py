"""`doctor` as a use case: the checks of the configured account, and their JSON record.

The rules about what may be asked (a write test only with an explicit yes; the JSON record to a
file whose folder exists) live here; `lever-tags doctor` parses arguments and prints the table.

Example:
    >>> check_lever(write_test="opp-1")
    Traceback (most recent call last):
    ...
    toolkit.errors.ConfigurationError: write_test adds and removes a throwaway tag on that \
opportunity: add confirm_write to allow it; nothing was written
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from toolkit.client import LeverClient
from toolkit.doctor.report import DoctorReport, run_doctor
from toolkit.errors import ConfigurationError
from toolkit.files import write_text_atomic


def check_doctor_request(
    write_test: str | None, confirm_write: bool, json_path: str | os.PathLike | None
) -> None:
    """Refuse a doctor run that would write without consent or could not keep its record."""
    if write_test is not None and not write_test.strip():
        raise ConfigurationError.naming("{write_test} needs an opportunity id")
    if write_test and not confirm_write:
        raise ConfigurationError.naming(
            "{write_test} adds and removes a throwaway tag on that opportunity: add "
            "{confirm_write} to allow it; nothing was written"
        )
    where = _literal(str(json_path or ""))
    if json_path and Path(json_path).is_dir():
        raise ConfigurationError.naming(
            f"{{json_path}} must be a file name, and {where} is a folder"
        )
    if json_path and not Path(json_path).parent.exists():
        folder = _literal(str(Path(json_path).parent))
        raise ConfigurationError.naming(f"the folder of {{json_path}} does not exist: {folder}")


def _literal(text: str) -> str:
    """`text` inside a `naming` template, shown as it is (its braces are not fields)."""
    return text.replace("{", "{{").replace("}", "}}")


def check_lever(
    *,
    write_test: str | None = None,
    confirm_write: bool = False,
    json_path: str | os.PathLike | None = None,
    journal_dir: str | os.PathLike | None = None,
    perform_as: str | None = None,
    client: LeverClient | None = None,
) -> DoctorReport:
    """Run every check against the configured account; write `json_path` (0600) when given.

    The client retries little (two attempts, at most 10 s): a doctor run reports, it does not
    wait Lever out.
    """
    check_doctor_request(write_test, confirm_write, json_path)
    client = client or LeverClient.from_env(max_attempts=2, max_retry_seconds=10)
    report = run_doctor(
        client, write_test=write_test, journal_dir=journal_dir, perform_as=perform_as
    )
    if json_path:
        write_text_atomic(json_path, json.dumps(report.as_dict(), indent=2) + "\n")
    return report


__all__ = ["check_doctor_request", "check_lever"]
