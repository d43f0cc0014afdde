"""paystream's own processes, managed like the stack's services: monitor, worker, analytics, sinks, ingress."""

from __future__ import annotations

import json
import sys
import urllib.request

from devstack import envfile
from devstack.stack.base import Service


class _PaystreamProcess(Service):
    """`python -m paystream.cli <name>`, answering HTTP on a port from the settings."""

    host_setting = "ingress_host"
    port_setting: str
    probe_path: str
    probe_field: str

    @property
    def host(self) -> str:
        return getattr(self.settings, self.host_setting)

    @property
    def port(self) -> int:
        return getattr(self.settings, self.port_setting)

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def marker(self) -> str:
        # Arguments are NUL-separated in /proc/<pid>/cmdline.
        return f"paystream.cli\0{self.name}"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "paystream.cli", self.name]

    def env(self) -> dict[str, str]:
        # What the stack learned (the cluster's address), given outright: an
        # isolated stack's env file is not the .env paystream would read.
        return {**envfile.managed(self.settings.env_file),
                "PAYSTREAM_DATA_DIR": str(self.settings.pipeline_data_dir.resolve())}

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def probe(self) -> str:
        with urllib.request.urlopen(f"{self.address}{self.probe_path}", timeout=3) as response:
            return f"{self.probe_field} {json.load(response)[self.probe_field]}"


class MonitorProcess(_PaystreamProcess):
    name = "monitor"
    host_setting, port_setting = "monitor_host", "monitor_port"
    probe_path, probe_field = "/api/status", "overall"


class WorkerProcess(_PaystreamProcess):
    name = "worker"
    port_setting = "worker_web_port"
    # 200 only once partitions are assigned and the table is recovered.
    probe_path, probe_field = "/ready/", "status"


class AnalyticsProcess(_PaystreamProcess):
    name = "analytics"
    port_setting = "analytics_port"
    probe_path, probe_field = "/ready/", "status"


class SinksProcess(_PaystreamProcess):
    name = "sinks"
    port_setting = "sinks_web_port"
    probe_path, probe_field = "/ready/", "status"


class IngressProcess(_PaystreamProcess):
    name = "ingress"
    port_setting = "ingress_port"
    probe_path, probe_field = "/health", "status"
