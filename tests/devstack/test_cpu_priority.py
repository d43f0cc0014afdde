"""On one machine the processes behind the read path start under `nice`, so a read's ingress, HAProxy and
Redis get the CPU first (docs/admission.md); the read path's own processes start as they are."""

from __future__ import annotations

from devstack.settings import DevSettings
from devstack.stack.balancer import Balancer
from devstack.stack.kafka_broker import KafkaBroker
from devstack.stack.pipeline import AnalyticsProcess, IngressProcess, MonitorProcess, SinksProcess, WorkerProcess
from devstack.stack.redis_server import RedisServer
from devstack.stack.supervision import Supervisor


def settings(tmp_path, **given) -> DevSettings:
    return DevSettings(_env_file=None, state_dir=tmp_path, **given)


def test_what_runs_behind_reads_starts_niced_and_the_read_path_does_not(tmp_path):
    s = settings(tmp_path)
    for behind in (KafkaBroker(s), WorkerProcess(s), SinksProcess(s), AnalyticsProcess(s), MonitorProcess(s)):
        assert behind.launch_command() == ["nice", "-n", "10", *behind.command()], behind.name
    for reads in (IngressProcess(s), Balancer(s), RedisServer(s)):
        assert reads.launch_command() == reads.command(), reads.name


def test_niceness_zero_starts_everything_as_it_is(tmp_path):
    s = settings(tmp_path, pipeline_nice=0)
    assert WorkerProcess(s).launch_command() == WorkerProcess(s).command()


def test_supervisord_runs_the_pipeline_niced_and_the_ingress_not(tmp_path):
    s = settings(tmp_path, pipeline_nice=7)
    config = Supervisor(s).render([WorkerProcess(s), IngressProcess(s)])
    worker, ingress = [line.removeprefix("command = ") for line in config.splitlines()
                       if line.startswith("command = ")]
    assert worker.startswith("nice -n 7 ") and worker.endswith("paystream.cli worker")
    assert not ingress.startswith("nice") and ingress.endswith("paystream.cli ingress")
