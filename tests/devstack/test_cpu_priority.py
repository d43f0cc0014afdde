"""On one machine what runs behind the read path runs at a lower CPU priority, so a read's ingress,
HAProxy and Redis get the CPU first (docs/admission.md); the read path's own processes run as they are."""

from __future__ import annotations

import os
from pathlib import Path

from devstack.settings import DevSettings
from devstack.stack.balancer import Balancer
from devstack.stack.kafka_broker import KafkaBroker
from devstack.stack.manager import PipelineStack
from devstack.stack.pipeline import AnalyticsProcess, IngressProcess, MonitorProcess, SinksProcess, WorkerProcess
from devstack.stack.process import PidRecord, spawn, terminate
from devstack.stack.redis_server import RedisServer


def settings(tmp_path, **given) -> DevSettings:
    return DevSettings(_env_file=None, state_dir=tmp_path, **given)


def test_what_runs_behind_reads_is_lowered_and_the_read_path_is_not(tmp_path):
    s = settings(tmp_path)
    for behind in (KafkaBroker(s), WorkerProcess(s), SinksProcess(s), AnalyticsProcess(s), MonitorProcess(s)):
        assert behind.niceness == 10, behind.name
    for reads in (IngressProcess(s), Balancer(s), RedisServer(s)):
        assert reads.niceness == 0, reads.name
    assert WorkerProcess(settings(tmp_path, pipeline_nice=0)).niceness == 0


def test_the_ingress_and_the_pipeline_have_a_supervisord_each(tmp_path):
    s = settings(tmp_path)
    stack = PipelineStack(s, say=lambda _: None)
    ingress, worker = stack.supervisor_of(IngressProcess(s)), stack.supervisor_of(WorkerProcess(s))
    assert ingress.dir != worker.dir
    assert not ingress.behind_reads and worker.behind_reads


def test_a_process_spawned_lowered_runs_lowered_in_its_own_session(tmp_path):
    proc = spawn(["sleep", "30"], log_path=tmp_path / "log", pid_path=tmp_path / "pid", marker="sleep",
                 niceness=7)
    try:
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7
        assert os.getsid(proc.pid) != os.getsid(0)
        autogroup = Path(f"/proc/{proc.pid}/autogroup")
        if autogroup.exists():  # a kernel that groups by session: the process's group is lowered too
            assert autogroup.read_text().split()[-1] == "7"
    finally:
        terminate(PidRecord(proc.pid, "sleep"))
