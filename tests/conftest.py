"""Fixtures for tests that run against the real local stack.

Services are found through `paystream stack status --json`, never by guessing
ports. The session starts the stack when it is not up (idempotent).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from devstack.settings import DevSettings

ROOT = Path(__file__).resolve().parents[1]
PAYSTREAM = [sys.executable, "-m", "paystream.cli"]
#: The per-test limit (pytest-timeout, pyproject.toml); a test's own waits stay under it, so a slow run
#: fails with the test's own message rather than being cut off.
TEST_TIMEOUT_S = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["timeout"]
#: The longest single wait a test may make: its limit less a minute for its fixtures and checks.
LONGEST_WAIT_S = TEST_TIMEOUT_S - 60


def paystream(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `paystream` CLI as a user would, from the repo root."""
    return subprocess.run(
        [*PAYSTREAM, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def stack() -> dict[str, dict]:
    up = paystream("stack", "up")
    assert up.returncode == 0, f"stack up failed:\n{up.stdout}\n{up.stderr}"
    status = paystream("stack", "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    return {row["service"]: row for row in json.loads(status.stdout)}


@pytest.fixture(scope="session")
def settings(stack) -> DevSettings:
    """Read after `stack up`, which writes the cluster's address into .env."""
    return DevSettings()


@pytest.fixture(scope="session")
def api_key(stack) -> str:
    result = paystream("apikey")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def new_api_key(account: str, rate_limit: str | None = None) -> str:
    """A key for `account`, made as an operator makes one (`paystream apikey create`)."""
    made = paystream("apikey", "create", "--account", account, *(["--rate-limit", rate_limit] if rate_limit else []))
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="session")
def pipeline(stack, api_key) -> dict[str, dict]:
    """The worker, sinks and ingress, started (idempotently) as `make run` starts them."""
    up = paystream("pipeline", "up")
    assert up.returncode == 0, f"pipeline up failed:\n{up.stdout}\n{up.stderr}"
    status = paystream("pipeline", "status", "--json")
    return {row["service"]: row for row in json.loads(status.stdout)}


@pytest.fixture
async def api(pipeline, stack, api_key, settings):
    from tests.api_client import ApiClient

    client = ApiClient(pipeline["ingress"]["address"], api_key, stack["stripe"]["address"],
                       settings.stripe_api_key.get_secret_value())
    yield client
    await client.close()


@pytest.fixture(scope="session")
def couchbase_collection(stack, settings):
    from datetime import timedelta

    from couchbase.auth import PasswordAuthenticator
    from couchbase.cluster import Cluster
    from couchbase.options import ClusterOptions

    cluster = Cluster(stack["couchbase"]["address"], ClusterOptions(PasswordAuthenticator(
        settings.couchbase_username, settings.couchbase_password.get_secret_value())))
    cluster.wait_until_ready(timedelta(seconds=15))
    yield cluster.bucket(settings.couchbase_bucket).default_collection()
    cluster.close()


@pytest.fixture
def sandbox(stack, settings):
    from tests.stripe_client import SandboxClient

    return SandboxClient(stack["stripe"]["address"], settings.stripe_api_key.get_secret_value())


def closed_port() -> int:
    """A loopback port nothing listens on: a Redis that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def payment_call_paths() -> set[str]:
    """The paths of the calls the ingress counts as writes (its own bound): the API's and the aliases."""
    from ingress.middleware import WRITES
    from ingress.routes import OPERATIONS

    return {path for op in OPERATIONS if op.operation_id in WRITES for path in (op.path, *op.aliases)}
