"""Several ingress processes on one port without a balancer (PAYSTREAM_INGRESS_REUSE_PORT): the kernel
spreads new connections over them, the monitor tells them apart, and one stopped leaves the others
serving every new connection. (Stopped with SIGTERM: a SIGKILLed one, whose id names its pid, would
stay `down` in the monitor, which the later tests would see.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import psutil

from tests.conftest import PAYSTREAM, ROOT


def get(url: str) -> int:
    # A new connection each time: the kernel picks a listener per connection.
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status


def started(url: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:
        line = next(ln for ln in resp.read().decode().splitlines() if ln.startswith("process_start_time_seconds"))
    return float(line.split()[1])


def test_ingress_processes_share_a_port_with_so_reuseport(pipeline, settings):
    # The slot after the last ingress instance `paystream scale` may use: free.
    port = settings.ingress_instance_port(settings.ingress_max_instances + 1)
    env = {**os.environ, "PAYSTREAM_INGRESS_PORT": str(port), "PAYSTREAM_INGRESS_REUSE_PORT": "true"}
    logs = [open(ROOT / settings.state_dir / f"reuse-port-{n}.log", "wb") for n in (1, 2)]
    procs: list[subprocess.Popen] = []
    url = f"http://{settings.ingress_host}:{port}/health"
    try:
        for log in logs:  # one after the other: their start times (in /metrics) differ
            procs.append(subprocess.Popen([*PAYSTREAM, "ingress"], cwd=ROOT, env=env, stdout=log,
                                          stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 60
            while not any(c.status == "LISTEN" and c.laddr.port == port
                          for c in psutil.Process(procs[-1].pid).net_connections()):
                assert procs[-1].poll() is None and time.monotonic() < deadline, "not listening"
                time.sleep(0.5)
            time.sleep(1)
        assert [get(url) for _ in range(30)] == [200] * 30
        # Both answer: each /metrics (a new connection each) names its own process's start time.
        assert len({started(f"http://{settings.ingress_host}:{port}/metrics") for _ in range(30)}) == 2
        # Told apart by pid in their heartbeats, so the monitor sees two, never one restarting.
        wanted = {f"ingress@{os.uname().nodename}:{port}/{p.pid}" for p in procs}
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://{settings.monitor_host}:{settings.monitor_port}/api/status") as r:
                seen = {c["id"] for c in json.load(r)["components"] if c["state"] == "up"}
            if wanted <= seen:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.5)
        procs[0].send_signal(signal.SIGTERM)
        procs[0].wait(timeout=30)
        assert [get(url) for _ in range(30)] == [200] * 30
        procs[1].send_signal(signal.SIGTERM)
        procs[1].wait(timeout=30)
        # Each said it was stopping: the monitor forgot both.
        with urllib.request.urlopen(f"http://{settings.monitor_host}:{settings.monitor_port}/api/status") as r:
            assert wanted.isdisjoint(c["id"] for c in json.load(r)["components"])
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        for log in logs:
            log.close()
