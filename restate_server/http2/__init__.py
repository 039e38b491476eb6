"""HTTP/2 cleartext client (h2 on asyncio): pooled, multiplexed, full-duplex streams."""

from restate_server.http2.errors import H2ConnectionError, H2Error, H2StreamReset
from restate_server.http2.pool import H2Pool
from restate_server.http2.stream import H2Stream

__all__ = ["H2ConnectionError", "H2Error", "H2Pool", "H2Stream", "H2StreamReset"]
