"""The card-payment provider sandbox: localstripe, a stateful Stripe API server.

localstripe's own `start()` binds every interface and pickles its whole store
to /tmp on every write. `python -m devstack.stack.stripe_sandbox` serves the
same application on the address it is given and keeps the store in the
stack's state folder, saved at most once a second and at shutdown, so the
sandbox keeps its payments across `stack down`/`up` as a real provider would.

It stays fast as it grows (docs/local-stack.md, "The Stripe sandbox stays fast"): localstripe lists a
kind of object by scanning every key of its store, and exports each charge with its refunds listed
that way, so every payment cost time in proportion to all the payments before it (13.7 s a call after
about 4,500). Here the store keeps its keys by kind as well, and lists read only their kind. The
periodic save pickles a copy-on-write snapshot in a forked child, so the server never stops to write.

For fault tests it adds `/_config/faults` (beside localstripe's own `/_config/`
pages, loopback only): `POST {"path_suffix": "/confirm", "hold_s": 30, "times": 1}`
makes the next matching request take effect and then hold its answer, as a
provider whose answer is lost on the way back; `GET` shows what is armed and
held, `DELETE` disarms. And `GET /_config/charges?payment_id=...` (repeatable):
for each payment id, every object that carries it in its metadata and every
charge made on one of them, however it came to be, with each charge's refunds, for
the tests' "charged once" and "refunded once" checks (Stripe itself would answer a
search on the metadata).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import sys
import urllib.request
from pathlib import Path

from devstack.stack.base import Service

SAVE_INTERVAL_S = 1.0


class StripeSandbox(Service):
    name = "stripe"

    @property
    def address(self) -> str:
        return self.settings.stripe_api_base

    @property
    def state_file(self) -> Path:
        return self.dir / "localstripe.pickle"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.stripe_host, self.settings.stripe_port)]

    def install(self) -> None:
        # stripe-mock, Stripe's own validating mock server, checks the connector's requests against
        # Stripe's published OpenAPI spec in the contract test (tests/integration/test_stripe_contract.py).
        from devstack import gotools

        gotools.installed(self.settings, gotools.STRIPE_MOCK)

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def marker(self) -> str:
        return f"{self.dir.resolve()}\0"

    def command(self) -> list[str]:
        state = ["--state-file", str(self.state_file.resolve())] if self.settings.stripe_sandbox_persist else []
        return [
            sys.executable, "-m", "devstack.stack.stripe_sandbox", "--host", self.settings.stripe_host,
            "--port", str(self.settings.stripe_port), "--dir", str(self.dir.resolve()), *state,
        ]

    def probe(self) -> str:
        request = urllib.request.Request(
            f"{self.address}/v1/payment_intents?limit=1",
            headers={"Authorization": f"Bearer {self.settings.stripe_api_key.get_secret_value()}"},
        )
        with urllib.request.urlopen(request, timeout=3) as response:
            body = json.load(response)
        return f"{body['total_count']} payment intents"


# --- the launcher, run as its own process ---------------------------------------
class _Faults:
    """Answers held back after the request took effect (see the module's docstring)."""

    def __init__(self) -> None:
        self.armed: list[dict] = []
        self.holding = 0

    def _take(self, request) -> float | None:
        for fault in self.armed:
            if request.method == "POST" and request.path.endswith(fault["path_suffix"]) and fault["times"] > 0:
                fault["times"] -= 1
                return fault["hold_s"]
        return None

    def install(self, app) -> None:
        from aiohttp import web

        @web.middleware
        async def hold_answers(request, handler):
            response = await handler(request)
            hold_s = self._take(request)
            if hold_s is not None:
                self.holding += 1
                try:
                    await asyncio.sleep(hold_s)
                finally:
                    self.holding -= 1
            return response

        async def arm(request):
            body = await request.json()
            self.armed.append({"path_suffix": str(body["path_suffix"]), "hold_s": float(body.get("hold_s", 30)),
                               "times": int(body.get("times", 1))})
            return web.json_response(self.state())

        async def show(request):
            return web.json_response(self.state())

        async def disarm(request):
            self.armed.clear()
            return web.json_response(self.state())

        app.middlewares.append(hold_answers)
        app.router.add_post("/_config/faults", arm)
        app.router.add_get("/_config/faults", show)
        app.router.add_delete("/_config/faults", disarm)

    def state(self) -> dict:
        return {"armed": [f for f in self.armed if f["times"] > 0], "holding": self.holding}


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def index_by_kind(store: dict) -> None:
    """Give localstripe's store an index by kind (`payment_intent`, `charge`, `refund`, ...), kept on
    every write, and make localstripe's listing read it instead of scanning the whole store."""
    from localstripe.resources import List, StripeObject

    class IndexedStore(type(store)):
        def reindex(self) -> None:
            self.kinds: dict[str, dict[str, object]] = {}
            for key, value in dict.items(self):
                self.kinds.setdefault(_kind(key), {})[key] = value

        def __setitem__(self, key, value) -> None:
            super().__setitem__(key, value)
            self.kinds.setdefault(_kind(key), {})[key] = value

        def __delitem__(self, key) -> None:
            super().__delitem__(key)
            self.kinds.get(_kind(key), {}).pop(key, None)

        def clear(self) -> None:
            super().clear()
            self.kinds = {}

    def list_all(cls, url, limit=None, starting_after=None, **kwargs):
        if kwargs:  # as localstripe's own
            from localstripe.errors import UserError

            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        listing = List(url, limit=limit, starting_after=starting_after)
        listing._list = list(store.kinds.get(cls.object, {}).values())  # the store's order, as a scan gives
        return listing

    store.__class__ = IndexedStore
    store.reindex()
    StripeObject._api_list_all = classmethod(list_all)


class _DebouncedStore:
    def __init__(self, path: Path, store: dict) -> None:
        self.path = path
        self.store = store
        self.dirty = False
        self.saver: int | None = None  # the forked child writing a snapshot

    def load(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            data = pickle.loads(self.path.read_bytes())
            dict.clear(self.store)
            dict.update(self.store, data)
        self.store.reindex()

    def mark_dirty(self) -> None:
        self.dirty = True

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(dict(self.store), protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(self.path)

    def _saver_done(self, block: bool) -> bool:
        if self.saver is None:
            return True
        pid, status = os.waitpid(self.saver, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.saver = None
        if os.waitstatus_to_exitcode(status) != 0:
            self.dirty = True  # that snapshot was not written: write the next
        return True

    def save_in_background(self) -> None:
        """A forked child pickles its copy-on-write snapshot of the store and writes it, as Redis's BGSAVE
        does; the server goes on answering (pickling 10,000 payments in the event loop took ~0.3 s)."""
        if not self._saver_done(block=False) or not self.dirty:
            return
        self.dirty = False
        pid = os.fork()
        if pid == 0:  # the child: write, and leave without running the parent's cleanup
            code = 1
            try:
                self._write()
                code = 0
            finally:
                os._exit(code)
        self.saver = pid

    def save(self) -> None:
        """The last save, at shutdown: after any child still writing, in this process."""
        self._saver_done(block=True)
        if self.dirty:
            self.dirty = False
            self._write()

    async def save_periodically(self, _app):
        async def loop() -> None:
            while True:
                await asyncio.sleep(SAVE_INTERVAL_S)
                self.save_in_background()

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        self.save()


def by_payment(objects, payment_ids: set[str]) -> dict[str, dict]:
    """For each payment id: the objects whose metadata carry it, and every charge made on one of them (its
    intent's charges, or a charge carrying the id itself), each as {id, status, amount, currency, on,
    refunds}, with the refunds made of that charge, each as {id, status, amount, refund_id} (`refund_id`:
    the paystream refund its metadata names, if any)."""
    found: dict[str, dict] = {pid: {"objects": [], "charges": []} for pid in payment_ids}
    owner: dict[str, str] = {}
    charges = []
    refunds: dict[str, list[dict]] = {}
    for thing in objects:
        metadata = getattr(thing, "metadata", None) or {}
        payment_id = metadata.get("payment_id")
        kind = getattr(thing, "object", None)
        if kind == "charge":
            charges.append((thing, payment_id))
        elif kind == "refund":
            refunds.setdefault(thing.charge, []).append({"id": thing.id, "status": thing.status,
                                                         "amount": thing.amount,
                                                         "refund_id": metadata.get("refund_id")})
        elif payment_id in found:
            found[payment_id]["objects"].append(thing.id)
            owner[thing.id] = payment_id
    for charge, payment_id in charges:
        payment_id = payment_id if payment_id in found else owner.get(getattr(charge, "payment_intent", None))
        if payment_id is not None:
            found[payment_id]["charges"].append({"id": charge.id, "status": charge.status, "amount": charge.amount,
                                                 "currency": charge.currency, "on": charge.payment_intent,
                                                 "refunds": refunds.get(charge.id, [])})
    return found


def _add_search(app, store) -> None:
    from aiohttp import web

    async def charges(request):
        return web.json_response(by_payment(list(store.values()), set(request.query.getall("payment_id", []))))

    app.router.add_get("/_config/charges", charges)


def main() -> None:
    from aiohttp import web
    from localstripe.resources import store
    from localstripe.server import app

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--dir", type=Path, help="the service's folder (names the process for `stack`)")
    parser.add_argument("--state-file", type=Path, help="keep the store here; without it, memory only")
    args = parser.parse_args()

    index_by_kind(store)
    if args.state_file is None:
        store.dump_to_disk = lambda: None  # type: ignore[method-assign]
    else:
        persistence = _DebouncedStore(args.state_file, store)
        persistence.load()
        # localstripe calls store.dump_to_disk() after every write; make that cheap.
        store.dump_to_disk = persistence.mark_dirty  # type: ignore[method-assign]
        app.cleanup_ctx.append(persistence.save_periodically)
    _Faults().install(app)
    _add_search(app, store)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
