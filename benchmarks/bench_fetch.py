"""Fetch benchmark: `lever-tags snapshot --out FILE`, timed as a user runs it, on every profile
and in every listing order.

    .venv/bin/python benchmarks/bench_fetch.py
    .venv/bin/python benchmarks/bench_fetch.py --profiles bulk --sizes 10000 --skip-sequential
    .venv/bin/python benchmarks/bench_fetch.py --orders newest,shuffled --sizes 10000

For each listing order (created, newest, updated, updated-desc, shuffled), `createdAt` profile
(uniform, recent, bulk, sparse: see `lever_sandbox.data.apply_created_profile`) and size, a sandbox
runs in its own process (`SandboxProcess`: `python -m lever_sandbox --created-profile P
--listing-order O`) with Lever's documented limit (10 requests/s, bursts of 20) and 300 ms
latency (10 % jitter). The whole
`lever-tags snapshot --out FILE` command is timed in a child process: interpreter start, imports,
the fetch, the Parquet and metadata files. The ceiling is 10 pages/s x 100 opportunities = 1,000
opportunities/s; the minimum number of requests is ceil(N / 100). The snapshot is checked against
the sandbox's own list (every opportunity exactly once). Beside it, one plain sequential listing per
size (one `iter_opportunities`, latency bound, the same on every profile).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
import requests  # noqa: E402

from lever_sandbox.data import CREATED_PROFILES  # noqa: E402
from lever_sandbox.process import SandboxProcess  # noqa: E402
from toolkit.client import LeverClient  # noqa: E402


def _server_ids(env: dict[str, str]) -> list[str]:
    """Every opportunity id the sandbox holds, from its admin route (no limits, no latency)."""
    response = requests.get(
        f"{env['LEVER_BASE_URL'].rsplit('/v1', 1)[0]}/_sandbox/opportunities",
        auth=(env["LEVER_API_KEY"], ""),
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    items = body["data"] if isinstance(body, dict) else body
    return [o["id"] for o in items]


def _snapshot_command(env: dict[str, str], out: Path, workers: int) -> dict:
    child_env = dict(os.environ, **env)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "snapshot", "--out", str(out)]
        + (["--workers", str(workers)] if workers else []),
        env=child_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"lever-tags snapshot failed ({proc.returncode}): {proc.stderr[-500:]}")
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    ids = pd.read_parquet(out, columns=["opportunity_id"])["opportunity_id"]
    return {"seconds": seconds, "meta": meta, "ids": ids}


def run_one(
    profile: str, order: str, size: int, args: argparse.Namespace, sequential: bool
) -> list[dict]:
    rows = []
    ceiling = args.rate * 100
    with SandboxProcess(
        "--listing-order",
        order,
        "--opportunities",
        str(size),
        "--created-profile",
        profile,
        "--latency-ms",
        str(args.latency_ms),
        "--rate",
        str(args.rate),
        "--burst",
        str(args.burst),
    ) as sandbox_run:
        env = sandbox_run.env
        expected = _server_ids(env)
        with tempfile.TemporaryDirectory() as tmp:
            result = _snapshot_command(env, Path(tmp) / "snapshot.parquet", args.workers)
        ids = result["ids"]
        exact = ids.is_unique and set(ids) == set(expected)
        fetch = result["meta"]["fetch"]
        seconds = result["seconds"]
        rows.append(
            {
                "profile": profile,
                "order": order,
                "fetch": "lever-tags snapshot",
                "opportunities": len(ids),
                "exact": exact,
                "seconds": round(seconds, 1),
                "fetch_seconds": fetch["seconds"],
                "opportunities_per_second": round(len(ids) / seconds, 1),
                "share_of_ceiling": round(len(ids) / seconds / ceiling, 3),
                "requests": fetch["requests"],
                "minimum_requests": -(-size // 100),
                "windows": fetch.get("windows"),
                "rate_limited": fetch["rate_limited"],
                "order_seen": fetch.get("order"),
                "ceiling": ceiling,
                "load": round(os.getloadavg()[0], 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        if sequential:
            client = LeverClient(env["LEVER_BASE_URL"], api_key=env["LEVER_API_KEY"])
            started = time.monotonic()
            count = sum(1 for _ in client.iter_opportunities(confidentiality="all"))
            seconds = time.monotonic() - started
            rows.append(
                {
                    "profile": profile,
                    "order": order,
                    "fetch": "one sequential listing (in process)",
                    "opportunities": count,
                    "exact": count == len(expected),
                    "seconds": round(seconds, 1),
                    "fetch_seconds": round(seconds, 1),
                    "opportunities_per_second": round(count / seconds, 1),
                    "share_of_ceiling": round(count / seconds / ceiling, 3),
                    "requests": client.stats.requests,
                    "minimum_requests": -(-size // 100),
                    "windows": 1,
                    "rate_limited": client.stats.rate_limited,
                    "order_seen": "",
                    "ceiling": ceiling,
                    "load": round(os.getloadavg()[0], 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    """The table for docs/benchmarks.md; `fetch share` is the fetch alone (from the snapshot's
    meta), beside the whole command's share (interpreter, imports and files included)."""
    lines = [
        "| order | profile | fetch | opportunities | seconds | opp/s | share of ceiling "
        "| fetch share | requests (minimum) | 429s | exact | order seen | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---|---:|",
    ]
    for r in rows:
        fetch_share = r["opportunities"] / r["fetch_seconds"] / r["ceiling"]
        lines.append(
            f"| {r['order']} | {r['profile']} | {r['fetch']} | {r['opportunities']:,} "
            f"| {r['seconds']} | {r['opportunities_per_second']:,.0f} "
            f"| **{r['share_of_ceiling']:.1%}** | {fetch_share:.1%} "
            f"| {r['requests']} ({r['minimum_requests']}) | {r['rate_limited']} "
            f"| {'yes' if r['exact'] else 'NO'} | {r['order_seen']} | {r['load']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default=",".join(CREATED_PROFILES))
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--orders", default="created,newest,updated,updated-desc,shuffled")
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0, help="--workers for the command")
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    rows: list[dict] = []
    load_before = os.getloadavg()
    orders = [o.strip() for o in args.orders.split(",")]
    for size in (int(s) for s in args.sizes.split(",")):
        for order in orders:
            for i, profile in enumerate(p.strip() for p in args.profiles.split(",")):
                first = i == 0 and order == orders[0]
                rows.extend(run_one(profile, order, size, args, not args.skip_sequential and first))
    load_after = os.getloadavg()
    print()
    print(markdown(rows))
    print()
    print(
        f"ceiling: {args.rate * 100:.0f} opportunities/s ({args.rate:g} requests/s x 100 per "
        f"page); load average before {load_before[0]:.2f}, after "
        f"{', '.join(f'{x:.2f}' for x in load_after)} (1, 5, 15 min) on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
