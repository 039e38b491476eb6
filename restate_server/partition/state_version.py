"""The version of an object's state: what ``restate state patch|edit|clear`` sends back.

The CLI reads the state, computes this version on its side and sends it with the new
state; the partition drops the mutation when the state changed in between. So the hash
must be the real server's, bit for bit: SHA-256 over the entries sorted by key, entry
``i`` fed as ``i`` (u64 big-endian), 0x01, key, 0x02, value, 0x03; written URL-safe
base64 without padding.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable


def state_version(entries: Iterable[tuple[bytes, bytes]]) -> str:
    digest = hashlib.sha256()
    for index, (key, value) in enumerate(sorted(entries)):
        digest.update(index.to_bytes(8, "big"))
        digest.update(b"\x01")
        digest.update(key)
        digest.update(b"\x02")
        digest.update(value)
        digest.update(b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
