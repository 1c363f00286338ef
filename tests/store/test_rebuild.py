from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from engine import AddInstrument, AmendOrder, CancelOrder, Command, Engine, NewOrder, Side, StpMode, TimeInForce
from journal import EngineFactory, Journal, Sequencer
from journal.snapshot import default_engine_factory
from store import OrderStatus, Store, StoreError, StoreWriter, rebuild_from_journal, sync_from_journal
from tests.journal.commands import SPEC
from tests.journal.conftest import FACTORIES, StepClock


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> EngineFactory[Any]:
    return FACTORIES[request.param]()


PARTICIPANTS = ["alice", "bob", "carol"]


def _commands(n: int, seed: int) -> list[Command]:
    rnd = random.Random(seed)
    out: list[Command] = []
    for i in range(n):
        kind = rnd.random()
        if kind < 0.7:
            out.append(
                NewOrder(
                    ts=0,
                    participant=rnd.choice(PARTICIPANTS),
                    symbol="OMN1",
                    side=rnd.choice(list(Side)),
                    qty=rnd.randint(1, 10),
                    price=rnd.randint(97, 103),
                    tif=rnd.choice([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
                    stp=rnd.choice(list(StpMode)),
                    client_order_id=f"c{i}",
                )
            )
        elif kind < 0.85:
            out.append(CancelOrder(ts=0, participant=rnd.choice(PARTICIPANTS), order_id=rnd.randint(1, 60)))
        else:
            out.append(
                AmendOrder(
                    ts=0, participant=rnd.choice(PARTICIPANTS), order_id=rnd.randint(1, 60), qty=rnd.randint(1, 12)
                )
            )
    return out


def _tables(store: Store) -> tuple[object, object]:
    return store.list_orders(), store.list_trades()


async def _live(
    directory: Path,
    store: Store,
    factory: EngineFactory[Any],
    commands: list[Command],
    *,
    store_until: int,
    snapshot_at: int | None = None,
) -> Sequencer:
    """Run commands through the sequencer; the store writer only sees the first ``store_until``."""
    journal = Journal.open(directory)
    seqr = Sequencer(factory.new(), journal, clock=StepClock())
    writer = StoreWriter(store)
    unsubscribe = seqr.subscribe(writer.enqueue)
    await writer.start()
    await seqr.start()
    for i, cmd in enumerate(commands, start=1):
        await seqr.submit(cmd)
        if i == store_until:
            unsubscribe()
        if i == snapshot_at:
            seqr.snapshot(directory)
    await seqr.stop()
    await writer.stop()
    journal.close()
    return seqr


async def test_open_orders_in_the_store_match_the_engine(tmp_path: Path, store: Store) -> None:
    commands = [AddInstrument(ts=0, spec=SPEC), *_commands(300, seed=4)]
    seqr = await _live(tmp_path, store, default_engine_factory(), commands, store_until=len(commands))
    engine = seqr.engine
    assert isinstance(engine, Engine)
    in_engine = {(o.order_id, o.participant, o.price, o.qty, o.remaining) for o in engine.open_orders()}
    in_store = {
        (o.order_id, o.participant, o.price, o.qty, o.remaining)
        for o in store.list_orders(status=[OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED])
    }
    assert in_engine and in_store == in_engine
    for o in store.list_orders():
        assert o.filled + o.remaining <= o.qty
        assert (o.status is OrderStatus.FILLED) == (o.filled == o.qty and o.remaining == 0)
    filled_by_trades: dict[int, int] = {}
    for t in store.list_trades():
        filled_by_trades[t.maker_order_id] = filled_by_trades.get(t.maker_order_id, 0) + t.qty
        filled_by_trades[t.taker_order_id] = filled_by_trades.get(t.taker_order_id, 0) + t.qty
    assert {o.order_id: o.filled for o in store.list_orders() if o.filled} == filled_by_trades


async def test_rebuild_reproduces_the_live_projection(
    tmp_path: Path, store: Store, factory: EngineFactory[Any]
) -> None:
    commands = [AddInstrument(ts=0, spec=SPEC), *_commands(150, seed=1)]
    await _live(tmp_path, store, factory, commands, store_until=len(commands))
    live = _tables(store)
    assert store.last_projected_seq() == len(commands)
    assert live[0]  # orders were projected
    with Journal.open(tmp_path) as journal:
        assert rebuild_from_journal(journal, store, factory=factory, batch_size=40) == len(commands)
    assert _tables(store) == live


async def test_sync_catches_a_lagging_store_up(tmp_path: Path, store: Store, factory: EngineFactory[Any]) -> None:
    commands = [AddInstrument(ts=0, spec=SPEC), *_commands(120, seed=2)]
    await _live(tmp_path, store, factory, commands, store_until=50, snapshot_at=40)
    assert store.last_projected_seq() == 50
    with Journal.open(tmp_path) as journal:
        assert sync_from_journal(journal, store, factory=factory) == len(commands)
        assert sync_from_journal(journal, store, factory=factory) == len(commands)  # nothing left to do
        synced = _tables(store)
        rebuild_from_journal(journal, store, factory=factory)
    assert _tables(store) == synced


async def test_a_store_ahead_of_the_journal_is_an_error(
    tmp_path: Path, store: Store, factory: EngineFactory[Any]
) -> None:
    commands = [AddInstrument(ts=0, spec=SPEC), *_commands(5, seed=3)]
    await _live(tmp_path, store, factory, commands, store_until=len(commands))
    other = tmp_path / "other"
    await _live(other, Store(store.engine), factory, [AddInstrument(ts=0, spec=SPEC)], store_until=0)
    with Journal.open(other) as journal, pytest.raises(StoreError, match="store is at command 6"):
        sync_from_journal(journal, store, factory=factory)
