"""Work-list sheets: `.xlsx` (openpyxl) and `.csv` (for Google Sheets), written private and
atomically, read back after a person deleted the rows they do not want written.

`plan.csv` -> `plan.worklist.xlsx` and `plan.worklist.csv` (`toolkit.files.sidecar`). Text from
Lever is untrusted: in the `.xlsx` every cell is a string (never a formula, whatever it starts
with) and control characters are shown escaped; the `.csv` gets the reversible OWASP `'`
(`toolkit.sanitize.csv_cell`). A sheet given to `apply` is turned back into its plan's rows of
the opportunities still listed (`plan_from_worklist`), with the plan's own checks.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from toolkit.files import sidecar, write_csv_atomic
from toolkit.remediate.plan import Plan, PlanError
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.worklist import (
    ACCOUNT,
    LINK,
    OPPORTUNITY_ID,
    PLAN,
    WORKLIST_COLUMNS,
    keep_opportunities,
)
from toolkit.sanitize import csv_uncell, printable, private_dir, short_repr

SHEET_TITLE = "Work list"
ABOUT_TITLE = "About"
WIDTHS = {"Person": 24, "Email": 30, "Posting": 26, "Stage": 18, "Owner": 20, LINK: 40}
SUFFIX = ".worklist"
XLSX_MAX_ROWS = 1_048_575  # a worksheet's rows (Excel's limit) after the header


def worklist_paths(base: str | os.PathLike) -> dict[str, Path]:
    """`plan.csv` -> {"xlsx": plan.worklist.xlsx, "csv": plan.worklist.csv}; a folder -> the
    folder's `worklist.xlsx` / `worklist.csv`.

    Example:
        >>> {k: p.name for k, p in worklist_paths("runs/plan.csv").items()}
        {'xlsx': 'plan.worklist.xlsx', 'csv': 'plan.worklist.csv'}
    """
    base = Path(base)
    if base.suffix == "" or base.is_dir():
        return {"xlsx": base / "worklist.xlsx", "csv": base / "worklist.csv"}
    return {"xlsx": sidecar(base, SUFFIX + ".xlsx"), "csv": sidecar(base, SUFFIX + ".csv")}


def _cell(value: Any) -> str:
    """A cell's text: control characters escaped (XML refuses most of them; terminals too)."""
    return printable("" if value is None or value is pd.NA else value)


def write_worklist(
    frame: pd.DataFrame, base: str | os.PathLike, about: dict[str, str]
) -> dict[str, Path]:
    """Write the work list as `.xlsx` and `.csv` beside `base` (see `worklist_paths`), 0600.

    Args:
        frame: `toolkit.remediate.worklist.worklist_frame`.
        base: the plan CSV (or the audit folder) the sheets belong to.
        about: lines for the workbook's "About" sheet (what it is, how to use it).
    """
    paths = worklist_paths(base)
    text = frame[WORKLIST_COLUMNS].map(_cell)  # no raw control character in either file
    write_csv_atomic(paths["csv"], text)
    if len(text) > XLSX_MAX_ROWS:  # more than a worksheet holds: the CSV has them all
        about = {**about, "Rows": f"the first {XLSX_MAX_ROWS:,} of {len(text):,}; the CSV has all"}
    _write_xlsx(text.head(XLSX_MAX_ROWS), paths["xlsx"], about)
    return paths


