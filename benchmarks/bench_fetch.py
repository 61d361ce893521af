"""Fetch benchmark: a full snapshot against the sandbox at realistic latency and Lever's limit.

    .venv/bin/python benchmarks/bench_fetch.py --opportunities 50000 --latency-ms 300

The sandbox runs in its own process with Lever's documented limit (10 requests/second, burst 20).
The ceiling is 10 pages/s x 100 opportunities = 1,000 opportunities/s. The windowed fetch is
compared with a plain sequential listing (one `iter_opportunities`), which is latency bound.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox_process import sandbox_process

from toolkit.client import LeverClient
from toolkit.snapshot.fetch import fetch_snapshot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    ceiling = args.rate * 100
    results: dict[str, dict] = {}
    with sandbox_process(
        "--opportunities",
        str(args.opportunities),
        "--latency-ms",
        str(args.latency_ms),
        "--rate",
        str(args.rate),
        "--burst",
        str(args.burst),
    ) as env:
        client = LeverClient(env["LEVER_BASE_URL"], api_key=env["LEVER_API_KEY"])
        started = time.monotonic()
        snap = fetch_snapshot(client, workers=args.workers, progress=False)
        seconds = time.monotonic() - started
        rate = len(snap.frame) / seconds
        results["windowed"] = {
            "opportunities": len(snap.frame),
            "seconds": round(seconds, 1),
            "opportunities_per_second": round(rate, 1),
            "share_of_ceiling": round(rate / ceiling, 3),
            "requests": snap.meta["fetch"]["requests"],
            "minimum_requests": -(-len(snap.frame) // 100),
            "retries": snap.meta["fetch"]["retries"],
            "rate_limited": snap.meta["fetch"]["rate_limited"],
        }
        print(json.dumps({"windowed": results["windowed"]}), flush=True)
        if not args.skip_sequential:
            seq_client = LeverClient(env["LEVER_BASE_URL"], api_key=env["LEVER_API_KEY"])
            started = time.monotonic()
            count = sum(1 for _ in seq_client.iter_opportunities(confidentiality="all"))
            seconds = time.monotonic() - started
            results["sequential"] = {
                "opportunities": count,
                "seconds": round(seconds, 1),
                "opportunities_per_second": round(count / seconds, 1),
                "share_of_ceiling": round(count / seconds / ceiling, 3),
                "requests": seq_client.stats.requests,
            }
            print(json.dumps({"sequential": results["sequential"]}), flush=True)
    print(f"ceiling: {ceiling:.0f} opportunities/s ({args.rate:g} requests/s x 100 per page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
