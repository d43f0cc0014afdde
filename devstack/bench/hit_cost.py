"""What one getReceipt cache hit costs the running dev stack's ingress, beside the floor, in one short run.

    python -m devstack.bench.hit_cost --rate 300 --seconds 10

Makes a few receipts with a key of its own (a limit no run reaches: the figures are the read path's,
not the limiter's refusals, though every request still passes the limiter), warms both paths up,
then runs the same constant-rate vegeta load against the ingress and against the floor (bare aiohttp
+ one Redis GET, devstack/bench/floor_server.py) one after the other, and prints each one's CPU per
request (the process's user + system time over the requests served) and p50/p99. Bounded in time
and count; loopback only. `paystream bench receipts` is the full ladder; this is the quick check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from devstack.bench import tools
from devstack.bench.receipts import cpu_per_request, make_receipts
from devstack.settings import DevSettings

#: Beside the ingress's port, as the benchmark stack's floor (ingress port + 19).
FLOOR_PORT_OFFSET = 19
UNLIMITED = "10000000/second"


def _cli(*args: str) -> str:
    return subprocess.run([str(Path(sys.executable).with_name("paystream")), *args], check=True,
                          capture_output=True, text=True).stdout


def _ingress() -> tuple[str, int]:
    """The ingress process's own address (not the balancer's, which the floor does not have) and pid."""
    row = next(r for r in json.loads(_cli("pipeline", "status", "--json")) if r["service"] == "ingress")
    return row["address"], row["pid"]


def _step(vegeta: Path, name: str, targets: list[dict], rate: int, seconds: float, pid: int) -> dict:
    with cpu_per_request(pid) as cpu:
        step = tools.vegeta_step(vegeta, "hit_cost", name, targets, rate, seconds)
    return {"target": name, "ok": step.ok, "errors": step.errors, "p50_ms": step.p50_ms, "p99_ms": step.p99_ms,
            **cpu(step.ok + step.errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--receipts", type=int, default=20)
    args = parser.parse_args()
    if args.seconds > 20:
        parser.error("keep a run short (the machine is shared): --seconds 20 at most")
    settings = DevSettings()
    key = _cli("apikey", "create", "--account", "dev", "--rate-limit", UNLIMITED).split()[-1]
    receipts = asyncio.run(make_receipts(settings, key, args.receipts))
    address, pid = _ingress()
    ours = [{"method": "GET", "header": {"Authorization": [f"Bearer {key}"]},
             "url": f"{address}/v1/getReceipt?receipt_id={r['receipt_id']}&user_id={r['user_id']}"}
            for r in receipts]
    floor_port = settings.ingress_port + FLOOR_PORT_OFFSET
    floor_targets = [{"method": "GET", "url": f"http://127.0.0.1:{floor_port}/get"
                                              f"?key=receipt:dev:{r['user_id']}:{r['receipt_id']}"} for r in receipts]
    floor = subprocess.Popen([sys.executable, "-m", "devstack.bench.floor_server", "--port", str(floor_port),
                              "--redis-url", settings.redis_url, "--loop", settings.ingress_event_loop],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vegeta = tools.vegeta(settings)
    try:
        time.sleep(1.0)
        tools.vegeta_step(vegeta, "warmup", "", ours, args.rate, 2)
        tools.vegeta_step(vegeta, "warmup", "", floor_targets, args.rate, 2)
        results = [_step(vegeta, "paystream getReceipt (hit)", ours, args.rate, args.seconds, pid),
                   _step(vegeta, "floor: aiohttp + Redis GET", floor_targets, args.rate, args.seconds, floor.pid)]
    finally:
        floor.terminate()
        floor.wait()
    for row in results:
        print(json.dumps(row))
    ours_cpu, floor_cpu = (r.get("cpu_us_per_request") for r in results)
    if ours_cpu and floor_cpu:
        print(f"CPU per hit: paystream {ours_cpu} µs, floor {floor_cpu} µs: paystream at "
              f"{floor_cpu / ours_cpu:.0%} of the floor's efficiency")


if __name__ == "__main__":
    main()
