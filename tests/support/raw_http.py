"""Raw bytes to an HTTP port and what comes back, for probes a client library would not
send (garbage, floods, half requests)."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


@dataclass
class Exchange:
    received: bytes
    closed: bool  # the server closed the connection (else the read timed out)
    seconds: float  # until the server closed or the read gave up

    @property
    def statuses(self) -> list[int]:
        """The status of every answer (an answer may follow a body without a line break)."""
        return [int(status) for status in _STATUS_LINE.findall(self.received)]


def exchange(
    port: int,
    *chunks: bytes,
    read_timeout: float = 2.0,
    pause: float = 0.0,
) -> Exchange:
    """Send ``chunks`` (``pause`` seconds apart), then read until the server closes the
    connection or nothing arrives for ``read_timeout`` seconds."""
    started = time.monotonic()
    with socket.create_connection((LOOPBACK, port), timeout=read_timeout) as sock:
        received = b""
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server refused and closed: stop sending
                break
            if pause:
                time.sleep(pause)
        closed = False
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    closed = True
                    break
                received += data
        except TimeoutError:
            closed = False
        except ConnectionResetError:
            closed = True
        return Exchange(received, closed, time.monotonic() - started)
