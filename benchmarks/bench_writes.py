"""Write benchmark: `apply_plan` against the sandbox at high latency under a rate limit.

    .venv/bin/python benchmarks/bench_writes.py                 # 5,000 writes, 200 ms, 50/s
    .venv/bin/python benchmarks/bench_writes.py --write-docs    # also update docs/benchmarks.md
    .venv/bin/python benchmarks/bench_writes.py --writes 500 --serial-sample 0   # quick

The sandbox runs in its own process (`lever-tags sandbox`, as a user would run it) with
``--latency-ms`` per request and a token bucket of ``--rate`` requests/second. The client uses the
same rate in its own limiter and ``--workers`` concurrent calls. Steps:

1. fetch a snapshot (windowed, parallel) and plan the propagation of every contact-level tag;
2. keep the first ``--writes`` write calls (one per opportunity: propagation only adds);
3. apply it for real (journal in a temp folder) and time the write phase;
4. optionally apply a small sample with one worker, for contrast (``--serial-sample``);
5. count the API calls Lever's per-contact recipe would use for the same split pairs: for each
   opportunity that carries the tag, list its contact's opportunities (one call), then call
   addTags on each of them; and the kinder per-pair variant (one listing per (contact, tag)).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_section import command_line, write_section

from lever_sandbox import CONTACT_LEVEL_TAGS
from lever_sandbox.process import SandboxProcess
from toolkit.client import LeverClient
from toolkit.remediate.apply import apply_plan
from toolkit.remediate.plan import Plan
from toolkit.remediate.planner import make_plan
from toolkit.snapshot.fetch import fetch_snapshot

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def admin(env: dict[str, str], method: str, route: str) -> dict:
    root = env["LEVER_BASE_URL"].rsplit("/v1", 1)[0]
    answer = requests.request(
        method, f"{root}/_sandbox/{route}", auth=(env["LEVER_API_KEY"], ""), timeout=30
    )
    answer.raise_for_status()
    return answer.json()


def first_calls(plan: Plan, n: int) -> Plan:
    """The plan restricted to its first `n` (opportunity, op) calls."""
    calls = plan.calls().head(n)
    keys = set(zip(calls["opportunity_id"], calls["op"], strict=True))
    rows = plan.rows
    mask = [(o, op) in keys for o, op in zip(rows["opportunity_id"], rows["op"], strict=True)]
    return Plan(rows=rows[mask].reset_index(drop=True), meta=plan.meta, before=plan.before)


def recipe_calls(frame, plan: Plan) -> dict[str, int]:
    """API calls of Lever's per-contact recipe for the split pairs the plan closes."""
    opps_per_contact = frame.dropna(subset=["contact_id"]).groupby("contact_id").size()
    pairs = plan.rows[["contact_id", "tag"]].drop_duplicates()
    tag_sets = dict(zip(frame["opportunity_id"], frame["tags"], strict=True))
    contact_of = frame.dropna(subset=["contact_id"]).groupby("contact_id")["opportunity_id"]
    members = {c: list(ids) for c, ids in contact_of}
    per_pair = per_opportunity = 0
    for contact, tag in pairs.itertuples(index=False):
        n = int(opps_per_contact[contact])
        sources = sum(tag in tag_sets[o] for o in members[contact])
        per_pair += 1 + n
        per_opportunity += sources * (1 + n)
    return {
        "split_pairs": len(pairs),
        "per_source_opportunity": per_opportunity,
        "per_pair": per_pair,
    }


