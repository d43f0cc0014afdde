"""The kernel's own TCP counters around a benchmark step (`nstat`): a listen queue that overflowed or
SYNs sent again mean the step measured the kernel's queue (each dropped SYN costs its request ≥ 1 s),
not the server. Counted machine-wide: other processes' connections show too."""

from __future__ import annotations

import contextlib
import shutil
import subprocess

COUNTERS = {"TcpExtListenOverflows": "listen_overflows", "TcpExtTCPSynRetrans": "syn_retransmits"}


def read() -> dict[str, int]:
    """Absolute counters now (without touching nstat's history file); empty without nstat."""
    nstat = shutil.which("nstat")
    if nstat is None:
        return {}
    out = subprocess.run([nstat, "-asz", *COUNTERS], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in COUNTERS:
            found[COUNTERS[parts[0]]] = int(parts[1])
    return found


@contextlib.contextmanager
def counted():
    """Yields a dict that holds, after the block, how much each counter grew during it."""
    grew: dict[str, int] = {}
    before = read()
    try:
        yield grew
    finally:
        after = read()
        grew.update({name: after[name] - before[name] for name in before if name in after})
