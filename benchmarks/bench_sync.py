"""Sync benchmark: webhook -> tag present, end to end, and API calls per event.

    .venv/bin/python benchmarks/bench_sync.py                 # 20 one by one, 40 at once, 10 polled
    .venv/bin/python benchmarks/bench_sync.py --write-docs    # also update docs/benchmarks.md
    .venv/bin/python benchmarks/bench_sync.py --sequential 5 --burst-events 10   # quick

Both sides run as a user would run them, each in its own process: `lever-tags sandbox` (Lever-like:
``--latency-ms`` per request, a 10 requests/s bucket with bursts to 20) and `lever-tags sync --yes
--listen 127.0.0.1:0 --poll-interval 0` subscribed to the sandbox's webhooks. For each event, a
contact whose opportunities all carry "Do not contact" gets a new opportunity through the sandbox's
admin route (which sends the signed ``applicationCreated`` webhook). Latency is from that admin
call to the moment the service's ``addTags`` was answered 200 (its journal's write row), i.e. the
tag is present in Lever. First one event at a time (``--sequential``), then ``--burst-events`` at
once (queueing under the rate limit); then, webhooks off, ``--poll-events`` at once found by a
`lever-tags sync --poll-interval 2` that polls alone. API calls are the sandbox's count of
``/v1`` requests; Lever's per-trigger recipe for the same events is: read the opportunity (its
contact), list the contact's opportunities, ``addTags`` on each of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_section import command_line, write_section

from lever_sandbox.process import SandboxProcess
from toolkit.sync.store import SyncJournal

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TAG = "Do not contact"
SECRET = "bench-" + os.urandom(8).hex()


class Sandbox:
    def __init__(self, env: dict[str, str]) -> None:
        self.root = env["LEVER_BASE_URL"].rsplit("/v1", 1)[0]
        self.auth = (env["LEVER_API_KEY"], "")

    def __call__(self, method: str, route: str, body: object = None) -> dict:
        answer = requests.request(
            method, f"{self.root}/_sandbox/{route}", auth=self.auth, json=body, timeout=30
        )
        answer.raise_for_status()
        return answer.json()

    def v1_requests(self) -> int:
        return int(self("GET", "stats")["requests"])


def start_sync(
    env: dict[str, str], folder: Path, poll_interval: float = 0
) -> tuple[subprocess.Popen, str]:
    policy = folder / "policy.yaml"
    policy.write_text(f"version: 1\ncontact_level: ['{TAG}']\n")
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy), "--yes"]
    argv += ["--journal", str(folder / "sync.sqlite"), "--listen", "127.0.0.1:0"]
    argv += ["--poll-interval", str(poll_interval)]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env, "LEVER_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
            return proc, found.group(1)
    raise RuntimeError(f"lever-tags sync exited with {proc.wait()} before listening")


def prepare(sandbox: Sandbox, count: int) -> list[tuple[str, int]]:
    """`count` contacts (2-4 opportunities, none anonymized) with TAG on all their opportunities."""
    by_contact: dict[str, list[dict]] = {}
    for opp in sandbox("GET", "opportunities")["data"]:
        if opp.get("contact"):
            by_contact.setdefault(opp["contact"], []).append(opp)
    chosen = []
    for contact, opps in sorted(by_contact.items()):
        if not 2 <= len(opps) <= 4 or any(o.get("isAnonymized") for o in opps):
            continue
        for opp in opps:
            tags = [t for t in opp.get("tags") or [] if t != TAG] + [TAG]
            sandbox("POST", f"opportunities/{opp['id']}/tags", {"tags": tags})
        chosen.append((contact, len(opps)))
        if len(chosen) == count:
            return chosen
    raise RuntimeError("not enough contacts with 2-4 opportunities")


def done_writes(journal: Path) -> dict[str, int]:
    """{opportunity_id: ms when its addTags was answered} from the service's journal."""
    with SyncJournal(journal, lock=False, create=False) as j:
        writes = j.sync_table("sync_writes")
    if writes.empty:
        return {}
    done = writes[writes["state"] == "done"]
    return dict(zip(done["opportunity_id"], done["finished_at"].astype(int), strict=True))


