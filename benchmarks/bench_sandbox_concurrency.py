"""Sandbox benchmark: concurrent requests overlap their latency; listing and generator speed.

    .venv/bin/python benchmarks/bench_sandbox_concurrency.py [--concurrency 50 100]
        [--latency-ms 200] [--json]

1. N concurrent ``GET /opportunities?limit=100`` at the given latency (the sandbox sleeps with
   ``await asyncio.sleep``, so the requests wait together): wall time vs the serial sum.
2. A full listing of 10,000 opportunities through `LeverClient` at zero latency (the server's
   own cost per page).
3. Generating 50,000 opportunities.

The sandbox runs in this process (a tornado IOLoop in a thread), as tests use it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lever_sandbox import Sandbox, generate_dataset
from toolkit.client import LeverClient


def concurrent_round(sb: Sandbox, concurrency: int, latency_ms: float) -> dict:
    sb.configure(latency_ms=latency_ms)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=concurrency))
    session.auth = (sb.api_key, "")
    barrier = threading.Barrier(concurrency + 1)
    durations: list[float] = []

    def one(_: int) -> int:
        barrier.wait()
        started = time.perf_counter()
        response = session.get(f"{sb.base_url}/opportunities", params={"limit": 100}, timeout=30)
        durations.append(time.perf_counter() - started)
        return response.status_code

    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(one, i) for i in range(concurrency)]
        barrier.wait()  # every thread is ready: start the clock
        started = time.perf_counter()
        statuses = [f.result() for f in futures]
        wall = time.perf_counter() - started
    session.close()
    return {
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "wall_seconds": round(wall, 3),
        "serial_seconds": round(concurrency * latency_ms / 1000, 3),
        "median_request_ms": round(statistics.median(durations) * 1000, 1),
        "all_200": all(s == 200 for s in statuses),
        "max_in_flight": sb.stats()["max_in_flight"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--listing", type=int, default=10_000, help="opportunities to list")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results: dict[str, object] = {}
    with Sandbox(seed=7, contacts=300, rate=100_000, burst=100_000, jitter_ms=20) as sb:
        # warm up connections and code paths
        concurrent_round(sb, 10, 0)
        rounds = []
        for n in args.concurrency:
            sb.reset_stats()
            rounds.append(concurrent_round(sb, n, args.latency_ms))
        results["concurrent"] = rounds

    with Sandbox(seed=11, opportunities=args.listing, rate=100_000, burst=100_000) as sb:
        client = LeverClient(sb.base_url, api_key=sb.api_key, rate=100_000, burst=100_000)
        started = time.perf_counter()
        listed = [o["id"] for o in client.iter_opportunities(confidentiality="all")]
        seconds = time.perf_counter() - started
        results["listing"] = {
            "opportunities": len(listed),
            "unique": len(set(listed)),
            "pages": client.stats.requests,
            "seconds": round(seconds, 3),
            "pages_per_second": round(client.stats.requests / seconds, 1),
        }

    started = time.perf_counter()
    ds = generate_dataset(seed=1, opportunities=50_000)
    results["generator"] = {
        "opportunities": len(ds.opportunities),
        "contacts": len(ds.contacts),
        "seconds": round(time.perf_counter() - started, 3),
    }

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Concurrent requests at {args.latency_ms:g} ms latency (jitter 0-20 ms):")
    for r in results["concurrent"]:  # type: ignore[union-attr]
        print(
            f"  {r['concurrency']:>4} requests: wall {r['wall_seconds']:.3f} s "
            f"(one after another: >= {r['serial_seconds']:.1f} s), median request "
            f"{r['median_request_ms']:.0f} ms, max in flight {r['max_in_flight']}, "
            f"all 200: {r['all_200']}"
        )
    lst = results["listing"]
    print(
        f"Full listing through LeverClient, no latency: {lst['opportunities']} opportunities "
        f"({lst['unique']} unique) in {lst['pages']} pages, {lst['seconds']:.2f} s "
        f"({lst['pages_per_second']} pages/s)"
    )
    gen = results["generator"]
    print(
        f"Generator: {gen['opportunities']} opportunities / {gen['contacts']} contacts "
        f"in {gen['seconds']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
