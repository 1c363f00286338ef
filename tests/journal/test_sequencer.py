from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from engine import AddInstrument, AdvanceTime, Command, NewOrder, Result, ResultCode
from journal import (
    CodecError,
    EngineFactory,
    Journal,
    JournalWriteError,
    Sequencer,
    SequencerFailedError,
    SequencerStoppedError,
    recover,
)
from tests.journal.commands import EVERY_KIND, SPEC, order
from tests.journal.conftest import StepClock
from tests.journal.fakes import FakeEngine


async def _started(seq: Sequencer) -> Sequencer:
    await seq.start()
    return seq


async def test_commands_are_acknowledged_after_durability_in_order(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    journal = Journal.open(tmp_path)
    seqr = await _started(Sequencer(factory.new(), journal, clock=StepClock()))
    seen: list[tuple[int, int]] = []

    def listener(cmd_seq: int, cmd: Command, result: Result) -> None:
        # Durable before anyone hears about it.
        assert journal.last_seq >= cmd_seq
        seen.append((cmd_seq, cmd.ts))

    seqr.subscribe(listener)
    await seqr.submit(AddInstrument(ts=0, spec=SPEC))
    results = await asyncio.gather(*(seqr.submit(order(i, price=100 + i % 3)) for i in range(50)))
    await seqr.stop()
    assert all(r.code is ResultCode.OK for r in results)
    assert [r.order_id for r in results] == list(range(1, 51))  # submission order = engine order
    assert [s for s, _ in seen] == list(range(1, 52))
    ts = [t for _, t in seen]
    assert ts == sorted(ts) and ts[0] > 0
    assert seqr.batches < 51  # concurrent submissions were group-committed
    journal.close()
    with Journal.open(tmp_path) as reopened:
        replayed = list(reopened.replay())
    assert [(s, c.ts) for s, c in replayed] == seen


async def test_batches_never_exceed_max_batch(tmp_path: Path) -> None:
    sizes: list[int] = []

    class RecordingJournal(Journal):
        def append_encoded(self, records: Sequence[tuple[int, int, bytes]]) -> None:
            sizes.append(len(records))
            super().append_encoded(records)

    journal = RecordingJournal.open(tmp_path)
    seqr = await _started(Sequencer(_fake(), journal, max_batch=7))
    await asyncio.gather(*(seqr.submit(AdvanceTime(ts=0)) for _ in range(40)))
    await seqr.stop()
    journal.close()
    assert sum(sizes) == 40 and max(sizes) == 7


async def test_timestamps_never_go_backwards_even_if_the_clock_does(factory: EngineFactory[Any]) -> None:
    clock = StepClock(start=1_000, step=1)
    seqr = await _started(Sequencer(factory.new(), None, clock=clock))
    await seqr.submit(AddInstrument(ts=0, spec=SPEC))
    clock.now = 10  # wall clock jumps back
    result = await seqr.submit(order(1))
    await seqr.stop()
    assert result.code is ResultCode.OK  # the engine would say INVALID_TIME if ts regressed
    assert seqr.last_ts == 1_001


async def test_stop_drains_the_queue_and_then_refuses(factory: EngineFactory[Any]) -> None:
    seqr = await _started(Sequencer(factory.new(), None))
    first = asyncio.ensure_future(seqr.submit(AddInstrument(ts=0, spec=SPEC)))
    pending = [asyncio.ensure_future(seqr.submit(order(i))) for i in range(10)]
    await asyncio.sleep(0)
    await seqr.stop()
    assert (await first).code is ResultCode.OK
    assert all(p.done() and p.result().code is ResultCode.OK for p in pending)
    with pytest.raises(SequencerStoppedError, match="stopped"):
        await seqr.submit(order(99))


async def test_submit_before_start_is_refused() -> None:
    with pytest.raises(SequencerStoppedError, match="new"):
        await Sequencer(_fake(), None).submit(order(1))


async def test_a_cancelled_caller_does_not_unsequence_its_command(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    seqr = await _started(Sequencer(_fake(), journal))
    task = asyncio.ensure_future(seqr.submit(order(1)))
    await asyncio.sleep(0)
    task.cancel()
    await seqr.submit(order(2))
    await seqr.stop()
    assert journal.last_seq == 2 and seqr.applied_seq == 2
    journal.close()


async def test_journal_failure_is_fail_stop(tmp_path: Path) -> None:
    class BrokenJournal(Journal):
        broken = False

        def append_encoded(self, records: Sequence[tuple[int, int, bytes]]) -> None:
            if self.broken:
                raise JournalWriteError("disk on fire")
            super().append_encoded(records)

    journal = BrokenJournal.open(tmp_path)
    engine = _fake()
    seqr = await _started(Sequencer(engine, journal))
    assert (await seqr.submit(order(1))).order_id == 1
    journal.broken = True
    outcomes = await asyncio.gather(*(seqr.submit(order(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, SequencerFailedError) for o in outcomes)
    assert engine.next_order_id == 2  # nothing unjournaled reached the engine
    with pytest.raises(SequencerFailedError, match="restart and recover"):
        await seqr.submit(order(9))
    await seqr.stop()
    assert isinstance(seqr.failure, JournalWriteError)
    journal.close()


async def test_engine_exception_is_fail_stop() -> None:
    class ExplodingEngine:
        def process(self, cmd: Command) -> Result:
            if isinstance(cmd, NewOrder) and cmd.qty == 13:
                raise RuntimeError("invariant broken")
            return Result(code=ResultCode.OK, events=())

        def snapshot(self) -> dict[str, object]:
            return {}

    seqr = await _started(Sequencer(ExplodingEngine(), None))
    ok, bad, after = await asyncio.gather(
        seqr.submit(order(1)), seqr.submit(order(2, qty=13)), seqr.submit(order(3)), return_exceptions=True
    )
    assert isinstance(ok, Result)
    assert isinstance(bad, SequencerFailedError) and "invariant broken" in str(bad)
    assert isinstance(after, SequencerFailedError)
    assert not seqr.running
    await seqr.stop()


async def test_a_failing_listener_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    seqr = await _started(Sequencer(_fake(), None))
    got: list[int] = []

    def bad(cmd_seq: int, cmd: Command, result: Result) -> None:
        raise ValueError("boom")

    unsubscribe = seqr.subscribe(bad)
    seqr.subscribe(lambda s, c, r: got.append(s))
    await seqr.submit(order(1))
    unsubscribe()
    await seqr.submit(order(2))
    await seqr.stop()
    assert got == [1, 2]
    assert sum("listener" in r.message for r in caplog.records) == 1


async def test_restart_continues_numbering_and_time(tmp_path: Path, factory: EngineFactory[Any]) -> None:
    journal = Journal.open(tmp_path)
    seqr = await _started(Sequencer(factory.new(), journal, clock=StepClock(start=5_000)))
    await seqr.submit(AddInstrument(ts=0, spec=SPEC))
    for i in range(5):
        await seqr.submit(order(i))
    await seqr.stop()
    journal.close()

    journal = Journal.open(tmp_path)
    engine, last = recover(tmp_path, journal=journal, factory=factory)
    assert last == 6
    seqr = await _started(Sequencer(engine, journal, clock=StepClock(start=1)))  # clock behind
    seen: list[int] = []
    seqr.subscribe(lambda s, c, r: seen.append(s))
    result = await seqr.submit(order(6))
    await seqr.stop()
    journal.close()
    assert seen == [7]
    assert result.code is ResultCode.OK and result.order_id == 6
    assert seqr.last_ts == 5_006


def _fake() -> FakeEngine:
    return FakeEngine()


@pytest.mark.parametrize("cmd", EVERY_KIND, ids=lambda c: type(c).__name__)
async def test_stamping_copies_every_field_and_only_changes_ts(cmd: Command) -> None:
    seqr = await _started(Sequencer(_fake(), None, clock=lambda: 777))
    _seq, stamped, _result = await seqr.submit_sequenced(cmd)
    await seqr.stop()
    assert stamped == dataclasses.replace(cmd, ts=777)
    assert type(stamped) is type(cmd)


async def test_a_malformed_command_fails_alone_and_never_reaches_the_journal(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    seqr = await _started(Sequencer(_fake(), journal))
    await seqr.submit(order(1))
    bad = dataclasses.replace(order(2), price=100.5)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match=r"NewOrder.price: expected int \| None, got float 100.5"):
        await seqr.submit(bad)
    seq, _cmd, _result = await seqr.submit_sequenced(order(3))
    await seqr.stop()
    journal.close()
    assert seq == 2 and seqr.running is False and seqr.failure is None
    with Journal.open(tmp_path) as reopened:
        assert [s for s, _ in reopened.replay()] == [1, 2]


async def test_commands_handed_to_a_failing_writer_fail_too(tmp_path: Path) -> None:
    """The writer thread fails while the loop keeps handing it commands: every one of them is
    failed (none waits forever, none reaches the engine), and the writer stops."""
    writing = threading.Event()
    release = threading.Event()

    class SlowBrokenJournal(Journal):
        def append_encoded(self, records: Sequence[tuple[int, int, bytes]]) -> None:
            writing.set()
            release.wait(10)
            raise JournalWriteError("disk on fire")

    journal = SlowBrokenJournal.open(tmp_path)
    engine = _fake()
    seqr = await _started(Sequencer(engine, journal))
    first = asyncio.ensure_future(seqr.submit(order(1)))
    await asyncio.to_thread(writing.wait, 10)  # the writer holds the first batch
    later = [asyncio.ensure_future(seqr.submit(order(i))) for i in range(2, 6)]
    await asyncio.sleep(0)  # handed off to the writer's inbox
    release.set()
    outcomes = await asyncio.gather(first, *later, return_exceptions=True)
    assert all(isinstance(o, SequencerFailedError) for o in outcomes)
    assert engine.next_order_id == 1 and seqr.applied_seq == 0
    await seqr.stop()
    assert isinstance(seqr.failure, JournalWriteError)
    journal.close()


async def test_the_journal_is_written_by_one_thread_off_the_loop(tmp_path: Path) -> None:
    writers: set[int] = set()

    class RecordingJournal(Journal):
        def append_encoded(self, records: Sequence[tuple[int, int, bytes]]) -> None:
            writers.add(threading.get_ident())
            super().append_encoded(records)

    journal = RecordingJournal.open(tmp_path)
    seqr = await _started(Sequencer(_fake(), journal))
    for i in range(20):
        await seqr.submit(order(i))
    await seqr.stop()
    journal.close()
    assert len(writers) == 1 and threading.get_ident() not in writers
