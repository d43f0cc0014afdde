"""Worker and analytics processes of their own for the analytics tests, on topics of their own.

Each test cluster has its own topic prefix and Faust app ids, so its
processes see only the payments the test makes, and the pipeline `make run`
started goes on untouched. They are started from the test (not through the
dev stack's process manager), each with its own web port and data folder:
workers on the settings' worker port plus 50, 51, ..., analytics processes on
the analytics port plus 60, 61, ... (inside this checkout's band of ports).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient

from devstack.settings import DevSettings
from paystream.domain.commands import CommandReply, PostPayment, StartPayment
from paystream.domain.money import Money
from tests.conftest import ROOT

PORT_OFFSETS = {"worker": 50, "analytics": 60}


@dataclass
class TestWorker:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    kind: str = "worker"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "paystream.cli", self.kind], cwd=ROOT,
                                            env={**os.environ, **self.env}, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{self.url}/ready/", timeout=2) as response:
                    if json.load(response)["status"] == "ready":
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM this worker (by its own pid), SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class AnalyticsCluster:
    def __init__(self, settings: DevSettings, folder: Path) -> None:
        run = uuid.uuid4().hex[:8]
        self.settings = settings
        self.prefix = f"analytics-test-{run}"
        self.app_ids = {"worker": f"analytics-test-worker-{run}", "analytics": f"analytics-test-analytics-{run}"}
        self.folder = folder
        self.processes: dict[str, list[TestWorker]] = {"worker": [], "analytics": []}
        self.topics = settings.model_copy(update={"topic_prefix": self.prefix}).topics

    @property
    def workers(self) -> list[TestWorker]:
        return self.processes["worker"]

    @property
    def analytics(self) -> list[TestWorker]:
        return self.processes["analytics"]

    def add(self, kind: str) -> TestWorker:
        """Start one more `paystream worker` or `paystream analytics` of this cluster."""
        n = len(self.processes[kind])
        base = self.settings.worker_web_port if kind == "worker" else self.settings.analytics_port
        port = base + PORT_OFFSETS[kind] + n
        env = {"PAYSTREAM_TOPIC_PREFIX": self.prefix, "PAYSTREAM_WORKER_ID": self.app_ids["worker"],
               "PAYSTREAM_ANALYTICS_ID": self.app_ids["analytics"], "PAYSTREAM_LOG_LEVEL": "WARNING",
               "PAYSTREAM_WORKER_WEB_PORT" if kind == "worker" else "PAYSTREAM_ANALYTICS_WEB_PORT": str(port),
               "PAYSTREAM_DATA_DIR": str(self.folder / f"{kind}-{n}")}
        process = TestWorker(f"{kind}-{n}", port, env, self.folder / f"{kind}-{n}.log", kind=kind)
        self.processes[kind].append(process)
        process.start()
        return process

    def close(self) -> None:
        for process in reversed(self.analytics + self.workers):
            process.stop()
        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, client_id="analytics-test")
        try:
            mine = [t for t in admin.list_topics()
                    if t.startswith((self.prefix + ".", *(app_id + "-" for app_id in self.app_ids.values())))]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()


def start_command(user_id: str, amount: str, currency: str, payment_type: str = "credit") -> StartPayment:
    key = uuid.uuid4().hex
    return StartPayment(command_id=f"cmd_{key}", payment_id=f"pay_{key[:24]}", account="acct_test", user_id=user_id,
                        email="analyst.test@example.com", requested_at="2026-11-25T10:00:00Z",
                        payment_type=payment_type, amount=Money.parse(amount, currency))


def post_command(start: StartPayment, started: CommandReply, payment_method: str) -> PostPayment:
    return PostPayment(command_id=f"cmd_{uuid.uuid4().hex}", payment_id=start.payment_id, account="acct_test", user_id=start.user_id,
                       email=start.email, requested_at=start.requested_at, payment_type=start.payment_type,
                       transaction_id=started.payment.transaction_id, amount=start.amount,
                       payment_method=payment_method)
