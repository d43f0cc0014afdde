"""paystream's own processes, managed like the stack's services: ingress, worker, sinks."""

from __future__ import annotations

import json
import sys
import urllib.request

from paystream.stack.base import Service


class _PaystreamProcess(Service):
    subcommand: str

    @property
    def marker(self) -> str:
        # Arguments are NUL-separated in /proc/<pid>/cmdline.
        return f"paystream.cli\0{self.subcommand}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "paystream.cli", self.subcommand]

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def _get(self, url: str) -> dict:
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.load(response)


class IngressProcess(_PaystreamProcess):
    name = "ingress"
    subcommand = "ingress"

    @property
    def address(self) -> str:
        return f"http://{self.settings.ingress_host}:{self.settings.ingress_port}"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.ingress_host, self.settings.ingress_port)]

    def probe(self) -> str:
        return self._get(f"{self.address}/health")["status"]


class _FaustProcess(_PaystreamProcess):
    @property
    def web_port(self) -> int:
        return getattr(self.settings, f"{self.name}_web_port")

    @property
    def address(self) -> str:
        return f"http://{self.settings.ingress_host}:{self.web_port}"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.ingress_host, self.web_port)]

    def probe(self) -> str:
        return self._get(f"{self.address}/ready/")["status"]


class WorkerProcess(_FaustProcess):
    name = "worker"
    subcommand = "worker"


class SinksProcess(_FaustProcess):
    name = "sinks"
    subcommand = "sinks"


class MonitorProcess(_PaystreamProcess):
    name = "monitor"
    subcommand = "monitor"

    @property
    def address(self) -> str:
        return f"http://{self.settings.monitor_host}:{self.settings.monitor_port}"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.monitor_host, self.settings.monitor_port)]

    def probe(self) -> str:
        return f"overall {self._get(f'{self.address}/api/status')['overall']}"
