"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket
import threading

LOOPBACK = "127.0.0.1"

# Ports already handed out by this process. The kernel may give the same ephemeral port
# twice once its socket is closed; remembering them keeps two servers of one test session
# from being configured with the same port before either has bound it.
_handed_out: set[int] = set()
_lock = threading.Lock()


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        with _lock:
            while len(ports) < count:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)  # kept open until done so the kernel hands out new ones
                sock.bind((LOOPBACK, 0))
                port = sock.getsockname()[1]
                if port in _handed_out:
                    continue
                _handed_out.add(port)
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def free_port() -> int:
    """Return one port that was free on 127.0.0.1 a moment ago."""
    return free_ports(1)[0]


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
