"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listened on a moment ago.

    The kernel picks it (bind to port 0), so two calls rarely collide; another process can still take it
    before our child binds it, which is why the servers here retry with fresh ports when a bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
