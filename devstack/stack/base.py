"""What every service of the local stack provides to the stack manager."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from devstack.settings import DevSettings
from devstack.stack.errors import StackError


class Service(ABC):
    name: str
    #: When True the service runs elsewhere (a real cluster) and is only probed.
    external: bool = False
    #: When True the process runs behind the read path at a lower CPU priority (`pipeline_nice`): on one
    #: machine, payments and derived views take what the ingress, HAProxy and Redis leave (docs/admission.md).
    #: `spawn(niceness=...)` lowers a service of its own; the pipeline's run under the lowered supervisord.
    behind_reads: bool = False

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.dir = settings.state_dir / self.name

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.dir / "pid"

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients connect: host:port, URL or connection string."""

    @property
    @abstractmethod
    def marker(self) -> str:
        """A string found in the command line of this service's process."""

    def ports(self) -> list[tuple[str, int]]:
        """Fixed ports that must be free before the service starts."""
        return []

    def install(self) -> None:
        """Fetch or build what the service runs; fast when already done."""

    def prepare(self) -> None:
        """Write config and initialise data before each start."""

    @abstractmethod
    def command(self) -> list[str]: ...

    @property
    def niceness(self) -> int:
        return self.settings.pipeline_nice if self.behind_reads else 0

    def env(self) -> dict[str, str]:
        """Environment of the service's process, on top of ours."""
        return {}

    def exports(self) -> dict[str, str]:
        """Settings paystream's processes need to reach this service, learned once it runs
        (written into the env file's managed block)."""
        return {}

    @abstractmethod
    def probe(self) -> str:
        """Make one real request; return a short detail or raise on failure."""


def require_tool(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"`{tool}` was not found on PATH: {hint}")
    return path
