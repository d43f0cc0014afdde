"""A throwaway stack and pipeline for benchmarks: own state folder, ports and topics.

Benchmarks leave no receipts, payments or sandbox charges in the stack that
`make run` started, and every run starts from the same empty state.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from devstack.bench import tuning as bench_tuning
from devstack.bench.load import paystream_payments
from devstack.settings import DevSettings
from devstack.stack.errors import StackError
from devstack.stack.process import port_in_use as _listening

#: The benchmark stack's ports are the main stack's plus this, so two checkouts with
#: different main ports never share a benchmark port either. Every one stays below the
#: kernel's ephemeral range (32768 and up), where a client socket could already hold it.
PORT_OFFSET = 20000
BENCH_ENV = {
    "PAYSTREAM_TOPIC_PREFIX": "bench",
    "PAYSTREAM_WORKER_ID": "bench-worker",
    "PAYSTREAM_SINKS_ID": "bench-sinks",
    "PAYSTREAM_ANALYTICS_ID": "bench-analytics",
    # The bench's own development key (account `dev`), registered in the bench's Redis at start,
    # and a limit no benchmark reaches: the figures are paystream's, not the limiter's refusals.
    "PAYSTREAM_DEV_API_KEY": "psk_dev_bench",
    "PAYSTREAM_RATE_LIMIT": "10000000/second",
    "PAYSTREAM_LOG_LEVEL": "WARNING",
    # localstripe would otherwise pickle its whole, growing store every second.
    "PAYSTREAM_STRIPE_SANDBOX_PERSIST": "false",
    # A worker rebuilding a table of a million payments takes minutes.
    "PAYSTREAM_SERVICE_START_TIMEOUT_S": "900",
}


class BenchStack:
    def __init__(self, root: Path, base: DevSettings, keep: bool = False, say=print, pipeline: bool = True,
                 provider: str = "sandbox", warm_up_s: float = 0.0) -> None:
        self.root = root
        #: Seconds of payments through the pipeline before anything is measured (see `warm_up`).
        self.warm_up_s = warm_up_s
        #: Who the pipeline charges: "sandbox" (localstripe) or "standin" (devstack/standin.py, latency
        #: of a real provider and no cap of its own), started here beside the stack.
        self.provider = provider
        self.standin: subprocess.Popen | None = None
        self.standin_base: str | None = None
        #: Without the pipeline: only the services (Kafka, Couchbase, Redis, the sandbox).
        self.pipeline = pipeline
        self.keep = keep
        self.say = say
        self.floor_port = base.ingress_port + PORT_OFFSET + 19  # 28099 beside the default ports
        self.env = {
            **BENCH_ENV,
            **base.shifted_ports(PORT_OFFSET),
            "PAYSTREAM_STATE_DIR": str((root / base.state_dir / "bench").resolve()),
            # Its own env file: the stack's learned addresses never reach the main stack's .env.
            "PAYSTREAM_ENV_FILE": str((root / base.state_dir / "bench" / "stack.env").resolve()),
            "PAYSTREAM_TOOLS_DIR": str((root / base.tools_path).resolve()),
        }
        self.status: dict[str, dict] = {}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env}
        env.pop("COUCHBASE_CONNSTR", None)  # the bench always runs its own cluster
        result = subprocess.run([sys.executable, "-m", "paystream.cli", *args], cwd=self.root, env=env,
                                capture_output=True, text=True)
        if check and result.returncode != 0:
            raise StackError(f"`paystream {' '.join(args)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result

    def __enter__(self) -> BenchStack:
        self.say("starting the benchmark stack and pipeline (ports 2xxxx, state .stack/bench) ...")
        self._saved_env = dict(os.environ)
        os.environ.update(self.env)
        os.environ.pop("COUCHBASE_CONNSTR", None)
        try:
            if self.cli("stack", "up", check=False).returncode != 0:
                # The previous suite's services may still be letting go of their ports.
                time.sleep(5)
                self.cli("stack", "up")
            if self.provider == "standin":
                self._start_standin()
            if self.pipeline:
                self.cli("apikey")
                self.cli("pipeline", "up")
        except BaseException as exc:
            self.__exit__(type(exc), exc, None)
            raise
        self.refresh()
        if self.pipeline and self.warm_up_s:
            self.warm_up()
        return self

    def warm_up(self) -> None:
        """Payments at a low rate through the fresh stack, not reported: a new Kafka spends more CPU
        compiling (its JIT) than serving in its first minute (measured: 5.9 s of compiler threads against
        3.6 s of request handling over the first 17 s at 25 payments/s), which the first steps would
        otherwise charge to paystream."""
        settings = self.settings()
        self.say(f"  warm-up: {bench_tuning.WARM_UP_RATE} payments/s for {self.warm_up_s:g} s, not reported")
        asyncio.run(paystream_payments(settings, bench_tuning.WARM_UP_RATE, self.warm_up_s))
        self.wait_drained()

    def _start_standin(self, latency_ms: str | None = None) -> None:
        settings = self.settings()
        latency_ms = latency_ms or settings.standin_latency_ms
        # Its address is fixed at its first start: after it the settings' provider base is the stand-in's own.
        self.standin_base = self.standin_base or settings.standin_base
        where = urlsplit(self.standin_base)
        log = Path(self.env["PAYSTREAM_STATE_DIR"]) / "standin.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.standin = subprocess.Popen(
                [sys.executable, "-m", "devstack.standin", "--host", where.hostname, "--port", str(where.port),
                 "--latency-ms", latency_ms], cwd=self.root, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not _listening(where.hostname, where.port):
            if self.standin.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"the provider stand-in did not start; see {log}")
            time.sleep(0.2)
        # From here on the pipeline (started next) and the floor measurements talk to the stand-in.
        self.env["PAYSTREAM_STRIPE_API_BASE"] = self.standin_base
        os.environ["PAYSTREAM_STRIPE_API_BASE"] = self.standin_base
        self.say(f"provider stand-in on {self.standin_base} (latency {latency_ms} ms)")

    def use_standin(self) -> None:
        """Charge the stand-in from here on: started, and the pipeline restarted to point at it."""
        if self.standin is not None:
            return
        self._start_standin()
        if self.pipeline:
            self.cli("pipeline", "down")
            self.cli("pipeline", "up")
            self.refresh()

    def set_standin_latency(self, latency_ms: str) -> None:
        """The stand-in again on its port with another latency per call (the pipeline keeps charging it;
        what it held in memory goes: call between steps, drained)."""
        if self.standin is not None:
            self.standin.terminate()
            self.standin.wait(timeout=10)
            self.standin = None
            where = urlsplit(self.standin_base)
            deadline = time.monotonic() + 10
            while _listening(where.hostname, where.port) and time.monotonic() < deadline:
                time.sleep(0.1)
        self._start_standin(latency_ms)

    def refresh(self) -> None:
        rows = json.loads(self.cli("stack", "status", "--json", check=False).stdout)
        rows += json.loads(self.cli("pipeline", "status", "--json", check=False).stdout)
        self.status = {r["service"]: r for r in rows}

    def pids(self, everything: bool = False) -> dict[str, int]:
        """paystream's own processes, or with `everything` the stack's services as well."""
        names = self.status if everything else ("ingress", "worker", "analytics", "sinks", "monitor")
        pids = {name: self.status[name]["pid"] for name in names if self.status.get(name, {}).get("pid")}
        if everything and self.standin is not None:
            pids["standin"] = self.standin.pid
        return pids

    def wait_drained(self, timeout_s: float = 180.0) -> float:
        """Wait until the worker has handled every queued command (an overloaded step leaves a
        backlog that would otherwise weigh on the next); returns the seconds waited."""
        started = time.monotonic()
        time.sleep(2.5)  # the lag gauges are refreshed with each heartbeat
        while time.monotonic() - started < timeout_s:
            try:
                with urllib.request.urlopen(f"{self.status['worker']['address']}/metrics", timeout=3) as resp:
                    text = resp.read().decode()
            except OSError:
                break  # no worker to wait for; the next measurement will say so
            lag = sum(s.value for family in text_string_to_metric_families(text)
                      for s in family.samples if s.name == "paystream_consumer_lag")
            if lag == 0:
                break
            time.sleep(1)
        return time.monotonic() - started

    def settings(self) -> DevSettings:
        return DevSettings(_env_file=None)

    def __exit__(self, exc_type, *exc) -> None:
        os.environ.clear()
        os.environ.update(self._saved_env)
        if self.keep:
            self.say(f"kept the benchmark stack running (state in {self.env['PAYSTREAM_STATE_DIR']})")
            return
        self.cli("pipeline", "down", check=False)
        if self.standin is not None:
            self.standin.terminate()
            self.standin.wait(timeout=10)
        self.cli("stack", "down", check=False)
        if exc_type is None:
            shutil.rmtree(self.env["PAYSTREAM_STATE_DIR"], ignore_errors=True)
        else:
            self.say(f"the benchmark failed; its logs stay in {self.env['PAYSTREAM_STATE_DIR']}")
