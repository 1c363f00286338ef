"""The store projection as a durable consumer of the stream (``venue.consumers``): the same rows
as the in-process projection, exactly once across a crash between commit and ack, a restart from a
snapshot, and a database behind the consumer's ack floor; on SQLite and PostgreSQL. The
``venue store-consumer`` process SIGKILLed mid-flow: ``test_consumers_processes.py``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import AmendOrder, CancelOrder, Command, Engine, NewOrder, Result, Side, TimeInForce
from journal import Sequencer
from journal.nats import NatsJournal
from store import Store, StoredOrder, StoredTrade
from tests.journal.commands import SPEC
from tests.store.conftest import db_url, pg_database  # noqa: F401  (the store suite's SQLite/PostgreSQL fixtures)
from venue.consumers import StoreConsumer

PARTICIPANTS = ["alice", "bob", "carol"]


def _commands(n: int, seed: int, start: int = 0) -> list[Command]:
    rnd = random.Random(seed)
    out: list[Command] = []
    for i in range(start, start + n):
        kind = rnd.random()
        who = rnd.choice(PARTICIPANTS)
        if kind < 0.75:
            out.append(NewOrder(ts=0, participant=who, symbol=SPEC.symbol, side=rnd.choice(list(Side)),
                                qty=rnd.randint(1, 5) * 1000, price=rnd.randint(97, 103) * 10,
                                tif=rnd.choice([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC]),
                                client_order_id=f"c{i}"))
        elif kind < 0.9:
            out.append(CancelOrder(ts=0, participant=who, order_id=rnd.randint(1, max(1, i))))
        else:
            out.append(AmendOrder(ts=0, participant=who, order_id=rnd.randint(1, max(1, i)),
                                  qty=rnd.randint(1, 6) * 1000))
    return out


class Leader:
    """A sequencer on the stream with the in-process projection beside it (the reference)."""

    def __init__(self, url: str, directory: Path, reference: Store) -> None:
        self.journal = NatsJournal.open(url, directory)
        self.sequencer = Sequencer(Engine(), self.journal)
        self.reference = reference
        self.items: list[tuple[int, Command, Result]] = []
        self.sequencer.subscribe(lambda seq, cmd, result: self.items.append((seq, cmd, result)))

    async def run(self, commands: list[Command]) -> None:
        for cmd in commands:
            await self.sequencer.submit(cmd)
        self.reference.project(self.items)
        self.items.clear()


def _rows(store: Store) -> tuple[list[StoredOrder], list[StoredTrade], int]:
    return store.list_orders(limit=100_000), store.list_trades(limit=100_000), store.last_projected_seq()


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    yield s
    s.close()


@pytest.fixture
def projected(db_url: sa.URL) -> Iterator[Store]:  # noqa: F811
    s = Store.open(db_url)
    yield s
    s.close()


def _drain(consumer: StoreConsumer, through: int) -> None:
    for _ in range(200):
        consumer.step()
        if consumer.projected_seq >= through:
            return
    pytest.fail(f"the consumer stopped at {consumer.projected_seq}, not {through}")


async def test_the_consumer_projects_what_the_in_process_projection_does(
        stream_url: str, tmp_path: Path, reference: Store, projected: Store) -> None:
    from engine import AddInstrument

    leader = Leader(stream_url, tmp_path / "leader", reference)
    await leader.sequencer.start()
    consumer_journal = NatsJournal.open(stream_url, tmp_path / "consumer")
    consumer = StoreConsumer(consumer_journal, projected, name="store-a", snapshot_dir=tmp_path / "snaps",
                             snapshot_every=40)
    try:
        await leader.run([AddInstrument(ts=0, spec=SPEC), *_commands(60, seed=1)])
        consumer.start()
        _drain(consumer, leader.sequencer.applied_seq)
        assert _rows(projected) == _rows(reference)
        assert _rows(projected)[1], "the flow made trades"
        assert list((tmp_path / "snaps").glob("snapshot-*.json"))

        # a crash after the commit, before the ack: the messages come again and write nothing twice
        await leader.run(_commands(30, seed=2, start=60))
        acked: list[object] = []
        consumer.reader.ack = acked.append  # type: ignore[method-assign,assignment]  # the ack is lost
        _drain(consumer, leader.sequencer.applied_seq)
        consumer.close()
        again = StoreConsumer(consumer_journal, projected, name="store-a", snapshot_dir=tmp_path / "snaps",
                              snapshot_every=40)
        again.start()  # from the snapshot at or before the database's position; the ack floor is behind it
        assert again.applied_seq == again.projected_seq == leader.sequencer.applied_seq
        await leader.run(_commands(20, seed=3, start=90))
        _drain(again, leader.sequencer.applied_seq)
        assert _rows(projected) == _rows(reference)
        again.close()

        # a database behind the durable consumer's ack floor (restored, or a new one): repositioned
        fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
        third = StoreConsumer(consumer_journal, fresh, name="store-a", snapshot_dir=tmp_path / "snaps-fresh")
        third.start()
        _drain(third, leader.sequencer.applied_seq)
        assert _rows(fresh) == _rows(reference)
        third.close()
        fresh.close()
    finally:
        await leader.sequencer.stop()
        leader.journal.close()
        consumer_journal.close()


async def test_the_leaders_catch_up_retries_after_colliding_with_the_consumer(
        stream_url: str, tmp_path: Path, reference: Store, projected: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a store consumer running, the leader's start-up catch-up may collide with it (the same
    rows in two transactions): it starts again from the database's position instead of failing."""
    from engine import AddInstrument
    from store import DuplicateError
    from venue.consumers import catch_up_projection

    leader = Leader(stream_url, tmp_path / "leader", reference)
    await leader.sequencer.start()
    try:
        await leader.run([AddInstrument(ts=0, spec=SPEC), *_commands(30, seed=5)])
        real = projected.project
        calls: list[int] = []

        def collide(items: list[tuple[int, Command, Result]]) -> int:
            calls.append(len(items))
            if len(calls) == 1:  # the consumer projected the first ten commands meanwhile
                real(items[:10])
                raise DuplicateError("order 1 exists")
            return real(items)

        monkeypatch.setattr(projected, "project", collide)
        with pytest.raises(DuplicateError):
            catch_up_projection(leader.journal, projected, external=False)  # embedded: unchanged, fails
        assert catch_up_projection(leader.journal, projected, external=True, retry_s=0) == leader.sequencer.applied_seq
        assert _rows(projected) == _rows(reference)
    finally:
        await leader.sequencer.stop()
        leader.journal.close()
