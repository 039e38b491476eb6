"""The state version hash against what the real CLI 1.7.12 sent (ground-truth captures of
``restate state patch|edit|clear``: the state it had just read, and the version it sent)
and the real server's own test vectors."""

from __future__ import annotations

import pytest

from restate_server.partition.state_version import state_version

LAST_2 = bytes.fromhex("7b226174223a2278222c2264656c7461223a327d")  # {"at":"x","delta":2}
LAST_5 = bytes.fromhex("7b226174223a2278222c2264656c7461223a357d")  # {"at":"x","delta":5}


@pytest.mark.parametrize(
    ("state", "version"),
    [
        # `state patch Counter k1`: read count=7, last=... (rows in the order /query gave them)
        ([(b"last", LAST_2), (b"count", b"7")], "lOJTTgeJcqq3CMxwZi90Y9ahTNpwDKsa3NAnPiWUkUQ"),
        # `state edit Counter ed1`
        ([(b"last", LAST_5), (b"count", b"5")], "n7Jcxd40Yk9Qi36YBA8VaZfgqQJCrcKGUu7D9Y8DNRc"),
        # `state clear Counter/k1`
        ([(b"last", LAST_2), (b"count", b"42")], "BF1L4gHohNziz5UfCd_tsMz1GHKFYQ3c49l4OU0zzvA"),
        # restate-server's unit tests (crates/types/src/state_mut.rs)
        ([(b"name", b"bob")], "tDqA04Lj3_qJ-PgNPTecXDGZgpwy6jm2Ni2BYqJIthM"),
        ([(b"b", b"bbb"), (b"a", b"aaa")], "RVM17P6x18Wp-JnzQ01BzmqCvhAunTOQI_az6Px3Zyk"),
        ([], "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"),
    ],
)
def test_matches_the_real_versions(state: list[tuple[bytes, bytes]], version: str) -> None:
    assert state_version(state) == version
    assert state_version(reversed(state)) == version
