"""supervisord runs paystream's pipeline processes: restarts with backoff, rotated logs.

Two supervisords per state folder: `.stack/supervisor/` runs the ingress and
`.stack/supervisor-behind/` what runs behind it, at a lower CPU priority (`Supervisor`);
each is started by the first `paystream pipeline up` and shut down by the `pipeline down`
that stops its last process. It is spoken to over its XML-RPC interface on a unix socket in that
folder, so two checkouts (or the benchmark stack) never share one.

A process that exits is started again at once; one that dies within
`pipeline_start_secs` of its start is retried after 1, 2, 3 ... s, and after
`pipeline_start_retries` such failures supervisord gives up (state FATAL), which
`pipeline status` shows. Crash loops of processes that run a while before dying
are the monitor's to report, from their heartbeats (monitor/state.py), so that
works the same under any supervisor.
"""

from __future__ import annotations

import configparser
import io
import os
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from devstack.settings import DevSettings
from devstack.stack.base import Service
from devstack.stack.errors import StackError
from devstack.stack.process import PidRecord, read_pid, spawn, terminate

#: supervisord's process states that mean "it runs or is about to".
LIVE = {"RUNNING", "STARTING", "BACKOFF"}
#: Variables a pipeline process takes from whoever runs `pipeline up` (ports, prefixes, ids).
PASSED_ON = ("PAYSTREAM_", "COUCHBASE_")


