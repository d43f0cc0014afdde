"""Starts, stops and probes the local stack's services."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from devstack import envfile
from devstack.settings import DevSettings
from devstack.stack import instances
from devstack.stack.balancer import Balancer
from devstack.stack.base import Service
from devstack.stack.couchbase_cluster import CouchbaseCluster
from devstack.stack.errors import StackError
from devstack.stack.pipeline import AnalyticsProcess, IngressProcess, MonitorProcess, SinksProcess, WorkerProcess

__all__ = ["GROUPS", "Stack", "StackError", "as_dicts"]
from devstack.stack.kafka_broker import KafkaBroker
from devstack.stack.paypal_sandbox import PayPalSandbox
from devstack.stack.process import PidRecord, port_in_use, read_pid, spawn, tail, terminate
from devstack.stack.redis_server import RedisServer
from devstack.stack.stripe_sandbox import StripeSandbox
from devstack.stack.supervision import LIVE, Supervisor

SERVICE_TYPES: tuple[type[Service], ...] = (KafkaBroker, CouchbaseCluster, RedisServer, StripeSandbox, PayPalSandbox,
                                                Balancer)
PIPELINE_TYPES: tuple[type[Service], ...] = (MonitorProcess, WorkerProcess, AnalyticsProcess, SinksProcess,
                                              IngressProcess)
#: What `paystream stack` and `paystream pipeline` manage, in start order.
GROUPS = {"stack": SERVICE_TYPES, "pipeline": PIPELINE_TYPES}


@dataclass
class ServiceStatus:
    service: str
    address: str
    pid: int | None
    state: str  # running | stopped | external
    healthy: bool
    detail: str


class Stack:
    """A group of services started in order and stopped in reverse order."""

    def __init__(self, settings: DevSettings, say: Callable[[str], None] = print,
                 types: tuple[type[Service], ...] = SERVICE_TYPES) -> None:
        self.settings = settings
        self.say = say
        self.services = {t.name: t(settings) for t in types}

    def select(self, names: Iterable[str] | None) -> list[Service]:
        known = tuple(self.services)
        names = list(names or known)
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise StackError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return [self.services[n] for n in known if n in names]

    def running(self, service: Service) -> PidRecord | None:
        record = read_pid(service.pid_path)
        return record if record and record.alive() else None

    # How a service's process is started and stopped: detached, tracked by a pid file.
    # (The pipeline's processes run under supervisord instead: PipelineStack.)
    def _launch(self, services: list[Service]) -> None:
        """Nothing to prepare before starting these services one by one."""

    def _start(self, service: Service) -> Callable[[], str | None]:
        """Start one service; return a check that says why it exited while starting, or None."""
        service.prepare()
        proc = spawn(service.command(), log_path=service.log_path, pid_path=service.pid_path,
                     marker=service.marker, env=service.env(), niceness=service.niceness)

        def exited() -> str | None:
            return None if proc.poll() is None else f"exited with status {proc.returncode}"

        return exited

    def _stop(self, service: Service) -> None:
        record = read_pid(service.pid_path)
        if record and record.alive():
            self.say(f"stopping {service.name} (pid {record.pid}) ...")
            terminate(record)
        service.pid_path.unlink(missing_ok=True)

    def _after_down(self) -> None:
        """Nothing outlives the services themselves."""

    # --- up ---------------------------------------------------------------
    def up(self, names: Iterable[str] | None = None) -> list[ServiceStatus]:
        selected = self.select(names)
        to_start = [s for s in selected if not s.external and self.running(s) is None]
        self._check_ports(to_start)
        for service in to_start:
            service.install()

        started: list[Service] = []
        try:
            self._launch(selected)
            # A program whose definition changed was stopped by the launch: started again here.
            to_start = [s for s in selected if s in to_start or (not s.external and self.running(s) is None)]
            for service in to_start:
                self.say(f"starting {service.name} ...")
                exited = self._start(service)
                started.append(service)
                self._wait_healthy(service, exited)
            for service in selected:
                # Already running (or being restarted by its supervisor): wait until it answers too.
                if service not in to_start and not service.external and not self._healthy(service):
                    self._wait_healthy(service, lambda: None)
            self._write_exports()
        except BaseException:
            # Nothing is left half-started: stop what this call started.
            for service in reversed(started):
                self._stop(service)
            self._after_down()
            raise
        return self.status([s.name for s in selected])

    def _check_ports(self, services: list[Service]) -> None:
        taken = [
            f"{service.name} needs {host}:{port}, which another process is using"
            for service in services for host, port in service.ports() if port_in_use(host, port)
        ]
        if taken:
            raise StackError(
                "cannot start the stack: " + "; ".join(taken)
                + ". Stop that process, or choose another port in the settings (see docs/dev-settings.md)."
            )

    def _wait_healthy(self, service: Service, exited: Callable[[], str | None]) -> None:
        deadline = time.monotonic() + self.settings.service_start_timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            why = exited()
            if why is not None:
                raise StackError(
                    f"{service.name} {why} while starting. "
                    f"Last lines of {service.log_path}:\n"
                    f"{tail(service.log_path)}"
                )
            try:
                detail = service.probe()
            except Exception as exc:  # any failed probe means "not yet"
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.5)
                continue
            self.say(f"{service.name} is up at {service.address} ({detail})")
            return
        raise StackError(
            f"{service.name} did not answer within {self.settings.service_start_timeout_s:.0f} s "
            f"(last probe: {last_error}). Last lines of {service.log_path}:\n{tail(service.log_path)}"
        )

    @staticmethod
    def _healthy(service: Service) -> bool:
        try:
            service.probe()
        except Exception:
            return False
        return True

    def _write_exports(self) -> None:
        """What paystream needs to reach the running services, into the env file's managed block."""
        exports = envfile.managed(self.settings.env_file)
        if not self.settings.internal_token.get_secret_value():
            # The worker's internal pages need a token; the dev stack makes one once.
            exports.setdefault("PAYSTREAM_INTERNAL_TOKEN", secrets.token_urlsafe(24))
        if not self.settings.user_token_secret.get_secret_value():
            # And a secret to sign user tokens with (POST /v1/user_tokens).
            exports.setdefault("PAYSTREAM_USER_TOKEN_SECRET", secrets.token_urlsafe(32))
        for service in self.services.values():
            if not service.external and self.running(service):
                exports.update(service.exports())
        if exports != envfile.managed(self.settings.env_file):
            envfile.write_managed(self.settings.env_file, exports)
            self.say(f"wrote {', '.join(sorted(exports))} to {self.settings.env_file}")

    # --- down -------------------------------------------------------------
    def down(self, names: Iterable[str] | None = None, purge: bool = False) -> None:
        for service in reversed(self.select(names)):
            self._stop(service)
            if purge and service.dir.exists():
                shutil.rmtree(service.dir)
                self.say(f"removed {service.dir}")
        self._after_down()

    # --- status -----------------------------------------------------------
    def status(self, names: Iterable[str] | None = None) -> list[ServiceStatus]:
        rows = []
        for service in self.select(names):
            record = None if service.external else self.running(service)
            state = "external" if service.external else ("running" if record else "stopped")
            healthy, detail = False, "not running"
            if service.external or record:
                try:
                    healthy, detail = True, service.probe()
                except Exception as exc:
                    detail = f"{type(exc).__name__}: {exc}"
            rows.append(ServiceStatus(
                service=service.name, address=service.address,
                pid=record.pid if record else None, state=state, healthy=healthy, detail=detail,
            ))
        return rows


