"""Free local ports for the servers tests start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_given: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nobody listens on now, below the kernel's ephemeral range.

    A port the kernel hands out for `bind(0)` comes from the same range as the local ports of
    outgoing connections: between this check and the server's own bind, any client of another
    process (a database driver, an HTTP pool) can take it, and the server dies with "address
    already in use". Below that range only a listener can, and this process never gives the
    same port twice.
    """
    high = min(_ephemeral_low(), 32768)
    for _ in range(500):
        port = random.randrange(20000, high)
        if port in _given:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError("no free local port between 20000 and the ephemeral range")
