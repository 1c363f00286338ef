"""The journal on an R3 stream of a three-node cluster started here: appends go on while one node
is down, and what was acknowledged before is all there when read through the other nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import AddInstrument, NewOrder, Side
from journal.nats import NatsJournal
from tests.ha.cluster import NatsCluster, nats_server_binary
from tests.journal.commands import SPEC


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    c = NatsCluster(tmp_path / "nats", size=3).start()
    yield c
    c.stop()


def _order(i: int) -> NewOrder:
    return NewOrder(ts=10 + i, participant="p", symbol=SPEC.symbol, side=Side.BUY, qty=1, price=100,
                    client_order_id=f"c{i}")


@pytest.mark.slow
def test_an_r3_stream_keeps_every_acknowledged_batch_when_a_node_dies(cluster: NatsCluster, tmp_path: Path) -> None:
    journal = NatsJournal.open(cluster.url("R3"), tmp_path / "s", replicas=3, timeout=4.0)
    try:
        journal.append_batch([(1, AddInstrument(ts=1, spec=SPEC))])
        journal.append_batch([(i, _order(i)) for i in range(2, 50)])
        info = journal.connection.call(journal.connection.js.stream_info("R3"))
        assert info.config.num_replicas == 3
        cluster.nodes[0].kill()  # whichever role it had (stream leader or follower)
        for start in range(50, 90, 10):  # retried internally while the stream elects a new leader
            journal.append_batch([(i, _order(i)) for i in range(start, start + 10)])
    finally:
        journal.close()
    # a fresh reader connected only to the surviving nodes
    survivors = ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes[1:])
    with NatsJournal.open(f"nats://{survivors}/R3", tmp_path / "r", replicas=3, timeout=4.0) as reader:
        assert reader.last_seq == 89
        assert [s for s, _ in reader.replay()] == list(range(1, 90))
        assert len(list(reader.client_order_ids())) == 88
