"""Which process saturates first, and a py-spy profile of it, during a benchmark's top step."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


class Profiler:
    def __init__(self, pids: dict[str, int], out: Path) -> None:
        self.pids = pids
        self.out = out
        self.findings: dict[str, dict] = {}

    @contextlib.contextmanager
    def __call__(self, suite: str, seconds: float):
        """Measure every process's CPU for a second, then profile the hottest for the rest of the step."""
        thread = threading.Thread(target=self._run, args=(suite, seconds), daemon=True)
        thread.start()
        try:
            yield
        finally:
            thread.join()

    def keep(self, suite: str, step: str) -> None:
        """Keep the finding of one step (the first past its target) as the suite's; drop the others."""
        steps = {k: v for k, v in self.findings.items() if k.startswith(f"{suite}@")}
        for key, finding in steps.items():
            del self.findings[key]
            if key != step and finding.get("profile", "").endswith(".svg"):
                (self.out / finding["profile"]).unlink(missing_ok=True)
        if step in steps:
            self.findings[suite] = {**steps[step], "step": step}

    def _run(self, suite: str, seconds: float) -> None:
        time.sleep(min(1.0, seconds / 4))
        procs = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(psutil.Error):
                procs[name] = psutil.Process(pid)
                procs[name].cpu_percent(None)
        window = min(1.0, seconds / 4)
        time.sleep(window)
        cpu = {}
        for name, proc in procs.items():
            with contextlib.suppress(psutil.Error):
                cpu[name] = round(proc.cpu_percent(None), 1)
        if not cpu:
            return
        hottest = max(cpu, key=cpu.get)
        finding = {"cpu_percent": cpu, "hottest": hottest, "profile": None}
        duration = max(1, int(seconds - 2 * window - 1))
        spy = shutil.which("py-spy") or next(
            (str(p) for p in [Path(sys.executable).with_name("py-spy")] if p.exists()), None)
        if hottest in ("kafka", "couchbase", "redis"):
            finding["profile"] = f"not profiled: {hottest} is not a Python process"
        elif spy:
            svg = self.out / f"profile-{suite.replace('@', '-at-')}-{hottest}.svg"
            result = subprocess.run([spy, "record", "--pid", str(self.pids[hottest]), "--duration", str(duration),
                                     "--rate", "50", "--nonblocking", "--format", "flamegraph", "-o", str(svg)],
                                    capture_output=True, text=True)
            finding["profile"] = svg.name if svg.exists() else f"py-spy failed: {result.stderr.strip()[-300:]}"
        self.findings[suite] = finding
