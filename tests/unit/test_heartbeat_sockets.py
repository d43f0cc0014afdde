"""A heartbeat's count of the process's open sockets, read from its own descriptors."""

from __future__ import annotations

import socket

import psutil

from paystream.observability.heartbeat import open_sockets


def test_open_sockets_counts_the_sockets_this_process_opens_and_closes():
    process = psutil.Process()
    before = open_sockets(process)
    pair = socket.socketpair()
    try:
        assert open_sockets(process) == before + 2
    finally:
        for sock in pair:
            sock.close()
    assert open_sockets(process) == before
