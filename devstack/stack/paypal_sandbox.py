"""The PayPal provider sandbox: the stateful stand-in of devstack/paypal_standin.py, on its own port.

No PayPal sandbox can be installed (PayPal's is hosted), so `stack up` serves the stand-in, in memory
(a restart empties it: PayPal orders a test leaves behind are never read again). Its install step also
fetches what the stand-in's contract test needs: prism and PayPal's own OpenAPI documents (devstack/npmtools.py).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from urllib.parse import urlsplit

from devstack.stack.base import Service


class PayPalSandbox(Service):
    name = "paypal"

    @property
    def address(self) -> str:
        return self.settings.paypal_sandbox_base

    def ports(self) -> list[tuple[str, int]]:
        where = urlsplit(self.address)
        return [(where.hostname or "127.0.0.1", where.port or 8423)]

    def exports(self) -> dict[str, str]:
        """Where paystream reaches the stand-in, and dev credentials (it takes any client id and secret)."""
        return {"PAYSTREAM_PAYPAL_API_BASE": self.address, "PAYSTREAM_PAYPAL_CLIENT_ID": "paystream-dev",
                "PAYSTREAM_PAYPAL_SECRET": "paystream-dev-secret"}

    def install(self) -> None:
        from devstack import npmtools

        npmtools.installed(self.settings)
        npmtools.paypal_documents(self.settings)

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def marker(self) -> str:
        return f"{self.dir.resolve()}\0"

    def command(self) -> list[str]:
        (host, port), = self.ports()
        return [sys.executable, "-m", "devstack.paypal_standin", "--host", host, "--port", str(port),
                "--dir", str(self.dir.resolve())]

    def probe(self) -> str:
        request = urllib.request.Request(f"{self.address}/v1/oauth2/token", data=b"grant_type=client_credentials",
                                         headers={"Authorization": "Basic cHJvYmU6cHJvYmU="})  # probe:probe
        with urllib.request.urlopen(request, timeout=3) as response:
            body = json.load(response)
        return f"token for {body['expires_in']} s"
