"""A three-server JetStream cluster on loopback for the cluster tests (one per module)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from restate_server.cluster.engine import Engine
from tests.support.jetstream import JetStreamCluster, running_cluster

_cluster_names = itertools.count(1)


@pytest.fixture(scope="module")
def jetstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JetStreamCluster]:
    with running_cluster(Path(tmp_path_factory.mktemp("jetstream"))) as cluster:
        yield cluster


@pytest.fixture
async def engine(jetstream: JetStreamCluster) -> AsyncIterator[Engine]:
    """A connection to the engine under a cluster name of its own (fresh objects)."""
    connected = await Engine.connect(jetstream.urls, f"t{next(_cluster_names)}", "test")
    try:
        yield connected
    finally:
        await connected.close()