class PipelineStack(Stack):
    """paystream's own processes, run by supervisord (devstack/stack/supervision.py): the same
    up / down / status, but a process that dies is started again without a command."""

    def __init__(self, settings: DevSettings, say: Callable[[str], None] = print,
                 types: tuple[type[Service], ...] = PIPELINE_TYPES, keep_running: bool = False) -> None:
        super().__init__(settings, say, types)
        #: Leave the running programs' definitions as they are (scaling adds and removes only).
        self.keep_running = keep_running
        # Ingress, worker and sinks as many times as recorded (devstack/stack/instances.py).
        self.services = {s.name: s for s in instances.expand(settings, types, instances.counts(settings))}
        self.supervisors = {tier: Supervisor(settings, behind_reads=tier) for tier in (False, True)}

    def supervisor_of(self, service: Service) -> Supervisor:
        return self.supervisors[service.behind_reads]

    def supervised(self) -> bool:
        """Whether any of the pipeline's supervisords runs."""
        return any(s.running() is not None for s in self.supervisors.values())

    def running(self, service: Service) -> PidRecord | None:
        info = self.supervisor_of(service).info(service.name)
        if info is None or info["statename"] not in LIVE or not info["pid"]:
            return None
        return PidRecord(info["pid"], service.marker)

    def _launch(self, services: list[Service]) -> None:
        for tier, supervisor in self.supervisors.items():
            programs = [s for s in self.services.values() if s.behind_reads == tier]
            if programs or supervisor.running() is not None:  # one left running drops what it no longer has
                supervisor.ensure(programs, keep_existing=self.keep_running)

    def _start(self, service: Service) -> Callable[[], str | None]:
        supervisor = self.supervisor_of(service)
        supervisor.start(service.name)

        def exited() -> str | None:
            info = supervisor.info(service.name)
            if info is None:
                return "is unknown to supervisord"
            return None if info["statename"] in LIVE else f"is {info['statename']} ({info['description']})"

        return exited

    def _stop(self, service: Service) -> None:
        record = self.running(service)
        if record is not None:
            self.say(f"stopping {service.name} (pid {record.pid}) ...")
        self.supervisor_of(service).stop(service.name)

    def _after_down(self) -> None:
        for supervisor in self.supervisors.values():
            if not supervisor.any_live():
                supervisor.shutdown()

    def status(self, names: Iterable[str] | None = None) -> list[ServiceStatus]:
        rows = super().status(names)
        for row in rows:
            info = self.supervisor_of(self.services[row.service]).info(row.service)
            if row.state == "stopped" and info is not None and info["statename"] == "FATAL":
                row.state, row.detail = "fatal", f"supervisord gave up: {info['description']}"
        return rows


def as_dicts(rows: list[ServiceStatus]) -> list[dict]:
    return [asdict(r) for r in rows]
