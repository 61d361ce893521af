"""Work lists a person can act on (issue 23): `plan --with-names` and `audit --with-names` write
a sheet (.xlsx and .csv) with name, posting, stage, owner and a link to Lever; deleting rows in
it and giving it to `apply` writes only the rows left, after the plan's own checks."""

from __future__ import annotations

import csv

import openpyxl
import pandas as pd
import pytest

from toolkit.cli import main
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.worklist import opportunity_url, worklist_frame
from toolkit.remediate.worklistfile import read_worklist, write_worklist

TAG = "Python"


def _expected(sb) -> dict[str, dict[str, str]]:
    """What the sandbox knows of each opportunity: name, posting title, owner name."""
    state = sb.engine.state
    titles = {p["id"]: p["text"] for p in state.postings}
    users = {u["id"]: u["name"] for u in sb.users}
    return {
        o["id"]: {
            "name": o["name"],
            "posting": titles[state.applications[o["applications"][0]]["posting"]],
            "owner": users[o["owner"]],
        }
        for o in sb.opportunities()
    }


def _sheet_rows(path) -> list[dict[str, openpyxl.cell.Cell]]:
    book = openpyxl.load_workbook(path)
    sheet = book["Work list"]
    header = [c.value for c in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]


def _tagged(sb) -> set[str]:
    return {o["id"] for o in sb.opportunities() if TAG in (o.get("tags") or [])}


def test_a_plan_sheet_shows_name_posting_owner_and_a_link_to_lever(env, capsys):
    assert main(["plan", "--tag", TAG, "--with-names", "--out", "plan.csv"]) == 0
    assert "plan.worklist.xlsx" in capsys.readouterr().out
    plan = load_plan("plan.csv")
    expected = _expected(env)
    base = env.base_url.removesuffix("/v1")
    rows = _sheet_rows("plan.worklist.xlsx")
    assert {r["opportunity_id"].value for r in rows} == set(plan.opportunity_ids())
    for row in rows:
        opp = row["opportunity_id"].value
        assert row["Person"].value == expected[opp]["name"]
        assert row["Posting"].value == expected[opp]["posting"]
        assert row["Owner"].value == expected[opp]["owner"]
        assert row["Open in Lever"].hyperlink.target == f"{base}/candidates/{opp}"
        assert row["What will change"].value == f"add {TAG}"
        assert row["Where the tag is now"].value.startswith(f"{TAG}: on ")
        assert row["Stage"].value
    with open("plan.worklist.csv", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


@pytest.mark.parametrize(
    ("host", "page"),
    [
        ("api.lever.co", "https://hire.lever.co/candidates/o-1"),
        ("api.eu.lever.co", "https://hire.eu.lever.co/candidates/o-1"),
        ("api.sandbox.lever.co", "https://hire.sandbox.lever.co/candidates/o-1"),
        ("127.0.0.1:8765", "http://127.0.0.1:8765/candidates/o-1"),
        ("lever.example.com", "https://lever.example.com/candidates/o-1"),
    ],
)
def test_the_link_opens_the_opportunity_on_the_accounts_host(host, page):
    assert opportunity_url(host, "o-1") == page


def _delete_xlsx_rows(path, keep: int) -> set[str]:
    book = openpyxl.load_workbook(path)
    sheet = book["Work list"]
    column = [c.value for c in sheet[1]].index("opportunity_id") + 1
    sheet.delete_rows(2 + keep, sheet.max_row)  # keep the first `keep` rows
    kept = {sheet.cell(row=r, column=column).value for r in range(2, sheet.max_row + 1)}
    book.save(path)
    return kept


def _delete_csv_rows(path, keep: int) -> set[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    body = body[1 : 1 + keep]  # the first and the tail deleted
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *body])
    return {r[header.index("opportunity_id")] for r in body}


