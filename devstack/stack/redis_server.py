"""Redis, Debian's redis-server, with append-only persistence for the receipt cache."""

from __future__ import annotations

import os
import shutil
import subprocess

from devstack.stack.base import Service
from devstack.stack.errors import StackError


class RedisServer(Service):
    name = "redis"

    @property
    def address(self) -> str:
        return self.settings.redis_url

    @property
    def marker(self) -> str:
        # redis-server rewrites its process title, keeping only its own name.
        return "redis-server"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.redis_host, self.settings.redis_port)]

    def install(self) -> None:
        if shutil.which("redis-server"):
            return
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise StackError("`redis-server` was not found on PATH: install it (Debian: apt-get install redis-server)")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
            result = subprocess.run(cmd, capture_output=True, text=True,
                                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if result.returncode != 0:
                raise StackError(f"`{' '.join(cmd)}` failed:\n{result.stderr[-2000:]}")

    def prepare(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            shutil.which("redis-server") or "redis-server",
            "--bind", self.settings.redis_host, "--port", str(self.settings.redis_port),
            "--dir", str((self.dir / "data").resolve()),
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
        ]

    def probe(self) -> str:
        import redis

        client = redis.Redis.from_url(self.address, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
            aof = client.config_get("appendonly").get("appendonly")
        finally:
            client.close()
        return f"PONG, appendonly={aof}"