def wait_tagged(journal: Path, created: dict[str, int], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = done_writes(journal)
        if all(o in done for o in created):
            return {o: (done[o] - created[o]) / 1000 for o in created}
        time.sleep(0.05)
    raise RuntimeError(f"not every new opportunity was tagged within {timeout} s")


def settled(url: str, timeout: float = 120) -> None:
    """Wait until the service has polled at least once and its queue is empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = requests.get(f"{url}/healthz", timeout=10).json()
        if health["last_poll"] and health["queue_depth"] == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("the polling service did not settle")


def phase(sandbox: Sandbox, journal: Path, contacts: list, at_once: bool) -> dict:
    before = sandbox.v1_requests()
    created: dict[str, int] = {}
    latencies: dict[str, float] = {}
    for contact, _n in contacts:
        t0 = int(time.time() * 1000)
        opp = sandbox("POST", f"contacts/{contact}/opportunities", {"tags": []})["data"]["id"]
        created[opp] = t0
        if not at_once:
            latencies.update(wait_tagged(journal, {opp: t0}, 60))
    if at_once:
        latencies = wait_tagged(journal, created, 300)
    time.sleep(1.0)  # let any follow-up request land before counting (none is expected)
    used = sandbox.v1_requests() - before
    values = sorted(latencies.values())
    recipe = sum(2 + n + 1 for _c, n in contacts)  # read + list + addTags on every opportunity
    return {
        "events": len(contacts),
        "latency_p50_s": round(statistics.median(values), 3),
        "latency_p95_s": round(values[min(len(values), math.ceil(len(values) * 0.95)) - 1], 3),
        "latency_max_s": round(values[-1], 3),
        "api_calls": used,
        "api_calls_per_event": round(used / len(contacts), 2),
        "recipe_calls": recipe,
        "recipe_calls_per_event": round(recipe / len(contacts), 2),
    }


def run(args: argparse.Namespace) -> dict:
    flags = ["--contacts", str(args.contacts), "--latency-ms", str(args.latency_ms)]
    flags += ["--rate", str(args.rate), "--burst", str(args.burst)]
    with SandboxProcess(*flags) as sandbox_run, tempfile.TemporaryDirectory() as tmp:
        env = sandbox_run.env
        sandbox = Sandbox(env)
        n_seq, n_burst = args.sequential, args.burst_events
        contacts = prepare(sandbox, n_seq + n_burst + args.poll_events)
        journal = Path(tmp) / "sync.sqlite"
        proc, url = start_sync(env, Path(tmp))
        try:
            sub = sandbox(
                "POST",
                "webhooks",
                {"url": f"{url}/webhooks/lever", "signatureToken": SECRET},
            )["data"]
            one_by_one = phase(sandbox, journal, contacts[:n_seq], at_once=False)
            burst = phase(sandbox, journal, contacts[n_seq : n_seq + n_burst], at_once=True)
            metrics = requests.get(f"{url}/metrics", timeout=10).text
        finally:
            proc.terminate()
            code = proc.wait(30)
        sandbox("DELETE", f"webhooks/{sub['id']}")  # polling alone from here
        proc, url = start_sync(env, Path(tmp), poll_interval=args.poll_interval)
        try:
            settled(url)
            polled = phase(sandbox, journal, contacts[n_seq + n_burst :], at_once=True)
        finally:
            proc.terminate()
            proc.wait(30)
    refused = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("lever_sync_events_refused_total")
    )
    return {
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "latency_ms": args.latency_ms,
        "rate": args.rate,
        "burst": args.burst,
        "one_by_one": one_by_one,
        "at_once": burst,
        "poll_interval": args.poll_interval,
        "polling": polled,
        "refused_webhooks": refused,
        "sync_exit_code_on_sigterm": code,
    }


def markdown(result: dict, command: str) -> str:
    a, b, c = result["one_by_one"], result["at_once"], result["polling"]
    lines = [
        "## Sync",
        "",
        f"Command: `{command}` (the sandbox and `lever-tags sync --yes` each in their own "
        f"process; {result['latency_ms']:g} ms latency per request, {result['rate']:g} requests/s "
        f"with bursts to {result['burst']}, like Lever; webhooks signed and checked). "
        "Latency: from "
        "the admin call that creates the opportunity (and sends `applicationCreated`) to the "
        f"`addTags` answered 200. Machine: {result['machine']}, shared with other work while "
        "measured.",
        "",
        "| events | p50 | p95 | max | API calls per event | Lever's per-trigger recipe |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {a['events']} one at a time | {a['latency_p50_s']:.2f} s | {a['latency_p95_s']:.2f} s "
        f"| {a['latency_max_s']:.2f} s | **{a['api_calls_per_event']:g}** "
        f"| {a['recipe_calls_per_event']:g} |",
        f"| {b['events']} at once | {b['latency_p50_s']:.2f} s | {b['latency_p95_s']:.2f} s "
        f"| {b['latency_max_s']:.2f} s | **{b['api_calls_per_event']:g}** "
        f"| {b['recipe_calls_per_event']:g} |",
        f"| {c['events']} at once, no webhooks, `--poll-interval {result['poll_interval']:g}` "
        f"| {c['latency_p50_s']:.2f} s | {c['latency_p95_s']:.2f} s | {c['latency_max_s']:.2f} s "
        f"| {c['api_calls_per_event']:g} (polls included) | {c['recipe_calls_per_event']:g} |",
        "",
        "The service uses the webhook's `contactId` (no read of the opportunity), one "
        "`contact_id` listing, and one `addTags` only on the opportunity that lacks the tag: "
        "2 calls per event. The recipe reads the opportunity, lists the contact, and calls "
        "`addTags` on every opportunity of the contact (those already tagged too). At once, events "
        "queue under the 10 requests/s limit, which sets the latency of the last ones. "
        f"Webhooks refused: {result['refused_webhooks']:g}; `lever-tags sync` exit code on "
        f"SIGTERM: {result['sync_exit_code_on_sigterm']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--burst-events", type=int, default=40)
    parser.add_argument("--poll-events", type=int, default=10)
    parser.add_argument("--poll-interval", type=float, default=2)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    section = markdown(result, command_line("bench_sync.py"))
    print(section)
    if args.write_docs:
        write_section(DOCS, "## Sync", section)


if __name__ == "__main__":
    main()
