"""Runs localstripe, the Stripe API sandbox, on one loopback address.

localstripe's own `start()` binds every interface and pickles its whole store
to /tmp on every write. This launcher serves the same application on the
address it is given and keeps the store in the stack's state folder, saved at
most once a second and at shutdown, so the sandbox keeps its payments across
`stack down`/`up` as a real provider would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
from pathlib import Path

from aiohttp import web
from localstripe.resources import store
from localstripe.server import app

SAVE_INTERVAL_S = 1.0


class _DebouncedStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirty = False

    def load(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            data = pickle.loads(self.path.read_bytes())
            dict.clear(store)
            dict.update(store, data)

    def mark_dirty(self) -> None:
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(dict(store), protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(self.path)

    async def save_periodically(self, _app: web.Application):
        async def loop() -> None:
            while True:
                await asyncio.sleep(SAVE_INTERVAL_S)
                self.save()

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        self.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--dir", type=Path, help="the service's folder (names the process for `stack`)")
    parser.add_argument("--state-file", type=Path, help="keep the store here; without it, memory only")
    args = parser.parse_args()

    if args.state_file is None:
        store.dump_to_disk = lambda: None  # type: ignore[method-assign]
    else:
        persistence = _DebouncedStore(args.state_file)
        persistence.load()
        # localstripe calls store.dump_to_disk() after every write; make that cheap.
        store.dump_to_disk = persistence.mark_dirty  # type: ignore[method-assign]
        app.cleanup_ctx.append(persistence.save_periodically)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
