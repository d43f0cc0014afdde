"""The monitor's own checks of the outside systems: one real request each."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import redis.asyncio as redis
from aiokafka.admin import AIOKafkaAdminClient

from paystream.settings import Settings

TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool
    detail: str


class Probes:
    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.http = http
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=TIMEOUT_S,
                                          socket_connect_timeout=TIMEOUT_S)
        self.kafka: AIOKafkaAdminClient | None = None

    async def close(self) -> None:
        await self.redis.aclose()
        if self.kafka is not None:
            await self.kafka.close()

    async def run_all(self) -> list[ProbeResult]:
        checks = [("kafka", self._kafka()), ("redis", self._redis()), ("provider", self._provider())]
        results = await asyncio.gather(*(self._guard(name, check) for name, check in checks))
        return [*results, *await self._couchbase_nodes()]

    async def _guard(self, name: str, check) -> ProbeResult:
        try:
            return ProbeResult(name, True, await asyncio.wait_for(check, TIMEOUT_S))
        except Exception as exc:  # any failure is the finding
            return ProbeResult(name, False, f"{type(exc).__name__}: {exc}"[:300])

    async def _kafka(self) -> str:
        if self.kafka is None:
            self.kafka = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap,
                                             request_timeout_ms=int(TIMEOUT_S * 1000))
            await self.kafka.start()
        cluster = await self.kafka.describe_cluster()
        return f"{len(cluster['brokers'])} broker(s)"

    async def _redis(self) -> str:
        await self.redis.ping()
        return "PONG"

    async def _provider(self) -> str:
        key = self.settings.stripe_api_key.get_secret_value()
        # The balance: one object whatever the history (a listing, even of one, costs the whole
        # store on the sandbox, and would block it every few seconds).
        async with self.http.get(f"{self.settings.stripe_api_base}/v1/balance",
                                 headers={"Authorization": f"Bearer {key}"}) as resp:
            resp.raise_for_status()
        return f"HTTP {resp.status}"

    async def _couchbase_nodes(self) -> list[ProbeResult]:
        """Each node of the cluster on its own: the design's writer and its two readers."""
        try:
            nodes = await self._node_urls()
        except Exception as exc:
            return [ProbeResult("couchbase", False, f"cluster unknown: {type(exc).__name__}: {exc}"[:300])]
        return list(await asyncio.gather(*(self._guard(f"couchbase {name}", self._node(url))
                                           for name, url in nodes)))

    async def _node_urls(self) -> list[tuple[str, str]]:
        """Every node the cluster itself lists, by its management address (asked of the first
        address that answers: a failed-over node's does not)."""
        error: Exception | None = None
        for base in self.settings.couchbase_mgmt_urls:
            try:
                pools = await self._get_json(f"{base}/pools/default")
            except Exception as exc:
                error = exc
                continue
            return [(f"node {n['hostname']}", f"http://{n['hostname']}") for n in pools["nodes"]]
        raise error

    async def _node(self, url: str) -> str:
        pools = await self._get_json(f"{url}/pools/default")
        return f"{len(pools.get('nodes', []))} nodes in its view"

    async def _get_json(self, url: str) -> dict:
        auth = aiohttp.BasicAuth(self.settings.couchbase_username, self.settings.couchbase_password.get_secret_value())
        async with self.http.get(url, auth=auth) as resp:
            resp.raise_for_status()
            return await resp.json(content_type=None)
