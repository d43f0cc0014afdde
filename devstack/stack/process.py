"""Detached processes tracked by pid files, and the probes that wait on them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PidRecord:
    pid: int
    # A word from the command line, so a recycled pid is never taken for ours.
    marker: str

    def alive(self) -> bool:
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        if self.marker.encode() not in cmdline:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"


def read_pid(path: Path) -> PidRecord | None:
    try:
        data = json.loads(path.read_text())
        return PidRecord(pid=int(data["pid"]), marker=str(data["marker"]))
    except (OSError, ValueError, KeyError):
        return None


def lower_priority(niceness: int) -> None:
    """Run this process (and what it starts) `niceness` lower. A process in a session of its own is its
    own scheduling group where the kernel groups by session (autogroup): its nice value then weighs
    only against its own threads, so the group's is lowered too."""
    if niceness <= 0:
        return
    os.nice(niceness)
    try:
        Path("/proc/self/autogroup").write_text(str(niceness))
    except OSError:
        pass  # no autogroup here: the process's own nice value is what counts


def spawn(
    cmd: list[str], *, log_path: Path, pid_path: Path, marker: str,
    env: dict[str, str] | None = None, cwd: Path | None = None, niceness: int = 0,
) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=cwd,
            # Its own session: the service outlives `stack up` and a Ctrl-C
            # in the terminal does not reach it.
            start_new_session=True,
            # After the new session is made, so a lowered group is the service's own.
            preexec_fn=(lambda: lower_priority(niceness)) if niceness else None,
        )
    pid_path.write_text(json.dumps({"pid": proc.pid, "marker": marker, "cmd": cmd}))
    return proc


def terminate(record: PidRecord, timeout: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not record.alive():
            return
        try:
            os.killpg(record.pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(record.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and record.alive():
            time.sleep(0.1)
    # Reap it if it happens to be our child (a `stack up` that failed midway).
    try:
        os.waitpid(record.pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError:
        return "(no log written)"


def wait_ports_free(ports: list[tuple[str, int]], timeout: float = 10.0) -> None:
    """A killed JVM's threads let go of its sockets a moment after its main thread is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(port_in_use(host, port) for host, port in ports):
        time.sleep(0.05)


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Until the process is gone (reaped when it is our child), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
