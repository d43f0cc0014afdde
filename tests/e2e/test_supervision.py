"""Pipeline processes run under supervisord: a SIGKILLed one is back without a command, and one
that keeps dying is reported by the monitor as a crash loop (from its heartbeats alone)."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import aiohttp
import pytest

from tests.conftest import ROOT, paystream
from tests.kafka_probe import end_offsets, read_since
from tests.pipeline_procs import pid_of, pipeline_rows, wait_gone, wait_restarted
from tests.waits import all_up, wait_for


@pytest.mark.parametrize("name", ["sinks", "ingress", "monitor"])
async def test_a_killed_process_is_back_without_a_command(pipeline, settings, name):
    pid = pid_of(name)
    os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(wait_gone, pid)
    row = await asyncio.to_thread(wait_restarted, name, pid)

    assert row["state"] == "running" and row["healthy"]
    folder = "supervisor" if name == "ingress" else "supervisor-behind"  # the read path's supervisord, or the other
    supervisor_log = (ROOT / settings.state_dir / folder / "supervisord.log").read_text()
    assert f"exited: {name} (terminated by SIGKILL; not expected)" in supervisor_log


async def component(monitor_url: str, kind: str) -> dict | None:
    async with aiohttp.ClientSession() as http, http.get(f"{monitor_url}/api/status") as resp:
        body = await resp.json()
    return next((c for c in body["components"] if c["kind"] == kind), None)


async def test_a_process_that_keeps_dying_is_reported_as_a_crash_loop(pipeline, stack, settings):
    monitor_url = pipeline_rows()["monitor"]["address"]
    alerts_before = end_offsets(stack["kafka"]["address"], settings.topics.alerts)
    kills = settings.crash_loop_restarts
    try:
        async def knows(pid: int):
            seen = await component(monitor_url, "ingress")
            return seen if seen and seen["pid"] == pid else None

        for _ in range(kills):
            pid = pid_of("ingress")
            # Each restart is seen as one only by a monitor that knew the process before it (a monitor
            # restarted by the test before this one would take the first new pid for a first beat).
            assert await wait_for(lambda pid=pid: knows(pid), timeout=20), "the monitor does not know the ingress"
            os.kill(pid, signal.SIGKILL)
            await asyncio.to_thread(wait_gone, pid)
            new_pid = (await asyncio.to_thread(wait_restarted, "ingress", pid))["pid"]
            assert await wait_for(lambda new_pid=new_pid: knows(new_pid), timeout=20), \
                "the monitor never heard the restarted ingress"

        seen = await component(monitor_url, "ingress")
        assert seen["state"] == "crash_loop", seen
        async with aiohttp.ClientSession() as http, http.get(f"{monitor_url}/health") as resp:
            assert resp.status == 503

        alerts = [a for a in read_since(stack["kafka"]["address"], settings.topics.alerts, alerts_before)
                  if a["kind"] == "ingress"]
        # A slow restart may also be reported down (and up) in between.
        restarts = [a for a in alerts if a["state"] in ("restarted", "crash_loop")]
        states = [a["state"] for a in restarts]
        assert states[:kills] == ["restarted"] * (kills - 1) + ["crash_loop"], alerts
        assert f"{kills} restart(s) within" in restarts[kills - 1]["reason"]
    finally:
        # The monitor remembers restarts for a whole window; a fresh one lets later tests see all up.
        assert paystream("pipeline", "down", "monitor").returncode == 0
        assert paystream("pipeline", "up", "monitor").returncode == 0

    async def healthy():
        async with aiohttp.ClientSession() as http:
            async def get(path):
                async with http.get(monitor_url + path) as resp:
                    return resp.status, await resp.json()
            return await all_up(get)

    assert await wait_for(healthy, timeout=30)


def priorities_and_sessions() -> dict[str, tuple[int, int]] | None:
    """(nice value, session) of the ingress, the pipeline and Kafka as they run now; None while one of
    them is being restarted (an earlier test may have killed it)."""
    rows = {**pipeline_rows(), **{r["service"]: r for r in json.loads(paystream("stack", "status", "--json").stdout)}}
    try:
        return {name: (os.getpriority(os.PRIO_PROCESS, rows[name]["pid"]), os.getsid(rows[name]["pid"]))
                for name in ("ingress", "worker", "sinks", "analytics", "monitor", "kafka")}
    except (ProcessLookupError, TypeError):
        return None


async def test_what_runs_behind_the_reads_runs_at_a_lower_cpu_priority_than_the_ingress(pipeline, settings):
    # On one machine a read's ingress gets the CPU first (docs/admission.md): the payment pipeline, in a
    # supervisord and a session of its own, and Kafka run `pipeline_nice` lower.
    found = await wait_for(lambda: asyncio.to_thread(priorities_and_sessions), timeout=60, every=1)
    assert found is not None
    ingress_nice, ingress_session = found.pop("ingress")
    for name, (nice, session) in found.items():
        assert nice == ingress_nice + settings.pipeline_nice, name
        assert session != ingress_session, name
