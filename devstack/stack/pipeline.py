"""paystream's own processes, managed like the stack's services: monitor, worker, analytics, sinks, ingress.

Ingress, worker and sinks can run as several instances (`paystream scale`): instance 1 keeps the
kind's name (`ingress`), instance n is `ingress-n`, with a port and data folder of its own.
"""

from __future__ import annotations

import json
import sys
import urllib.request

from devstack import envfile
from devstack.stack.balancer import Balancer
from devstack.stack.base import Service
from devstack.stack.instances import SCALABLE_KINDS, instance_name, limits


class _PaystreamProcess(Service):
    """`python -m paystream.cli <name>`, answering HTTP on a port from the settings."""

    host_setting = "ingress_host"
    port_setting: str
    probe_path: str
    probe_field: str
    #: The setting that names an instance's port (PAYSTREAM_<upper>), for kinds that scale.
    instance_port: str | None = None

    def __init__(self, settings, instance: int = 1) -> None:
        self.kind = type(self).name
        self.instance = instance
        self.name = instance_name(self.kind, instance)
        super().__init__(settings)

    @property
    def host(self) -> str:
        return getattr(self.settings, self.host_setting)

    @property
    def port(self) -> int:
        if self.instance_port is None:
            return getattr(self.settings, self.port_setting)
        return getattr(self.settings, self.instance_port)(self.instance)

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def marker(self) -> str:
        # Arguments are NUL-separated in /proc/<pid>/cmdline.
        return f"paystream.cli\0{self.kind}"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "paystream.cli", self.kind]

    def env(self) -> dict[str, str]:
        # What the stack learned (the cluster's address), given outright: an
        # isolated stack's env file is not the .env paystream would read.
        data_dir = self.settings.pipeline_data_dir
        if self.instance > 1:  # a worker's tables are its own (RocksDB allows one process per folder)
            data_dir = data_dir / self.name
        env = {**envfile.managed(self.settings.env_file), "PAYSTREAM_DATA_DIR": str(data_dir.resolve())}
        if self.instance_port is not None:
            env[f"PAYSTREAM_{self.port_setting.upper()}"] = str(self.port)
        return env

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def probe(self) -> str:
        with urllib.request.urlopen(f"{self.address}{self.probe_path}", timeout=3) as response:
            return f"{self.probe_field} {json.load(response)[self.probe_field]}"


class MonitorProcess(_PaystreamProcess):
    name = "monitor"
    behind_reads = True
    host_setting, port_setting = "monitor_host", "monitor_port"
    probe_path, probe_field = "/api/status", "overall"

    def env(self) -> dict[str, str]:
        # Every instance `paystream scale` may start is the monitor's to scrape (each on a port of its own).
        s = self.settings
        ports = [s.ingress_instance_port(n) for n in range(1, limits(s)["ingress"] + 1)]
        ports += [s.worker_instance_port(n) for n in range(1, limits(s)["worker"] + 1)]
        ports += [s.sinks_instance_port(n) for n in range(1, limits(s)["sinks"] + 1)]
        ports += [s.ingress_port, s.second_worker_web_port]
        urls = ",".join(f"http://{s.ingress_host}:{port}/metrics" for port in dict.fromkeys(ports))
        return {**super().env(), "PAYSTREAM_MONITOR_SCRAPE_URLS": urls}


class WorkerProcess(_PaystreamProcess):
    name = "worker"
    behind_reads = True
    port_setting, instance_port = "worker_web_port", "worker_instance_port"
    # 200 only once partitions are assigned and the table is recovered.
    probe_path, probe_field = "/ready/", "status"


class AnalyticsProcess(_PaystreamProcess):
    name = "analytics"
    behind_reads = True
    port_setting = "analytics_port"
    probe_path, probe_field = "/ready/", "status"


class SinksProcess(_PaystreamProcess):
    name = "sinks"
    behind_reads = True
    port_setting, instance_port = "sinks_web_port", "sinks_instance_port"
    probe_path, probe_field = "/ready/", "status"


class IngressProcess(_PaystreamProcess):
    name = "ingress"
    # Every instance on a port of its own: the balancer owns the ingress port (devstack/stack/balancer.py).
    port_setting, instance_port = "ingress_port", "ingress_instance_port"
    probe_path, probe_field = "/health", "status"

    def probe(self) -> str:
        detail = super().probe()
        # Ready once the balancer sends it requests too (its checks take a moment to say UP), where
        # the balancer runs and knows this instance.
        try:
            state = Balancer(self.settings).servers().get(self.name)
        except OSError:
            return detail
        if state is not None and state["status"] != "UP":
            raise RuntimeError(f"the balancer has it {state['status']}")
        return detail + ("" if state is None else ", in the balancer's rotation")


#: The kinds `paystream scale` changes the number of, with the setting giving their default count.
SCALABLE = {"ingress": IngressProcess, "worker": WorkerProcess, "sinks": SinksProcess}
assert tuple(SCALABLE) == SCALABLE_KINDS