@pytest.mark.parametrize(
    ("kind", "delete"), [("xlsx", _delete_xlsx_rows), ("csv", _delete_csv_rows)]
)
def test_a_sheet_with_rows_deleted_applies_exactly_the_rows_left(env, capsys, kind, delete):
    assert main(["plan", "--tag", TAG, "--with-names", "--out", "plan.csv"]) == 0
    planned = set(load_plan("plan.csv").opportunity_ids())
    assert len(planned) >= 6
    sheet = f"plan.worklist.{kind}"
    kept = delete(sheet, 3)
    assert len(kept) == 3
    before = _tagged(env)
    capsys.readouterr()
    assert main(["apply", sheet]) == 0  # dry run
    out = capsys.readouterr().out
    assert f"3 of {len(planned)} opportunities left in the sheet" in out
    assert "3 changes in 3 calls would be written" in out
    assert _tagged(env) == before
    assert main(["apply", sheet, "--yes"]) == 0
    assert "apply: 3 applied, 0 failed" in capsys.readouterr().out
    assert _tagged(env) == before | kept  # exactly the rows left, nothing else
    assert main(["verify", sheet]) == 0
    assert (tmp := "plan.worklist.journal.sqlite") and __import__("os").path.exists(tmp)


def test_a_sheet_is_applied_only_with_its_plan_and_account(env, fresh_sandbox, monkeypatch, capsys):
    assert main(["plan", "--tag", TAG, "--with-names", "--out", "plan.csv"]) == 0
    assert main(["plan", "--tag", "Go", "--with-names", "--out", "other.csv"]) == 0
    capsys.readouterr()
    # another plan's sheet
    assert main(["apply", "plan.worklist.xlsx", "--plan", "other.csv"]) == 2
    assert "written from another plan" in capsys.readouterr().err
    # a row added by hand for an opportunity the plan does not touch
    with open("plan.worklist.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    extra = list(rows[1])
    extra[rows[0].index("opportunity_id")] = "not-in-the-plan"
    with open("added.worklist.csv", "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([*rows, extra])
    assert main(["apply", "added.worklist.csv", "--plan", "plan.csv"]) == 2
    assert "a sheet can only lose rows" in capsys.readouterr().err
    # another account
    other = fresh_sandbox(seed=8)
    before = _tagged(env)
    for key, value in other.env().items():
        monkeypatch.setenv(key, value)
    assert main(["apply", "plan.worklist.xlsx", "--yes"]) == 2
    assert "belongs to the Lever account at" in capsys.readouterr().err
    assert other.stats()["writes"] == 0 and _tagged(env) == before


def test_an_audit_with_names_writes_the_people_to_check(env, capsys):
    assert main(["audit", "--with-names", "--out", "audit"]) == 0
    rows = _sheet_rows("audit/worklist.xlsx")
    assert rows and all(r["Person"].value and r["Open in Lever"].hyperlink for r in rows)
    assert all(r["plan"].value in (None, "") for r in rows)
    assert main(["apply", "audit/worklist.xlsx", "--plan", "audit/x.csv"]) == 2
    assert "from an audit has no plan" in capsys.readouterr().err


def test_hostile_text_is_never_a_formula(tmp_path):
    frame = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2"],
            "contact_id": ["c", "c"],
            "tags": [["=1+1"], []],
            "name": ['=HYPERLINK("http://evil","x")', '=HYPERLINK("http://evil","x")'],
            "posting": ["+cmd|' /C calc'!A0", "@SUM(1)"],
            "stage": ["-2+3", "\x1b[31mred"],
        }
    )
    rows = pd.DataFrame(
        {"opportunity_id": ["o2"], "contact_id": ["c"], "op": ["add"], "tag": ["=1+1"]}
    )
    sheet = worklist_frame(rows, frame, host="api.lever.co", plan_sha256="abc")
    paths = write_worklist(sheet, tmp_path / "plan.csv", {"about": "=1"})
    cells = _sheet_rows(paths["xlsx"])[0]
    assert cells["Person"].value == '=HYPERLINK("http://evil","x")'
    assert cells["Person"].data_type == "s" and cells["What will change"].data_type == "s"
    assert cells["Stage"].value == "\\x1b[31mred"
    text = paths["csv"].read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text and "'@SUM(1)" in text and "\x1b" not in text
    assert read_worklist(paths["csv"]).opportunity_ids == {"o2"}
    assert oct(paths["xlsx"].stat().st_mode & 0o777) == "0o600"
