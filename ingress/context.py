"""What every request handler can reach: the settings and the adapters bootstrap wired, each typed by its port
(paystream/ports.py), so the ingress never names a connector."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from paystream.bootstrap import IngressAdapters
from paystream.domain.sealing import ReplyKey
from paystream.settings import Settings


@dataclass(frozen=True)
class Context(IngressAdapters):
    """The adapters (each typed by its port) with this process's settings and reply key."""

    settings: Settings
    #: This process's ephemeral key: client secrets come back from the worker sealed to it.
    reply_key: ReplyKey


CONTEXT = web.AppKey("context", Context)


def context(request: web.Request) -> Context:
    return request.app[CONTEXT]
