"""A transport standing in for a socket under our HTTP server's protocol."""

from __future__ import annotations


class FakeTransport:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        self.closed = True

    @property
    def status_lines(self) -> list[bytes]:
        return [chunk.split(b"\r\n", 1)[0] for chunk in self.chunks]

    def is_closing(self) -> bool:
        return self.closed

    def set_protocol(self, protocol: object) -> None:
        self.protocol = protocol