def run(args: argparse.Namespace) -> dict:
    sandbox_args = [
        "--contacts", str(args.contacts), "--latency-ms", str(args.latency_ms),
        "--rate", str(args.rate), "--burst", str(args.burst), "--seed", "7",
    ]  # fmt: skip
    with SandboxProcess(*sandbox_args) as sandbox_run:
        env = sandbox_run.env
        client = LeverClient(
            env["LEVER_BASE_URL"], api_key=env["LEVER_API_KEY"], rate=args.rate, burst=10
        )
        started = time.monotonic()
        snap = fetch_snapshot(client, progress=False)
        fetch_seconds = time.monotonic() - started
        fetch_requests = client.stats.requests
        full = make_plan(snap, tags=list(CONTACT_LEVEL_TAGS))
        if len(full.calls()) < args.writes + args.serial_sample:
            raise SystemExit(f"only {len(full.calls())} write calls planned; raise --contacts")
        plan = first_calls(full, args.writes)
        with tempfile.TemporaryDirectory() as tmp:
            admin(env, "POST", "reset")
            wall = time.monotonic()
            result = apply_plan(
                client,
                plan,
                dry_run=False,
                journal_path=Path(tmp) / "bench.sqlite",
                workers=args.workers,
                progress=sys.stderr.isatty(),
            )
            wall = time.monotonic() - wall
            server = admin(env, "GET", "stats")
            serial = None
            if args.serial_sample:
                rest = full.calls().iloc[args.writes : args.writes + args.serial_sample]
                keys = set(rest["opportunity_id"])
                sample = Plan(
                    rows=full.rows[full.rows["opportunity_id"].isin(keys)].reset_index(drop=True),
                    meta=full.meta,
                    before=full.before,
                )
                one = apply_plan(
                    client, sample, dry_run=False, journal_path=Path(tmp) / "s.sqlite", workers=1
                )
                serial = {
                    "calls": one.calls,
                    "seconds": round(one.elapsed, 2),
                    "writes_per_second": round(one.writes_per_second, 2),
                }
        assert result.ok, "some writes failed"
        recipe = recipe_calls(snap.frame, plan)
        drift_requests = server["requests"] - server["writes"]
        return {
            "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
            "sandbox": {
                "opportunities": len(snap.frame),
                "latency_ms": args.latency_ms,
                "rate": args.rate,
                "burst": args.burst,
            },
            "workers": args.workers,
            "writes": result.calls,
            "changes": result.applied,
            "attempts": result.attempts,
            "write_seconds": round(result.elapsed, 2),
            "writes_per_second": round(result.writes_per_second, 2),
            "share_of_limit": round(result.writes_per_second / args.rate, 4),
            "apply_wall_seconds": round(wall, 2),
            "server": {
                "requests": server["requests"],
                "writes": server["writes"],
                "rate_limited": server["rate_limited"],
                "max_in_flight": server["max_in_flight"],
            },
            "drift_check_requests": drift_requests,
            "snapshot": {"seconds": round(fetch_seconds, 2), "requests": fetch_requests},
            "recipe": recipe,
            "serial_sample": serial,
        }


def markdown(r: dict, command: str) -> str:
    recipe = r["recipe"]
    ours = r["server"]["requests"]
    ours_with_snapshot = ours + r["snapshot"]["requests"]
    serial = r["serial_sample"]
    lines = [
        "## Writes",
        "",
        f"Command: `{command}` (the sandbox in its own process via `lever-tags sandbox`, "
        f"{r['sandbox']['latency_ms']} ms latency with 10% jitter, a limit of "
        f"{r['sandbox']['rate']} requests/s with bursts to {r['sandbox']['burst']}; the client's "
        f"limiter at the same rate, {r['workers']} workers). Machine: {r['machine']}.",
        "",
        "| what | result |",
        "|---|---|",
        f"| write calls (one per opportunity and op) | {r['writes']:,} calls, "
        f"{r['changes']:,} tag changes, {r['attempts']:,} attempts |",
        f"| write phase | {r['write_seconds']} s: **{r['writes_per_second']} writes/s = "
        f"{r['share_of_limit']:.1%} of the {r['sandbox']['rate']}/s limit** |",
        f"| whole apply (drift listing, journal, writes) | {r['apply_wall_seconds']} s |",
        f"| server: requests / 429s / most in flight | {ours:,} / {r['server']['rate_limited']} / "
        f"{r['server']['max_in_flight']} |",
    ]
    if serial:
        lines.append(
            f"| one worker, for contrast ({serial['calls']} calls) | "
            f"{serial['writes_per_second']} writes/s |"
        )
    lines += [
        "",
        f"API calls for the same {recipe['split_pairs']:,} split pairs "
        f"({r['sandbox']['opportunities']:,} opportunities in the account):",
        "",
        "| approach | API calls |",
        "|---|---:|",
        f"| this toolkit: drift listing + writes | **{ours:,}** |",
        f"| this toolkit including the snapshot fetch ({r['snapshot']['requests']} pages, "
        f"{r['snapshot']['seconds']} s) | {ours_with_snapshot:,} |",
        "| Lever's recipe, per opportunity carrying the tag: list the contact's opportunities, "
        f"addTags on each | {recipe['per_source_opportunity']:,} |",
        f"| the same, once per (contact, tag) pair | {recipe['per_pair']:,} |",
        "",
        "The recipe writes every opportunity of the contact (those that already carry the tag "
        "too), one tag per call, and needs a listing per contact; the plan writes only the "
        "missing assignments, all of an opportunity's tags in one call, and reads the contacts "
        "from the snapshot the audit already fetched.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--contacts", type=int, default=19000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--serial-sample", type=int, default=50)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    section = markdown(result, command_line("bench_writes.py"))
    print(section)
    if args.write_docs:
        write_section(DOCS, "## Writes", section)


if __name__ == "__main__":
    main()
