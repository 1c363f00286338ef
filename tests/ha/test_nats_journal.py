"""The journal on a JetStream stream: the file journal's contract (append, replay, recover, client
order ids) plus fencing: a second writer's append is refused, a deposed writer's sequencer fails."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from engine import AddInstrument, Engine, NewOrder, ResultCode, Side
from journal import JournalError, JournalFencedError, Sequencer, SequencerFailedError, codec, recover
from journal.nats import NatsJournal, parse_url
from tests.journal.commands import EVERY_KIND, SPEC


def _order(i: int, side: Side = Side.BUY, coid: str = "") -> NewOrder:
    return NewOrder(ts=10 + i, participant="p", symbol=SPEC.symbol, side=side, qty=1, price=100 + i % 3,
                    client_order_id=coid)


def test_url_names_servers_and_stream() -> None:
    assert parse_url("nats://a:1,b:2/S1") == (["nats://a:1", "nats://b:2"], "S1")
    assert parse_url("nats://a:1")[1] == "OMN"
    with pytest.raises(JournalError, match="must start with nats://"):
        parse_url("http://a:1/S")
    with pytest.raises(JournalError, match="letters, digits"):
        parse_url("nats://a:1/bad.name")


def test_append_replay_and_reopen(stream_url: str, snapshots: Path) -> None:
    records = list(enumerate(EVERY_KIND, start=1))
    with NatsJournal.open(stream_url, snapshots) as journal:
        assert (journal.last_seq, journal.stream_seq) == (0, 0)
        journal.append_batch(records[:4])
        journal.append_batch(records[4:])
        with pytest.raises(JournalError, match="out of order"):
            journal.append_batch([(99, EVERY_KIND[0])])
        assert journal.last_seq == len(records)
    with NatsJournal.open(stream_url, snapshots) as again:
        assert again.last_seq == len(records) and again.last_ts == EVERY_KIND[-1].ts
        assert list(again.replay()) == records
        assert list(again.replay(after_seq=5)) == records[5:]
        assert [s for s, _ in again.replay_raw(after_seq=len(records))] == []


def test_client_order_ids_come_from_the_stream(stream_url: str, snapshots: Path) -> None:
    with NatsJournal.open(stream_url, snapshots) as journal:
        journal.append_batch([(1, AddInstrument(ts=1, spec=SPEC)), (2, _order(1, coid="a-1")), (3, _order(2))])
        assert list(journal.client_order_ids()) == [("p", "a-1")]
        journal.append_batch([(4, _order(3, coid="a-2"))])
        # the ids read once are remembered; only the commands after them are read again
        assert list(journal.client_order_ids()) == [("p", "a-1"), ("p", "a-2")]
    with NatsJournal.open(stream_url, snapshots) as again:
        assert [s for s, _ in again.replay(after_seq=2)] == [3, 4]  # not from the start: remembers nothing
        assert list(again.client_order_ids()) == [("p", "a-1"), ("p", "a-2")]


def test_a_batch_larger_than_the_payload_limit_is_split_and_replays_whole(stream_url: str, snapshots: Path) -> None:
    cmds = [(1, AddInstrument(ts=1, spec=SPEC))] + [(i, _order(i, coid="x" * 60 + str(i))) for i in range(2, 12002)]
    with NatsJournal.open(stream_url, snapshots) as journal:
        journal.append_batch(cmds)
        assert journal.stream_seq > 1  # several messages
        assert [s for s, _ in journal.replay(after_seq=1500)] == list(range(1501, 12002))


async def test_recover_and_sequence_on_the_stream(stream_url: str, snapshots: Path) -> None:
    journal = NatsJournal.open(stream_url, snapshots)
    try:
        seq = Sequencer(Engine(), journal)
        await seq.start()
        assert (await seq.submit(AddInstrument(ts=0, spec=SPEC))).code is ResultCode.OK
        for i in range(20):
            await seq.submit(_order(i, Side.BUY if i % 2 else Side.SELL))
        seq.snapshot(snapshots)
        for i in range(20, 30):
            await seq.submit(_order(i, Side.SELL))
        await seq.stop()
        live = json.dumps(seq.engine.snapshot(), sort_keys=True)
    finally:
        journal.close()
    with NatsJournal.open(stream_url, snapshots) as again:
        engine, last = recover(snapshots, journal=again)  # snapshot at 21 + replay of the stream after it
        assert last == 31
        assert json.dumps(engine.snapshot(), sort_keys=True) == live


def test_a_second_writer_is_refused_and_a_claim_fences_the_first(stream_url: str, snapshots: Path) -> None:
    with NatsJournal.open(stream_url, snapshots) as a, NatsJournal.open(stream_url, snapshots) as b:
        a.append_batch([(1, AddInstrument(ts=1, spec=SPEC))])
        # b still believes the stream is empty: its append must not interleave
        with pytest.raises(JournalFencedError):
            b.append_batch([(1, _order(1))])
        # b catches up and claims the stream (a standby taking over) ...
        b.reset_failure()
        b.refresh()
        b.claim()
        # ... so the deposed writer a is refused even though b has written no command yet
        with pytest.raises(JournalFencedError):
            a.append_batch([(2, _order(2))])
        with pytest.raises(JournalError, match="failed earlier"):
            a.append_batch([(2, _order(2))])  # and stays refused
        b.append_batch([(2, _order(3))])
        assert [(s, c) for s, c in b.replay()] == [(1, AddInstrument(ts=1, spec=SPEC)), (2, _order(3))]


async def test_a_fenced_sequencer_fails_and_answers_nothing(stream_url: str, snapshots: Path) -> None:
    old = NatsJournal.open(stream_url, snapshots)
    new = NatsJournal.open(stream_url, snapshots)
    try:
        seq = Sequencer(Engine(), old)
        await seq.start()
        await seq.submit(AddInstrument(ts=0, spec=SPEC))
        new.refresh()
        new.claim()
        with pytest.raises(SequencerFailedError):
            await seq.submit(_order(1))
        assert isinstance(seq.failure, JournalFencedError)
        assert seq.engine.order(1) is None  # refused by the stream, never applied
        assert [s for s, _ in new.replay()] == [1]
    finally:
        with contextlib.suppress(Exception):
            await seq.stop()
        old.close()
        new.close()


def test_a_stream_written_under_other_engine_rules_is_refused(nats_node: object, stream_url: str,
                                                               snapshots: Path) -> None:
    with NatsJournal.open(stream_url, snapshots) as journal:
        conn, name = journal.connection, journal.stream
        info = conn.call(conn.js.stream_info(name))
        conn.call(conn.js.update_stream(info.config.evolve(description="OMN command journal; engine rules version 0")))
    with pytest.raises(JournalError, match="engine rules version 0"):
        NatsJournal.open(stream_url, snapshots)


def test_a_stream_of_another_shape_is_refused(nats_node: object, stream_url: str, snapshots: Path) -> None:
    with NatsJournal.open(stream_url, snapshots) as journal:
        journal.connection.call(journal.connection.js.publish(journal.subject, b"not a batch"))
        with pytest.raises(JournalError, match="not a journal batch"):
            journal.refresh()



def test_a_publish_retried_after_a_lost_answer_is_stored_once(stream_url: str, snapshots: Path) -> None:
    """The retry of ``_publish`` (no answer came) carries the same msg id: the stream's duplicate
    window answers with the first message's sequence instead of refusing the expected sequence."""
    from journal.nats import _publish

    with NatsJournal.open(stream_url, snapshots) as journal:
        payload = b"".join([len(p).to_bytes(4, "little") + p for p in [codec.encode(AddInstrument(ts=1, spec=SPEC))]])
        headers = {"Nats-Expected-Last-Sequence": "0", "Nats-Msg-Id": "w:c:1", "Omn-First-Seq": "1",
                   "Omn-Last-Seq": "1", "Omn-Last-Ts": "1"}
        conn = journal.connection
        assert conn.call(_publish(conn.js, journal.subject, payload, headers, 5.0)) == 1
        assert conn.call(_publish(conn.js, journal.subject, payload, headers, 5.0)) == 1  # the "retry"
        journal.refresh()
        assert (journal.stream_seq, journal.last_seq) == (1, 1)
        assert [s for s, _ in journal.replay()] == [1]
