"""`pip install ./devstack` (not editable) beside paystream gives every dev command: the dev stack's wheel
holds every one of its packages, and the commands run from the installed copy, not from this tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

from tests.conftest import ROOT

IGNORED = shutil.ignore_patterns(".venv", ".stack", ".git", "build", "*.egg-info", "test-output", "__pycache__",
                                 ".paystream")


def source_packages() -> set[str]:
    """Every package of the dev stack in this tree: each folder holding an __init__.py."""
    base = ROOT / "devstack"
    return {".".join(("devstack", *p.parent.relative_to(base).parts)) for p in base.rglob("__init__.py")
            if ".venv" not in p.parts}


def test_a_non_editable_install_gives_every_dev_command_autoscale_included(tmp_path):
    # Built from a copy of the tree: setuptools leaves build/ behind, and a stale one would taint the wheel.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    wheels = tmp_path / "wheels"
    for project in (source, source / "devstack"):
        build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                                "-w", str(wheels), str(project)], capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
    (devstack_wheel,) = wheels.glob("paystream_devstack-*.whl")
    with zipfile.ZipFile(devstack_wheel) as archive:
        in_wheel = {name.rpartition("/")[0].replace("/", ".") for name in archive.namelist()
                    if name.endswith("/__init__.py")}
    assert in_wheel == source_packages()

    target = tmp_path / "installed"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              *map(str, wheels.glob("*.whl"))], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    # `-S`: no site-packages, so neither of this venv's editable installs (their .pth hooks) is seen; the
    # third-party packages come from the venv's site-packages, after the installed copy.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])}

    def paystream(*args: str) -> subprocess.CompletedProcess:
        code = "import sys; from paystream.cli import app; sys.argv = ['paystream', *sys.argv[1:]]; app()"
        return subprocess.run([sys.executable, "-S", "-c", code, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)

    where = subprocess.run([sys.executable, "-S", "-c", "import devstack, paystream; print(devstack.__file__); "
                            "print(paystream.__file__)"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout
    # Every module of the dev stack imports from the installed copy (a command's body imports them lazily,
    # so `--help` alone would not notice one missing).
    modules = sorted(".".join(("devstack", *p.relative_to(ROOT / "devstack").with_suffix("").parts))
                     .removesuffix(".__init__") for p in (ROOT / "devstack").rglob("*.py"))
    imported = subprocess.run([sys.executable, "-S", "-c", "import importlib, sys\nfor m in sys.argv[1:]: "
                               "importlib.import_module(m)", *modules], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
    assert imported.returncode == 0, imported.stderr
    listed = paystream("--help")
    assert listed.returncode == 0, listed.stderr
    autoscale = paystream(*dev_command("autoscale", listed.stdout), "--help")
    assert autoscale.returncode == 0, autoscale.stderr
    assert "Scale ingress" in autoscale.stdout


def dev_command(name: str, top_help: str) -> list[str]:
    """The words that reach a dev command: `paystream NAME`, or `paystream dev NAME` once the dev commands
    are a group of their own."""
    listed = {line.split()[1] for line in top_help.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    return [name] if name in listed else ["dev", name]