class Supervisor:
    """One supervisord. The pipeline has two: the read path's (the ingress) and, `behind_reads`, the one
    for what runs behind it (workers, sinks, analytics, the monitor), started `pipeline_nice` lower. Each
    runs in a session of its own, so where the kernel schedules by session (autogroup) the two are apart
    and the lowered one's processes take only what the ingress leaves."""

    def __init__(self, settings: DevSettings, behind_reads: bool = False) -> None:
        self.settings = settings
        self.behind_reads = behind_reads
        self.dir = settings.state_dir / ("supervisor-behind" if behind_reads else "supervisor")

    @property
    def config_path(self) -> Path:
        return self.dir / "supervisord.conf"

    @property
    def socket_path(self) -> Path:
        return self.dir / "supervisor.sock"

    @property
    def pid_path(self) -> Path:
        return self.dir / "pid"

    @property
    def log_path(self) -> Path:
        return self.dir / "supervisord.log"

    # --- the configuration ------------------------------------------------------------
    def render(self, services: Iterable[Service], kept: dict[str, dict[str, str]] | None = None) -> str:
        """The configuration; a program named in `kept` keeps that definition."""
        s = self.settings
        config = configparser.RawConfigParser()
        config["supervisord"] = {
            "logfile": str(self.log_path.resolve()), "logfile_maxbytes": str(s.pipeline_log_max_bytes),
            "logfile_backups": str(s.pipeline_log_backups), "pidfile": str((self.dir / "supervisord.pid").resolve()),
            "nodaemon": "true", "silent": "true", "loglevel": "info",
        }
        config["unix_http_server"] = {"file": str(self.socket_path.resolve()), "chmod": "0600"}
        config["rpcinterface:supervisor"] = {
            "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"}
        for service in services:
            if kept and service.name in kept:
                config[f"program:{service.name}"] = kept[service.name]
                continue
            config[f"program:{service.name}"] = {
                "command": " ".join(_quote(part) for part in service.command()),
                "directory": str(Path.cwd()),
                "environment": ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self._env(service).items())),
                "autostart": "false",
                "autorestart": "true",
                "startsecs": str(s.pipeline_start_secs),
                "startretries": str(s.pipeline_start_retries),
                "stopsignal": "TERM",
                "stopwaitsecs": "20",
                "stopasgroup": "true",
                "killasgroup": "true",
                "redirect_stderr": "true",
                "stdout_logfile": str(service.log_path.resolve()),
                "stdout_logfile_maxbytes": str(s.pipeline_log_max_bytes),
                "stdout_logfile_backups": str(s.pipeline_log_backups),
            }
        out = io.StringIO()
        config.write(out)
        return out.getvalue()

    def _env(self, service: Service) -> dict[str, str]:
        passed = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)}
        return {**passed, **service.env()}

    # --- supervisord itself -----------------------------------------------------------
    def running(self) -> PidRecord | None:
        record = read_pid(self.pid_path)
        return record if record and record.alive() else None

    def programs(self) -> dict[str, dict[str, str]]:
        """The programs of the configuration written last, by name."""
        config = configparser.RawConfigParser()
        if self.config_path.exists():
            config.read_string(self.config_path.read_text())
        return {name.removeprefix("program:"): dict(config[name]) for name in config.sections()
                if name.startswith("program:")}

    def ensure(self, services: list[Service], keep_existing: bool = False) -> None:
        """supervisord running with the configuration these services need now. With `keep_existing`
        the programs it has keep their definitions (and so keep running): only new ones are added and
        missing ones removed, whatever the caller's environment (`paystream scale`, the autoscaler)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for service in services:
            service.prepare()
        text = self.render(services, self.programs() if keep_existing else None)
        changed = not self.config_path.exists() or self.config_path.read_text() != text
        if changed:
            self.config_path.write_text(text)
        if self.running() is None:
            self.socket_path.unlink(missing_ok=True)
            proc = spawn([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config_path.resolve())],
                         log_path=self.dir / "supervisord.out", pid_path=self.pid_path,
                         marker=str(self.config_path.resolve()),
                         niceness=self.settings.pipeline_nice if self.behind_reads else 0)
            self._wait_answering(proc)
        elif changed:
            self._apply_config()

    def _wait_answering(self, proc: subprocess.Popen, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rpc().supervisor.getState()
                return
            except (OSError, xmlrpc.client.Fault) as exc:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise StackError(f"supervisord did not start ({exc}); see {self.log_path}") from None
                time.sleep(0.1)

    def _apply_config(self) -> None:
        """What `supervisorctl update` does: programs whose definition changed are replaced."""
        rpc = self.rpc()
        [[added, changed, removed]] = rpc.supervisor.reloadConfig()
        for name in changed + removed:
            self._stop(rpc, name)
            rpc.supervisor.removeProcessGroup(name)
        for name in changed + added:
            rpc.supervisor.addProcessGroup(name)

    def shutdown(self) -> None:
        record = self.running()
        if record is None:
            return
        try:
            self.rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Fault):
            pass
        deadline = time.monotonic() + 30
        while record.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        terminate(record)
        self.pid_path.unlink(missing_ok=True)

    def rpc(self) -> xmlrpc.client.ServerProxy:
        transport = SupervisorTransport(None, None, f"unix://{self.socket_path.resolve()}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    # --- its processes ----------------------------------------------------------------
    def info(self, name: str) -> dict | None:
        """supervisord's record of a program (state name, pid, ...), or None when it has none."""
        if self.running() is None:
            return None
        try:
            return self.rpc().supervisor.getProcessInfo(name)
        except (OSError, xmlrpc.client.Fault):
            return None

    def start(self, name: str) -> None:
        info = self.info(name)
        if info and info["statename"] in LIVE:
            return
        self.rpc().supervisor.startProcess(name, False)

    def stop(self, name: str) -> None:
        if self.running() is not None:
            self._stop(self.rpc(), name)

    @staticmethod
    def _stop(rpc: xmlrpc.client.ServerProxy, name: str) -> None:
        try:
            rpc.supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString and "BAD_NAME" not in fault.faultString:
                raise

    def any_live(self) -> bool:
        if self.running() is None:
            return False
        return any(p["statename"] in LIVE for p in self.rpc().supervisor.getAllProcessInfo())


def _quote(part: str) -> str:
    # supervisord splits `command` like a shell; our arguments are paths and words.
    return f'"{part}"' if any(c.isspace() for c in part) else part


def _escape(value: str) -> str:
    # supervisord expands %(name)s in its config and reads environment values as quoted strings.
    return value.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
