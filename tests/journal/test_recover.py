from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence, Set
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import AddInstrument, Command, Side
from journal import EngineFactory, Journal, Sequencer, SnapshotError, latest_snapshot, recover
from journal.journal import segment_name
from journal.snapshot import default_engine_factory, list_snapshots
from tests.journal.commands import SPEC, order, trading_commands
from tests.journal.conftest import StepClock


async def _run(
    directory: Path, factory: EngineFactory[Any], commands: Sequence[Command], *, snapshot_after: Set[int] = frozenset()
) -> Sequencer:
    journal = Journal.open(directory)
    engine, _ = recover(directory, journal=journal, factory=factory)
    seqr = Sequencer(engine, journal, clock=StepClock(start=journal.last_ts))
    await seqr.start()
    for i, cmd in enumerate(commands, start=1):
        await seqr.submit(cmd)
        if i in snapshot_after:
            seqr.snapshot(directory)
    await seqr.stop()
    journal.close()
    return seqr


def _state(directory: Path, factory: EngineFactory[Any]) -> dict[str, object]:
    engine, seq = recover(directory, factory=factory)
    return {"seq": seq, "engine": engine.snapshot()}


def _clean_replay(directory: Path, factory: EngineFactory[Any]) -> dict[str, object]:
    engine = factory.new()
    seq = 0
    with Journal.open(directory) as journal:
        for seq, cmd in journal.replay():  # noqa: B007
            engine.process(cmd)
    return {"seq": seq, "engine": engine.snapshot()}


async def test_snapshot_plus_replay_equals_the_live_engine(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    commands: list[Command] = [AddInstrument(ts=0, spec=SPEC), *[order(i, price=100 + i % 5) for i in range(30)]]
    seqr = await _run(tmp_path, factory, commands, snapshot_after={10, 20})
    live = {"seq": seqr.applied_seq, "engine": seqr.engine.snapshot()}
    snap = latest_snapshot(tmp_path)
    assert snap is not None and snap.command_seq == 20
    assert _state(tmp_path, factory) == live == _clean_replay(tmp_path, factory)


async def test_damaged_newest_snapshot_falls_back_to_the_previous(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    commands: list[Command] = [AddInstrument(ts=0, spec=SPEC), *[order(i) for i in range(12)]]
    await _run(tmp_path, factory, commands, snapshot_after={5, 10})
    newest = list_snapshots(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:-10])
    snap = latest_snapshot(tmp_path)
    assert snap is not None and snap.command_seq == 5
    assert _state(tmp_path, factory) == _clean_replay(tmp_path, factory)


async def test_a_snapshot_ahead_of_the_journal_means_lost_data(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    await _run(tmp_path, factory, [AddInstrument(ts=0, spec=SPEC), order(1), order(2)], snapshot_after={3})
    (tmp_path / segment_name(1)).unlink()
    with pytest.raises(SnapshotError, match="journal data is missing"):
        recover(tmp_path, factory=factory)


async def test_old_snapshots_are_pruned(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    commands: list[Command] = [AddInstrument(ts=0, spec=SPEC), *[order(i) for i in range(6)]]
    await _run(tmp_path, factory, commands, snapshot_after={1, 2, 3, 4, 5})
    assert [p.name[9:29] for p in list_snapshots(tmp_path)] == [f"{n:020d}" for n in (3, 4, 5)]


async def test_recovery_after_a_torn_last_record(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    commands: list[Command] = [AddInstrument(ts=0, spec=SPEC), *[order(i, price=100 + i % 3) for i in range(8)]]
    await _run(tmp_path, factory, commands, snapshot_after={4})
    before_last = tmp_path / "before"
    await _run(before_last, factory, commands[:-1])
    segment = tmp_path / segment_name(1)
    segment.write_bytes(segment.read_bytes()[:-7])  # crash mid-write of the last record
    recovered = _state(tmp_path, factory)
    assert recovered["seq"] == 8
    assert recovered == _state(before_last, factory)
    # The venue keeps going from there with the same numbers a clean run would produce.
    seqr = await _run(tmp_path, factory, [order(100)])
    assert seqr.applied_seq == 9


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(trading_commands, min_size=1, max_size=60), data=st.data())
def test_recovery_from_any_snapshot_point_is_exact(
    tmp_path_factory: pytest.TempPathFactory, factory: EngineFactory[Any], commands: list[Command], data: st.DataObject
) -> None:
    directory = tmp_path_factory.mktemp("j")
    all_commands: list[Command] = [AddInstrument(ts=0, spec=SPEC), *commands]
    cut = data.draw(st.integers(1, len(all_commands)), label="snapshot after")
    seqr = asyncio.run(_run(directory, factory, all_commands, snapshot_after={cut}))
    live = {"seq": seqr.applied_seq, "engine": seqr.engine.snapshot()}
    assert _state(directory, factory) == live == _clean_replay(directory, factory)


async def test_a_snapshot_write_cut_short_is_ignored_and_cleaned(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    await _run(tmp_path, factory, [AddInstrument(ts=0, spec=SPEC), order(1)], snapshot_after={1})
    stale = tmp_path / "snapshot-00000000000000000002.json.123.456.tmp"
    stale.write_bytes(b"half a snapsh")
    assert _state(tmp_path, factory) == _clean_replay(tmp_path, factory)
    assert not stale.exists()


async def test_recovered_book_and_sequence_numbers_continue_exactly(tmp_path: Path) -> None:
    """Real engine: after a torn last record, snapshot + replay gives the same L2 book, event seq
    and md_seq as an engine that never crashed, and the next command produces identical events."""
    factory = default_engine_factory()
    rnd = random.Random(5)
    commands: list[Command] = [AddInstrument(ts=0, spec=SPEC)]
    for i in range(120):
        side = rnd.choice(list(Side))
        commands.append(
            order(
                i,
                side=side,
                price=rnd.randint(97, 103),
                qty=rnd.randint(1, 9),
                participant=rnd.choice(["alice", "bob", "carol"]),
            )
        )
    await _run(tmp_path, factory, commands, snapshot_after={50, 100})
    segment = tmp_path / segment_name(1)
    segment.write_bytes(segment.read_bytes()[:-5])  # the last record (121) is torn

    recovered, last = recover(tmp_path, factory=factory)
    clean = factory.new()
    with Journal.open(tmp_path) as journal:
        stamped = [cmd for _, cmd in journal.replay()]
    for cmd in stamped:
        clean.process(cmd)
    assert last == 120 == len(stamped)
    assert recovered.seq == clean.seq
    assert recovered.l2("OMN1") == clean.l2("OMN1")
    assert recovered.open_orders() == clean.open_orders()
    nxt = order(999, side=Side.BUY, price=103, qty=30)
    nxt = dataclasses.replace(nxt, ts=stamped[-1].ts + 1)
    assert recovered.process(nxt) == clean.process(nxt)
    recovered.validate()
