"""`pip install .` is a production install: paystream's packages only, no dev stack, no sandbox."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser

from tests.conftest import ROOT


def test_the_wheel_holds_no_dev_stack_and_needs_no_sandbox(tmp_path):
    # Built from a copy of the tree: setuptools leaves build/ behind, and a stale one would taint the wheel.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".stack", ".git", "build", "*.egg-info",
                                                                 "test-output", "__pycache__", ".paystream"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("paystream-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = Parser().parsestr(archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
                                     .decode())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()

    packages = {name.split("/")[0] for name in names if not name.startswith("paystream-")}
    assert packages == {"paystream", "ingress", "streams", "tables", "connectors", "monitor"}
    assert not any(name.endswith((".xml", ".go", "go.mod")) for name in names)
    requires = [r.split(";")[0].strip().lower() for r in metadata.get_all("Requires-Dist")
                if "extra ==" not in r]
    assert not any(r.startswith(("localstripe", "matplotlib", "py-spy", "pytest")) for r in requires)
    assert "paystream = paystream.cli:app" in entry_points