def _write_xlsx(frame: pd.DataFrame, path: Path, about: dict[str, str]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.worksheets[0]  # a new workbook's one (active) sheet
    sheet.title = SHEET_TITLE
    sheet.append(WORKLIST_COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    link_column = WORKLIST_COLUMNS.index(LINK) + 1
    for values in frame.itertuples(index=False, name=None):
        sheet.append([_cell(v) for v in values])
        row = sheet.max_row
        for cell in sheet[row]:
            cell.data_type = "s"  # text, never a formula, whatever it starts with
        link = sheet.cell(row=row, column=link_column)
        if str(link.value).startswith(("https://", "http://")):
            link.hyperlink = str(link.value)
            link.style = "Hyperlink"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for index, name in enumerate(WORKLIST_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = WIDTHS.get(name, 16)
    notes = book.create_sheet(ABOUT_TITLE)
    for key, value in about.items():
        notes.append([_cell(key), _cell(value)])
        for cell in notes[notes.max_row]:
            cell.data_type = "s"
    notes.column_dimensions["A"].width = 22
    notes.column_dimensions["B"].width = 100
    return _save_private(book, path)


def _save_private(book: Any, path: Path) -> Path:
    if not path.parent.is_dir():
        private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o600)  # personal data: private, whatever the umask
    try:
        book.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass
class Worklist:
    """What an edited sheet still says: the opportunities left, its plan and its account."""

    path: Path
    opportunity_ids: set[str] = field(default_factory=set)
    plan_sha256: str = ""
    account: str = ""


def is_worklist(path: str | os.PathLike) -> bool:
    """Whether `path` is a work-list sheet rather than a plan CSV (by its header).

    Example:
        >>> is_worklist("plan.csv")  # no such file: a plan path, as given
        False
    """
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return True
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = [csv_uncell(h).strip() for h in next(csv.reader(handle), [])]
    return OPPORTUNITY_ID in header and PLAN in header and "op" not in header


def _records(path: Path) -> list[list[str]]:
    if path.suffix.lower() == ".xlsx":
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # zipfile, XML and openpyxl errors: not a workbook we can read
            raise PlanError(f"{path}: not an .xlsx work list ({type(exc).__name__})") from None
        try:
            sheet = book[SHEET_TITLE] if SHEET_TITLE in book.sheetnames else book.worksheets[0]
            rows = [
                ["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)
            ]
        finally:
            book.close()
        return rows
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return [[csv_uncell(c) for c in record] for record in csv.reader(handle)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PlanError(f"{path}: not a UTF-8 CSV work list ({type(exc).__name__})") from None


def read_worklist(path: str | os.PathLike) -> Worklist:
    """The opportunities an edited sheet still lists, and the plan and account it came from.

    Empty rows (cleared rather than deleted) are left out. One line (`PlanError`) for a file
    that is not a work list, mixes plans or accounts, or comes from an audit (no plan).
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"work list not found: {path}")
    records = _records(path)
    header = [h.strip() for h in (records[0] if records else [])]
    missing = [c for c in (OPPORTUNITY_ID, PLAN, ACCOUNT) if c not in header]
    if missing:
        raise PlanError(
            f"{path}: missing column(s) {', '.join(missing)}; give the sheet `lever-tags plan "
            "--with-names` wrote (delete rows, not columns)"
        )
    at = {name: header.index(name) for name in (OPPORTUNITY_ID, PLAN, ACCOUNT)}
    ids, plans, accounts = set(), set(), set()
    for record in records[1:]:
        cells = {k: (record[i].strip() if i < len(record) else "") for k, i in at.items()}
        if not any(c.strip() for c in record):
            continue
        if not cells[OPPORTUNITY_ID]:
            raise PlanError(f"{path}: a row without opportunity_id; delete whole rows only")
        ids.add(cells[OPPORTUNITY_ID])
        plans.add(cells[PLAN])
        accounts.add(cells[ACCOUNT])
    if len(plans) > 1 or len(accounts) > 1:
        raise PlanError(f"{path}: rows from several plans or accounts; one sheet, one plan")
    sha = next(iter(plans), "")
    if ids and not sha:
        raise PlanError(
            f"{path}: a work list from an audit has no plan to apply; make one with "
            "`lever-tags plan --with-names` and edit its sheet"
        )
    return Worklist(path, ids, sha, next(iter(accounts), ""))


def default_plan_path(sheet: str | os.PathLike) -> Path:
    """`runs/plan.worklist.xlsx` -> `runs/plan.csv` (the plan the sheet was written beside).

    Example:
        >>> default_plan_path("runs/plan.worklist.xlsx").as_posix()
        'runs/plan.csv'
    """
    sheet = Path(sheet)
    stem = sheet.name[: -len(sheet.suffix)] if sheet.suffix else sheet.name
    return sheet.with_name(stem.removesuffix(SUFFIX) + ".csv")


def plan_from_worklist(
    sheet: str | os.PathLike, plan_path: str | os.PathLike | None = None
) -> Plan:
    """The plan rows of the opportunities an edited sheet still lists: a plan of its own.

    The sheet must come from this very plan (its digest), and may only lose rows; the plan's
    meta, before-state and skipped rows are kept (drift check, rollback); its `path` is the
    sheet (journal `<sheet>.journal.sqlite`); its `info.worklist` names the sheet and account.

    Raises:
        PlanError: the plan is missing or changed since the sheet was written, or the sheet
            lists an opportunity the plan does not touch.
    """
    worklist = read_worklist(sheet)
    plan_path = Path(plan_path) if plan_path else default_plan_path(sheet)
    if not plan_path.is_file():
        raise PlanError(f"{sheet}: its plan {plan_path} is not there; give it with --plan FILE")
    plan = load_plan(plan_path)
    if plan.sha256 != worklist.plan_sha256:
        raise PlanError(
            f"{sheet} was written from another plan than {plan_path} (plan "
            f"{short_repr(worklist.plan_sha256[:12])}, this one {plan.sha256[:12]}); "
            "nothing was written"
        )
    unknown = sorted(worklist.opportunity_ids - set(plan.opportunity_ids()))
    if unknown:
        raise PlanError(
            f"{sheet}: {len(unknown)} row(s) for opportunities the plan does not touch (first: "
            f"{short_repr(unknown[0])}); a sheet can only lose rows; nothing was written"
        )
    sheet_meta = {
        "path": str(sheet),
        "plan_path": str(plan_path),
        "plan_sha256": plan.sha256,
        "account": worklist.account,
        "opportunities": len(worklist.opportunity_ids),
        "opportunities_in_plan": len(plan.opportunity_ids()),
    }
    meta = replace(plan.info, worklist=sheet_meta).to_dict()
    return replace(
        plan, rows=keep_opportunities(plan, worklist.opportunity_ids), meta=meta, path=Path(sheet)
    )
