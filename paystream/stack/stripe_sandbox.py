"""The card-payment provider sandbox: localstripe, a stateful Stripe API server."""

from __future__ import annotations

import sys

from paystream.stack.base import Service


class StripeSandbox(Service):
    name = "stripe"

    @property
    def address(self) -> str:
        return self.settings.stripe_api_base

    @property
    def state_file(self):
        return self.dir / "localstripe.pickle"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.stripe_host, self.settings.stripe_port)]

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def marker(self) -> str:
        return f"{self.dir.resolve()}\0"

    def command(self) -> list[str]:
        state = ["--state-file", str(self.state_file.resolve())] if self.settings.stripe_sandbox_persist else []
        return [
            sys.executable, "-m", "paystream.stack.sandbox", "--host", self.settings.stripe_host,
            "--port", str(self.settings.stripe_port), "--dir", str(self.dir.resolve()), *state,
        ]

    def probe(self) -> str:
        import json
        import urllib.request

        request = urllib.request.Request(
            f"{self.address}/v1/payment_intents?limit=1",
            headers={"Authorization": f"Bearer {self.settings.stripe_api_key.get_secret_value()}"},
        )
        with urllib.request.urlopen(request, timeout=3) as response:
            body = json.load(response)
        return f"{body['total_count']} payment intents"
