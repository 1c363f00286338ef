from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ha.cluster import NatsCluster, nats_server_binary

_streams = itertools.count(1)


@pytest.fixture(scope="module")
def nats_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One JetStream server of our own on a free loopback port (R1)."""
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    cluster = NatsCluster(tmp_path_factory.mktemp("nats"), size=1).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def stream_url(nats_node: NatsCluster) -> str:
    """A fresh stream name on the module's server for every test."""
    return nats_node.url(f"T{next(_streams)}")


@pytest.fixture
def snapshots(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"
