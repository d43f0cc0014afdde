"""Go tools the dev stack uses, built once with `go install` from the Go module proxy into the
tools folder (vegeta for load, kustomize for the Kubernetes manifests, stripe-mock for the contract
test), and Go modules whose files we read (the KEDA CRDs)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from devstack.settings import DevSettings
from devstack.stack.base import require_tool
from devstack.stack.errors import StackError

VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"
KUSTOMIZE = "sigs.k8s.io/kustomize/kustomize/v5@v5.7.1"
STRIPE_MOCK = "github.com/stripe/stripe-mock@v0.203.0"
KEDA = "github.com/kedacore/keda/v2@v2.18.1"


def installed(settings: DevSettings, package: str) -> Path:
    """The binary of `package@version`, built on first use (a binary per version, so a bump rebuilds)."""
    path, version = package.rsplit("@", 1)
    name = path.rstrip("/").split("/")[-1]
    if name.startswith("v") and name[1:].isdigit():  # .../kustomize/v5 -> kustomize
        name = path.rstrip("/").split("/")[-2]
    folder = settings.tools_path.resolve() / "bin" / f"{name}-{version}"
    binary = folder / name
    if not binary.exists():
        go = require_tool("go", f"install Go 1.21+ to build {name}")
        result = subprocess.run([go, "install", package], capture_output=True, text=True,
                                env={**os.environ, "GOBIN": str(folder)})
        if result.returncode != 0:
            raise StackError(f"`go install {package}` failed:\n{result.stderr[-2000:]}")
    return binary


def module_dir(module: str) -> Path:
    """Where the Go module cache holds `module@version` (downloaded on first use)."""
    go = require_tool("go", f"install Go 1.21+ to download {module}")
    result = subprocess.run([go, "mod", "download", "-json", module], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"`go mod download {module}` failed:\n{result.stderr[-2000:]}")
    return Path(json.loads(result.stdout)["Dir"])
