"""The faults a chaos run injects, each on the local stack only (its recorded pids, 127.0.0.1).

A pipeline process is SIGKILLed and left to its supervisor; a service is
SIGKILLed and brought back with `paystream stack up NAME`, as an operator would
(the provider sandbox is restarted, not killed: it saves its state once a second);
a Couchbase node is failed over and later recovered; the store is wiped (the
local cluster keeps its data in memory: a restart wipes it) and left to the
sinks to rebuild; `stop-start` is `make stop` then `make run`;
`kill-one-of-two-workers` starts a second worker beside the supervised one and
SIGKILLs it once it holds partitions (they go back to the first).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from devstack.settings import DevSettings
from devstack.stack.couchbase_cluster import CouchbaseCluster
from devstack.stack.manager import PipelineStack, Stack
from devstack.stack.process import spawn, wait_gone, wait_ports_free

PIPELINE = ("worker", "analytics", "sinks", "ingress", "monitor")
SERVICES = ("kafka", "redis")
#: Every fault, in the order a full run injects them.
ALL = (*(f"kill-{name}" for name in PIPELINE), "kill-one-of-two-workers", *(f"kill-{name}" for name in SERVICES),
       "restart-stripe", "failover-couchbase", "wipe-store", "stop-start")
#: The short run in `make test`.
SHORT = ("kill-worker", "kill-analytics", "kill-sinks", "kill-ingress", "failover-couchbase", "wipe-store")


@dataclass
class Injected:
    name: str
    at: float  # monotonic
    detail: str = ""
    recovered_s: float | None = None


class Faults:
    def __init__(self, settings: DevSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say
        quiet = lambda line: None  # noqa: E731 - the stack's own progress lines are noise here
        self.stack = Stack(settings, say=quiet)
        self.pipeline = PipelineStack(settings, say=quiet)
        self.cluster = CouchbaseCluster(settings)

    def inject(self, name: str) -> Injected:
        """Do it; returns when the fault is in place (the caller then measures the way back)."""
        kind, _, target = name.partition("-")
        at = time.monotonic()
        if kind == "kill" and target in PIPELINE:
            pid = self._pid(self.pipeline, target)
            os.kill(pid, signal.SIGKILL)
            return Injected(name, at, f"SIGKILL pid {pid}; supervisord restarts it")
        if name == "kill-one-of-two-workers":
            pid = self._second_worker()
            os.kill(pid, signal.SIGKILL)
            return Injected(name, time.monotonic(), f"a second worker (pid {pid}) joined the group and was "
                                                    "SIGKILLed; its partitions go back to the first")
        if kind == "kill" and target in SERVICES:
            pid = self._pid(self.stack, target)
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid)
            wait_ports_free(self.stack.services[target].ports())
            self.stack.up([target])
            return Injected(name, at, f"SIGKILL pid {pid}; `paystream dev stack up {target}`")
        if name == "restart-stripe":
            # SIGTERM, not SIGKILL: the sandbox saves its state at most once a second and at shutdown,
            # and a real provider never forgets a charge; its restart is the fault.
            pid = self._pid(self.stack, "stripe")
            self.stack.down(["stripe"])
            self.stack.up(["stripe"])
            return Injected(name, at, f"pid {pid} stopped and started again")
        if name == "failover-couchbase":
            node = self.cluster.failover()
            return Injected(name, at, f"node {node['number']} failed over")
        if name == "wipe-store":
            self.stack.down(["couchbase"])
            self.stack.up(["couchbase"])
            return Injected(name, at, "the in-memory cluster restarted empty")
        if name == "stop-start":
            self.pipeline.down()
            self.stack.down()
            self.stack.up()
            self.pipeline.up()
            return Injected(name, at, "`make stop` then `make run` (the cluster comes back empty)")
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(ALL)}")

    def undo(self, injected: Injected) -> None:
        """What ends a fault that does not end by itself (a failed-over node is added back)."""
        if injected.name == "failover-couchbase":
            self.cluster.recover()

    def _second_worker(self) -> int:
        """Another `paystream worker` beside the supervised one (its own port and tables), once it
        holds partitions: the group then has two members."""
        s = self.settings
        folder = s.state_dir / "worker-2"
        folder.mkdir(parents=True, exist_ok=True)
        worker = self.pipeline.services["worker"]
        env = {**worker.env(), "PAYSTREAM_DATA_DIR": str((s.pipeline_data_dir / "worker-2").resolve()),
               "PAYSTREAM_WORKER_WEB_PORT": str(s.second_worker_web_port)}
        proc = spawn(worker.command(), log_path=folder / "worker-2.log", pid_path=folder / "pid",
                     marker="paystream.cli\0worker", env=env, niceness=worker.niceness)
        deadline = time.monotonic() + s.service_start_timeout_s
        url = f"http://{s.ingress_host}:{s.second_worker_web_port}/ready/"
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200 and worker.probe():
                        return proc.pid
            except OSError:
                pass
            time.sleep(0.5)
        proc.kill()
        raise RuntimeError(f"the second worker did not become ready; see {folder / 'worker-2.log'}")

    def healthy(self) -> bool:
        rows = self.stack.status() + self.pipeline.status()
        return all(r.healthy for r in rows)

    @staticmethod
    def _pid(group: Stack, name: str) -> int:
        record = group.running(group.services[name])
        if record is None:
            raise RuntimeError(f"{name} is not running")
        return record.pid

