"""Run the reliability tests and write their results table into docs/reliability.md.

    .venv/bin/python benchmarks/fault_matrix.py

The tests are the proof (they run in `make test` too); this script only runs them once more,
collects what each fault scenario measured (tests/test_faults.py writes one JSON line per
scenario when LEVER_FAULT_REPORT is set) and every test's outcome and time (JUnit XML), and
renders the tables.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
TESTS = [
    "tests/test_faults.py",
    "tests/test_remediate_kill.py",
    "tests/test_bad_input.py",
    "tests/test_demo.py",
    "tests/test_hostile.py",
    "tests/test_sync_queue.py",
    "tests/test_hostile_csv.py",
    "tests/test_hostile_text.py",
    "tests/test_notebook_runners.py",
]
# The modules of the hostile-data table (tests/test_hostile.py and issue 20's attacks).
HOSTILE_MODULES = (
    "tests.test_hostile",  # also tests.test_hostile_csv and tests.test_hostile_text
    "tests.test_notebook_runners",
)

# tests/test_hostile.py: what each test tries as an attacker would, and what must hold.
HOSTILE = {
    "test_hostile_seed_plants_split_strings_everywhere": (
        "`lever-tags sandbox --hostile`: 18 hostile tags, 7 names, 3 emails on some but not all "
        "opportunities of several multi-opportunity contacts (and a tag, a name and an email "
        "holding lone surrogates on one more)",
        "every string is a split pair, so it reaches every report, CSV and plan",
    ),
    "test_every_run_succeeds_on_hostile_data": (
        "`lever-tags report explore` with names and redacted, `lever-tags batch` (audit with "
        "and without names, a real remediation of three hostile tags)",
        "every run succeeds; no run is taken for a leak because of a tag",
    ),
    "test_no_html_report_or_index_holds_an_executable_payload": (
        '`<script>alert(1)</script>`, `<img src=x onerror=...>`, `"><svg onload=...>` as tags '
        "and names in the three notebooks' HTML reports and the batch index",
        "shown as text; no script element, no on* handler, no external URL; "
        "CSP `script-src 'none'`; no require.js, MathJax or other CDN load",
    ),
    "test_no_executed_notebook_output_holds_an_executable_payload": (
        "the same payloads in the executed notebooks' HTML outputs (Styler grid, tables)",
        'escaped (`Styler` `escape="html"` for values and both index axes)',
    ),
    "test_every_csv_for_people_is_formula_safe_and_reads_back_exactly": (
        "`=HYPERLINK(...)`, `+1+cmd|' /C calc'!A0`, `-2+3...`, `@SUM(...)`, tab-led tags and "
        "names in every CSV",
        "no text cell starts with = + - @ tab CR LF (OWASP `'` prefix); the exact tag is "
        "recovered with `csv_uncell`",
    ),
    "test_every_produced_file_is_private_under_umask_022": (
        "umask 022: reports with names, executed notebooks, journals, CSVs",
        "every file 0600, every folder 0700",
    ),
    "test_a_remediation_of_the_bearer_tag_keeps_its_journal_and_plan_intact": (
        "a real remediation of `Authorization: Bearer innocentlookingtag` in a scheduled batch",
        "applied; journal `PRAGMA integrity_check` = ok; plan.csv and journal not rewritten",
    ),
    "test_no_payload_fires_in_headless_chromium": (
        "headless Chromium opens every report (and each again without its CSP) and sets the "
        "explorer's widget HTML as innerHTML, as `widgets.HTML` does",
        "no dialog fires, no request leaves file://; a control payload does fire",
    ),
    "test_hostile_tags_plan_apply_verify_rollback_round_trip": (
        "plan, apply, verify, rollback of 11 hostile tags (script, formulas, mathtext, the "
        "Bearer lookalike)",
        "plan.csv formula-safe and read back exactly; verify 0; journal ok; rollback restores "
        "every opportunity's tags exactly",
    ),
    "test_bad_plan_tags_are_refused_before_any_write": (
        "plan tags with NUL, newline, ANSI escape, only spaces, 100,000 and 200,000 characters",
        "exit 2, one line, no write, no journal; `plan --tag` refuses them before fetching",
    ),
    "test_plan_csv_escaping_round_trips_every_tricky_start": (
        "cells starting with `'`, `''`, `'=` and every formula character",
        "escape then unescape gives the same string",
    ),
    "test_a_server_echoing_the_authorization_header_never_leaks_the_key": (
        "a server that answers every write with the request's Authorization header (Basic "
        "and Bearer) and the decoded key",
        "the key in no exception, stdout, stderr or journal; the tag itself kept",
    ),
    "test_scrub_knows_every_form_and_leaves_lookalikes_alone": (
        "the key raw, as Basic base64 of `KEY:`, as `Bearer KEY`, beside a lookalike tag",
        "every form scrubbed, the lookalike kept",
    ),
    "test_the_after_run_scan_never_edits_a_binary_file": (
        "the key inside a SQLite journal and a text log",
        "the journal left byte for byte (integrity ok), the log redacted, both reported",
    ),
    "test_a_yaml_alias_bomb_is_refused_at_once": (
        "a 9^9 YAML alias bomb as `-p` value, as `-f` file and in a policy file",
        "exit 2 at once, one line naming aliases",
    ),
    "test_parameter_problems_are_short_whatever_the_value": (
        "a wrong-typed parameter of 100 MB",
        "a problem line under 300 characters (`reprlib`)",
    ),
    "test_run_names_must_match_whole": (
        "run names ending in a newline, with slashes, empty, over 100 characters",
        "refused (`fullmatch`)",
    ),
    "test_the_lock_file_never_follows_a_symlink_nor_truncates_a_link": (
        "`<journal>.lock` as a symlink and as a hard link to another file",
        "refused with one line; the other file unchanged; lock and journal 0600",
    ),
    "test_sandbox_cli_offers_the_hostile_seed": ("`lever-tags sandbox --hostile`", "accepted"),
    # issue 20: tests/test_hostile_csv.py
    "test_every_csv_is_formula_safe_in_every_reader": (
        "`Senior\\r=2+5` (bare CR), `Go;=1+1`, NEL and U+2028 in tags, names and emails, "
        "through every CSV (audit, plan, skipped, verify's residual, a journal export, runs.csv), "
        "read back by the csv module, by a `;` dialect and by a reader splitting at every line "
        "break and separator",
        "no cell in any reader starts with = + - @ tab CR: the cell is quoted and a `'` follows "
        "each line break or separator that a formula start follows",
    ),
    "test_each_cell_holding_a_separator_is_quoted": (
        "the same tags in split_pairs.csv",
        "quoted; every hostile tag read back exactly with `csv_uncell`",
    ),
    "test_names_and_emails_read_back_exactly": (
        "hostile names and emails in an audit with names",
        "read back exactly",
    ),
    "test_the_plan_reads_back_and_applies_exactly": (
        "a plan of `Go;=1+1`, formula tags and `'=1+1`",
        "plan.csv read back exactly; applied and verified",
    ),
    "test_csv_cell_escapes_after_every_separator_and_round_trips": (
        "20,000 random strings of separators, formula starts and `'`",
        "no piece between separators starts a formula; escape then unescape is the identity",
    ),
    "test_both_writers_quote_a_cell_with_any_separator_alike": (
        "a cell with each separator-like character, on the fast (categorical) and pandas paths",
        "quoted alike, read back exactly",
    ),
    "test_no_hostile_plan_tag_is_refused_by_the_tag_rule": (
        "`;` in a tag to write",
        "allowed (a separator is not a control character)",
    ),
    # issue 20: tests/test_hostile_text.py
    "test_the_sandbox_serves_a_lone_surrogate_json_escaped_as_lever_does": (
        'a tag `"bad\\ud800tag"` in the sandbox',
        "every listing page 200, the surrogate JSON-escaped (it used to answer 500)",
    ),
    "test_snapshot_and_audit_of_the_whole_account_hold_a_lone_surrogate": (
        "`snapshot` and `audit` of an account with lone surrogates in a tag, a name, an email",
        "exit 0; replaced by U+FFFD in the client's one JSON decode; a `hostile text` warning "
        "in the snapshot and on stderr (it used to be a traceback)",
    ),
    "test_tag_contact_works_on_a_contact_with_a_lone_surrogate": (
        "`tag_contact` (what sync runs) on that contact, twice",
        "writes done, then nothing to do: the contact does not fail forever",
    ),
    "test_a_replaced_tag_is_never_written_back": (
        "a tag holding U+FFFD or a lone surrogate to write",
        "refused by the tag rule",
    ),
    "test_bytes_that_are_not_utf8_are_replaced_and_counted": (
        "a byte 0xFF in Lever's JSON",
        "replaced by U+FFFD and counted",
    ),
    "test_clean_json_walks_only_when_the_text_can_hold_a_surrogate": (
        "lone surrogates in keys and values, a valid pair",
        "the lone ones replaced, the pair kept",
    ),
    "test_deeply_nested_json_from_lever_is_one_line_and_exit_2": (
        "a server answering `[` x 200,000",
        "UnexpectedResponseError; `snapshot` exits 2 with one line",
    ),
    "test_deeply_nested_json_in_a_plan_sidecar_is_one_line_and_exit_2": (
        "plan.meta.json of `[` x 200,000",
        "`apply` exits 2 with one line",
    ),
    "test_deeply_nested_yaml_is_one_line_and_exit_2": (
        "a policy file of `[` x 5,000, and of 400 nested mappings",
        "exit 2, one line (`nested deeper than 50 levels`), no plan written",
    ),
    "test_the_tag_rule_and_the_log_escaping_share_one_definition": (
        "C0, DEL, C1, NEL, U+2028/9, bidi controls (U+202A-E, U+2066-9, U+200E/F, U+061C), "
        "zero-width characters (U+200B-D, U+2060, U+FEFF) in a tag",
        "refused by the tag rule; escaped by terminal text and the log formatter "
        "(`toolkit.chars`, one definition)",
    ),
    "test_the_cli_refuses_a_bidi_tag_before_any_request": (
        "`plan --tag` with U+202E",
        "exit 2 before any request; the message shows `U+202E`, not the character",
    ),
    "test_log_lines_of_the_cli_escape_dangerous_characters": (
        "a log line holding NEL, U+2028, U+202E, U+200B",
        "each shown as an escape",
    ),
    "test_tag_contact_applies_the_cli_tag_rule_before_any_request": (
        "`tag_contact` with NUL, 256 characters, zero-width, bidi, blank tags",
        "ValueError naming the rule, no request",
    ),
    "test_doctor_json_and_journal_folders_are_private": (
        "umask 022: `doctor --json`, `--journal-dir`, `apply --journal new/runs/j.sqlite`",
        "doctor.json 0600; the folders made 0700 (they were 0644 / 0755)",
    ),
    # issue 20: tests/test_notebook_runners.py
    "test_plain_papermill_run_of_notebook_01_publishes_no_real_name": (
        "notebook 01 by plain `papermill` (no `lever-tags report`) with its defaults",
        "no real name in the executed notebook; pseudonyms (it published 27+ names)",
    ),
    "test_a_parameter_the_notebook_lacks_fails_the_check_cell": (
        "plain `papermill -p with_personel False` (a typo)",
        "the check cell fails with one line before any fetch",
    ),
    "test_from_executed_makes_a_private_offline_csp_report": (
        "the 0644 executed notebook of a plain papermill run",
        "`lever-tags report --from-executed`: 0600, and an HTML 0600 with the CSP, no script, "
        "no CDN",
    ),
    "test_from_executed_refuses_what_is_not_an_executed_notebook": (
        "`--from-executed` of a missing file, of a non-notebook, with a NOTEBOOK too",
        "exit 2, one line",
    ),
    "test_nbconvert_with_the_offline_template_carries_the_csp": (
        "`jupyter nbconvert --to html --template offline` on that notebook",
        "the CSP meta, no CDN load (plain nbconvert loads require.js and MathJax)",
    ),
    "test_the_docs_point_schedulers_at_lever_tags_batch": (
        "docs/usage.md's scheduling advice",
        "`lever-tags batch`, not Airflow's PapermillOperator",
    ),
    "test_run_mode": (
        "how a kernel is run: report, JupyterLab, papermill/nbconvert/Airflow",
        "told apart from the environment",
    ),
    "test_lever_tags_report_kernels_are_marked_as_such": (
        "a `lever-tags report` kernel",
        "marked `LEVER_TOOLKIT_RUN=report`",
    ),
    "test_a_headless_check_redacts_refuses_and_makes_files_private": (
        "a headless check cell: nothing injected; `with_personel`, `api_key`, the key as a value",
        "redacted, umask 077; each refused with one line",
    ),
    "test_report_and_interactive_runs_keep_their_parameters": (
        "the same check in a report or JupyterLab kernel",
        "parameters kept as given",
    ),
}

# tests/test_sync_queue.py: the sync service's queue, listener and metrics (issue 20).
SYNC_ATTACKS = {
    "test_a_poison_id_fails_at_once_without_a_traceback": (
        "queued events whose opportunity id is `..`, `.`, a path, 5,000 characters or holds a "
        "newline (they looped past 300 attempts, a traceback each)",
        "failed at the first check, no traceback; a genuine event behind them is processed; "
        "`/healthz` stays ok",
    ),
    "test_a_lever_4xx_fails_at_once": ("Lever answering 400 for one opportunity", "failed at once"),
    "test_an_unexpected_error_is_retried_a_bounded_number_of_times_with_one_traceback": (
        "a contact check raising a non-Lever error every time",
        "failed after 8 strikes, one traceback in the log",
    ),
    "test_a_lever_outage_in_webhooks_only_mode_loses_no_acknowledged_event": (
        "`--poll-interval 0`, Lever answering 5xx to everything, then dropping every "
        "connection, 40 tries per event (the backoff scaled down; the old limit was 8), the "
        "service restarted in the middle",
        "every event answered 200 kept and processed when Lever returns, none failed; "
        "`/healthz` degraded meanwhile; a new webhook still accepted during the outage",
    ),
    "test_a_restart_retries_waiting_events_at_once": (
        "a restart while an event waits out an hour-long backoff",
        "tried again at once",
    ),
    "test_a_flood_of_signed_duplicates_never_shuts_out_a_genuine_webhook": (
        "300 copies of one signed delivery with fresh ids, a 503 cap of 3 contacts",
        "every copy and the genuine webhook for another contact answered 200; one write per "
        "contact",
    ),
    "test_metric_event_labels_are_bounded": (
        "1,000 distinct 300-character event names counted",
        "one `other` series",
    ),
    "test_webhooks_with_made_up_events_add_no_series": (
        "40 signed webhooks with made-up event names",
        "`/metrics` grows by under 2 KB (it grew from 4.6 KB to 4.8 MB)",
    ),
    "test_healthz_is_degraded_with_reasons_and_hides_errors_from_afar": (
        "failing checks and an hour-old event; `/healthz` asked through a proxy",
        "`degraded` with both reasons; the error text only for loopback without a proxy",
    ),
    "test_healthz_is_degraded_when_the_queue_is_full": (
        "a full queue",
        "`/healthz` degraded, naming it",
    ),
    "test_a_half_open_connection_is_closed_after_the_header_timeout": (
        "a connection that never finishes its headers",
        "closed by the header timeout (tornado's default: an hour)",
    ),
    "test_300_slow_connections_leave_healthz_and_webhooks_answering": (
        "`lever-tags sync` with 256 descriptors and 300 half-open connections",
        "`/healthz` and a genuine webhook answered; log under 1 KB, no traceback (5.3 MB in "
        "10 s before)",
    ),
    "test_intervals_must_be_finite_and_positive": (
        "`--poll-interval` and `--replay-window` of `nan`, `inf`, negative",
        "exit 2, one line, no journal",
    ),
    "test_the_service_refuses_non_finite_intervals": (
        "`SyncService` intervals of `nan`, `inf`, negative",
        "ValueError naming the argument",
    ),
    "test_loopback_addresses_are_told_apart": (
        "loopback and other addresses (IPv4-mapped included)",
        "told apart (the warning and `/healthz`'s error text depend on it)",
    ),
    "test_accept_errors_pause_the_listener_and_are_logged_once": (
        "`accept()` failing with EMFILE on every try",
        "5 tries in 0.5 s and one log line (plain tornado: 464 tries, a traceback each)",
    ),
    "test_a_non_loopback_address_gets_the_tls_proxy_warning": (
        "`--listen` on an address other machines reach",
        "a warning saying a TLS-terminating proxy belongs in front",
    ),
    "test_an_old_journal_gains_the_strikes_column": (
        "a journal from before strikes were counted",
        "opened and migrated",
    ),
}


def run_tests(workdir: Path) -> tuple[list[dict], dict[str, dict], int]:
    report = workdir / "faults.jsonl"
    junit = workdir / "junit.xml"
    env = dict(os.environ, LEVER_FAULT_REPORT=str(report))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    code = subprocess.call(cmd + TESTS, cwd=ROOT, env=env)
    lines = report.read_text().splitlines() if report.exists() else []
    scenarios = [json.loads(line) for line in lines]
    cases: dict[str, dict] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        cases[f"{case.get('classname')}::{case.get('name')}"] = {
            "time": float(case.get("time") or 0),
            "held": not failed and case.find("skipped") is None,
        }
    return scenarios, cases, code


def _rows(cases: dict[str, dict], module: str) -> list[tuple[str, dict]]:
    return [(name.split("::", 1)[1], c) for name, c in cases.items() if name.startswith(module)]


def held(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render(scenarios: list[dict], cases: dict[str, dict], code: int) -> str:
    out = [
        "# Reliability and security: what was tried, what held",
        "",
        f"Generated by `.venv/bin/python benchmarks/fault_matrix.py` on "
        f"{datetime.now(UTC).date().isoformat()} ({platform.machine()}, 2 CPUs, Python "
        f"{platform.python_version()}); pytest exit code {code}. The same tests run in "
        "`make test`.",
        "",
        "## Faults (tests/test_faults.py)",
        "",
        "Each scenario: a fresh sandbox with the fault, a full snapshot compared with the "
        "sandbox's own data (exactly equal), a propagate run of the contact-level tags, and a "
        "check that every opportunity's tags equal the tags before plus the plan's additions: "
        "no gap left that the plan could close, no extra tag, no tag lost.",
        "",
        "| scenario | what was tried | held | opportunities | write calls | fetch s | apply s "
        "| requests | retries | 429s | 5xx | connection errors | listing restarts |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scenarios:
        out.append(
            f"| {s['scenario']} | {s['tried']} | {held(s['held'])} | {s['opportunities']} "
            f"| {s['writes']} | {s['fetch_seconds']} | {s['apply_seconds']} | {s['requests']} "
            f"| {s['retries']} | {s['rate_limited']} | {s['server_errors']} "
            f"| {s['connection_errors']} | {s['listing_restarts']} |"
        )
    for name, case in _rows(cases, "tests.test_faults"):
        if not case["held"]:
            out.append(f"| {name} | (failed before recording) | **no** | | | | | | | | | | |")
    sections = [
        (
            "Crashes and concurrency (tests/test_remediate_kill.py)",
            "SIGKILL at an exact point (failpoints) or from outside, then the same command "
            "again: the end state equals the plan's, the journal shows every (opportunity, op) "
            "done once, and the sandbox saw each write exactly once.",
            "tests.test_remediate_kill",
        ),
        (
            "Bad input (tests/test_bad_input.py)",
            "Each case: exit code 2, one line on stderr naming what is wrong and how to fix it, "
            "no traceback, no file left behind, no tag write. Elsewhere in the suite: a key "
            "without confidential access carries on with a warning in every summary "
            "(tests/test_cli_audit.py, tests/test_snapshot.py); a notebook parameter of the "
            "wrong type fails before any kernel starts, naming the parameter "
            "(tests/test_reports.py, tests/test_notebooks.py); an account with no opportunity "
            "gives a valid empty report (tests/test_cli_audit.py).",
            "tests.test_bad_input",
        ),
        (
            "Secrets and personal data (tests/test_demo.py, and the whole suite)",
            "The demo runs with a key known to the test, then every file it produced is searched "
            "for the key and for an Authorization header. After every `make test` session, a "
            "fixture searches every file any test produced for every sandbox key "
            "(tests/conftest.py). `audit --redact` is checked by searching its artifacts for "
            "every real name and email (tests/test_cli_audit.py).",
            "tests.test_demo",
        ),
    ]
    for title, what, module in sections:
        out += ["", f"## {title}", "", what, "", "| test | held | seconds |", "|---|---|---|"]
        for name, case in _rows(cases, module):
            out.append(f"| `{name}` | {held(case['held'])} | {case['time']:.1f} |")
    out += render_hostile(cases)
    return "\n".join(out) + "\n"


def render_hostile(cases: dict[str, dict]) -> list[str]:
    """The hostile-data table: one row per test of tests/test_hostile.py (cases merged)."""
    out = [
        "",
        "## Hostile data (tests/test_hostile.py; the sync service: tests/test_sync_queue.py)",
        "## Hostile data (tests/test_hostile.py, test_hostile_csv.py, test_hostile_text.py, "
        "test_notebook_runners.py)",
        "",
        "A sandbox seeded with `hostile_dataset` (`lever-tags sandbox --hostile`), every "
        "notebook through `lever-tags report` and `lever-tags batch`, plan/apply/verify/rollback "
        "with hostile tags, checked as text, as parsed HTML and in headless Chromium. "
        'Design: docs/usage.md, "Hostile data".',
        "",
        "| what was tried | what held | test | held | seconds |",
        "|---|---|---|---|---|",
    ]
    merged: dict[str, dict] = {}
    rows = _rows(cases, "tests.test_hostile") + _rows(cases, "tests.test_sync_queue")
    rows = [row for module in HOSTILE_MODULES for row in _rows(cases, module)]
    for name, case in rows:
        base = name.split("[", 1)[0]
        prev = merged.get(base, {"held": True, "time": 0.0, "n": 0})
        merged[base] = {
            "held": prev["held"] and case["held"],
            "time": prev["time"] + case["time"],
            "n": prev["n"] + 1,
        }
    for name, case in merged.items():
        known = {**HOSTILE, **SYNC_ATTACKS}.get(name, (name, ""))
        tried, holds = (t.replace("|", "\\|") for t in known)
        cases_note = f" ({case['n']} cases)" if case["n"] > 1 else ""
        out.append(
            f"| {tried} | {holds} | `{name}`{cases_note} | {held(case['held'])} "
            f"| {case['time']:.1f} |"
        )
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scenarios, cases, code = run_tests(Path(tmp))
    DOC.write_text(render(scenarios, cases, code), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} ({len(scenarios)} fault scenarios, {len(cases)} tests)")
    return code


if __name__ == "__main__":
    sys.exit(main())
