"""The journal position market data carries (``stream_seq``): the stream sequence of the batch
message that holds a command, the same whether the writer that appended it, a follower that
applied it or a process that recovered from the stream is asked; the command seq with the file
journal; and ``VenueCore.stream_seq`` is the position of the command whose events are fanned out."""

from __future__ import annotations

from pathlib import Path

from engine import AddInstrument, Engine, Event, NewOrder, Side
from journal import Journal, Sequencer
from journal.nats import NatsJournal
from tests.journal.commands import SPEC
from venue.core import VenueCore
from venue.ha import Follower


def _order(i: int) -> NewOrder:
    return NewOrder(ts=10 + i, participant="p", symbol=SPEC.symbol, side=Side.BUY if i % 2 else Side.SELL,
                    qty=1, price=100 + i % 3)


def test_every_process_gives_a_command_the_same_stream_sequence(stream_url: str, tmp_path: Path) -> None:
    with NatsJournal.open(stream_url, tmp_path / "w") as writer:
        writer.append_batch([(1, AddInstrument(ts=1, spec=SPEC)), (2, _order(2)), (3, _order(3))])
        with NatsJournal.open(stream_url, tmp_path / "x") as other:  # a takeover: an epoch message between
            other.claim()
        writer.refresh()
        writer.append_batch([(4, _order(4))])
        writer.append_batch([(5, _order(5)), (6, _order(6))])
        written = {seq: writer.position(seq) for seq in range(1, 7)}
    assert written == {1: 1, 2: 1, 3: 1, 4: 3, 5: 4, 6: 4}  # stream sequence 2 is the epoch message
    with NatsJournal.open(stream_url, tmp_path / "f") as journal:
        follower = Follower(journal)  # recovers from the stream (the standby's start)
        assert follower.applied_seq == 6
        assert {seq: journal.position(seq) for seq in range(1, 7)} == written
    with NatsJournal.open(stream_url, tmp_path / "h") as journal:
        for msg in journal.messages(0):  # a follower applying message by message
            journal.advance(msg)
        assert {seq: journal.position(seq) for seq in range(1, 7)} == written
        assert journal.position(99) == 0  # not in the stream (yet)


def test_the_file_journal_position_is_the_command_seq(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append_batch([(1, AddInstrument(ts=1, spec=SPEC)), (2, _order(2))])
        assert [journal.position(s) for s in (1, 2)] == [1, 2]


async def test_events_are_fanned_out_with_the_position_of_their_command(stream_url: str, tmp_path: Path) -> None:
    journal = NatsJournal.open(stream_url, tmp_path)
    with NatsJournal.open(stream_url, tmp_path / "x") as other:  # stream sequence 1: an epoch message
        other.claim()
    journal.refresh()
    engine = Engine()
    sequencer = Sequencer(engine, journal)
    core = VenueCore(engine=engine, sequencer=sequencer, positions=journal.position)
    seen: list[tuple[str, int]] = []

    def listener(event: Event) -> None:
        seen.append((type(event).__name__, core.stream_seq))

    core.subscribe_events(listener)
    await sequencer.start()
    try:
        await sequencer.submit(AddInstrument(ts=0, spec=SPEC))
        await sequencer.submit(NewOrder(ts=0, participant="a", symbol=SPEC.symbol, side=Side.SELL, qty=1, price=100))
        await sequencer.submit(NewOrder(ts=0, participant="b", symbol=SPEC.symbol, side=Side.BUY, qty=1, price=100))
    finally:
        await sequencer.stop()
        journal.close()
    assert seen and {name for name, _ in seen} >= {"InstrumentAdded", "OrderAccepted", "Fill"}
    assert [pos for name, pos in seen if name == "InstrumentAdded"] == [2]
    assert {pos for name, pos in seen if name == "Fill"} == {4}
    assert core.stream_seq == 4  # the state reads answer from: after the last command
