"""Status reads from the workers' payments table over their internal pages (the PaymentTable port).

Any worker will do: the one asked forwards the query to the worker that holds
the payment's partition (Faust's table routing). The page needs the internal
token and serves only the owner's public view of a payment.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from paystream.domain.errors import Unavailable
from paystream.domain.records import PaymentView
from paystream.observability import metrics
from paystream.observability.logs import get_logger

log = get_logger("paystream.worker_table")


def payment_path(payment_id: str) -> str:
    return f"/tables/payments/{quote(payment_id, safe='')}/"


class WorkerTableClient:
    def __init__(self, urls: list[str], token: str, timeout_s: float = 2.0) -> None:
        self.urls = urls
        self._headers = {"Authorization": f"Bearer {token}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_payment(self, payment_id: str, account: str, user_id: str | None) -> PaymentView | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self._headers)
        failures = []
        for url in self.urls:
            try:
                params = {"account": account, **({"user_id": user_id} if user_id is not None else {})}
                async with self._session.get(url + payment_path(payment_id), params=params) as resp:
                    body = await resp.json(content_type=None) if resp.content_type == "application/json" else {}
                    if resp.status == 200:
                        return PaymentView.model_validate(body)
                    if resp.status == 404 and (body.get("error") or {}).get("code") == "payment_not_found":
                        return None
                    failures.append(f"{url}: HTTP {resp.status}")
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                failures.append(f"{url}: {type(exc).__name__}")
        metrics.WORKER_QUERY_ERRORS.inc()
        log.warning("no worker could answer a status read", payment_id=payment_id, failures=failures)
        raise Unavailable("payment_state_unavailable", "the payment's state cannot be read right now; retry shortly")
