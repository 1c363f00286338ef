"""The SQL store as a durable consumer of the command stream: ``venue store-consumer``.

A leader started with ``--store external`` does not project orders and trades itself; this process
does, on any machine that reaches NATS and the database:

    stream ──durable pull consumer──> own engine (deterministic replay, as a standby) ──> Store.project
                                        ack the stream messages only after the DB commit

Exactly once: ``Store.project`` writes each command's rows in the same transaction as the
projection's ``last_seq`` (a command seq), and skips what is at or below it. So a message
redelivered after a crash between the commit and the ack, or a consumer whose ack floor is behind
the database, writes nothing twice. The durable consumer's ack floor is the position NATS shows
(``num_pending`` is the lag); the database's ``last_seq`` is the one that counts: at start the
engine is rebuilt to it (a local snapshot at or below it, then the stream), and a consumer that
was positioned past it (a restored database) is deleted and created again where it must start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from engine import Command, Engine, Result
from journal import CommandJournal, codec
from journal.errors import JournalError
from journal.nats import NatsJournal, StreamMessage, find_stream_seq, split_records, stream_message
from journal.snapshot import (
    default_engine_factory,
    encode_snapshot,
    list_snapshots,
    load_snapshot,
    write_snapshot_bytes,
)
from store import Store, StoreError, StoreWriter, sync_from_journal

log = logging.getLogger(__name__)

_FETCH = 256  # stream messages per pull


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerStatus:
    """Where a consumer stands: commands projected (the database's position) and the stream's tail."""

    projected_seq: int
    stream_seq: int  # the last stream message applied


class DurableReader:
    """One durable pull consumer (explicit ack, ``AckPolicy.ALL``: acking a message acks those
    before it) on the journal's stream, used from one thread through the journal's NATS loop."""

    def __init__(self, journal: NatsJournal, name: str) -> None:
        self._journal = journal
        self._conn = journal.connection
        self.name = name
        self._sub: JetStreamContext.PullSubscription | None = None

    def open(self, start_stream_seq: int) -> None:
        """Bind to the durable consumer, creating it at ``start_stream_seq`` if it does not exist
        (or again, if it acknowledged that message already)."""
        self._conn.call(self._open(start_stream_seq, recreate=False))

    def reposition(self, start_stream_seq: int) -> None:
        """Delete the durable consumer and create it again at ``start_stream_seq``."""
        self._conn.call(self._open(start_stream_seq, recreate=True))

    async def _open(self, start: int, *, recreate: bool) -> None:
        js, stream = self._conn.js, self._journal.stream
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        exists = True
        try:
            info = await js.consumer_info(stream, self.name)
        except NotFoundError:
            exists = False
        else:  # it delivered where we must start already (to a consumer that died before acking it,
            # or acknowledged it: a restored database): it would redeliver late, or never
            recreate = recreate or (info.delivered is not None and (info.delivered.stream_seq or 0) >= start)
        if exists and recreate:
            await js.delete_consumer(stream, self.name)
            exists = False
        if not exists:
            await js.add_consumer(stream, ConsumerConfig(
                durable_name=self.name, ack_policy=AckPolicy.ALL, filter_subject=self._journal.subject,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start),
                max_ack_pending=-1, ack_wait=30.0))
        self._sub = await js.pull_subscribe_bind(durable=self.name, stream=stream)

    def fetch(self, timeout: float = 1.0) -> list[tuple[StreamMessage, Msg]]:
        """The next messages (empty when none came within ``timeout``), each with its NATS handle."""
        return self._conn.call(self._fetch(timeout), timeout=timeout + self._conn.timeout)

    async def _fetch(self, timeout: float) -> list[tuple[StreamMessage, Msg]]:
        assert self._sub is not None
        try:
            msgs = await self._sub.fetch(_FETCH, timeout=timeout)
        except (TimeoutError, NatsTimeoutError):
            return []
        return [(stream_message(m.metadata.sequence.stream, m.headers, m.data), m) for m in msgs]

    def ack(self, handle: Msg) -> None:
        """Acknowledge ``handle`` and every message delivered before it (waits for the server)."""
        self._conn.call(handle.ack_sync())

    def pending(self) -> int:
        """Messages the consumer has not delivered yet (its lag behind the stream)."""
        assert self._sub is not None
        return int(self._conn.call(self._sub.consumer_info()).num_pending or 0)

    def close(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                self._conn.call(sub.unsubscribe())
            except Exception:  # closing anyway
                log.debug("unsubscribe failed", exc_info=True)


class StoreConsumer:
    """Projects the stream into ``store`` (see the module docstring). ``run`` until ``stop`` is set;
    ``step`` does one pull (tests drive it directly)."""

    def __init__(self, journal: NatsJournal, store: Store, *, name: str = "store", snapshot_dir: Path,
                 snapshot_every: int = 50_000, retry_s: float = 1.0) -> None:
        self.journal = journal
        self.store = store
        self.reader = DurableReader(journal, name)
        self._snapshot_dir = snapshot_dir
        self._snapshot_every = snapshot_every
        self._retry_s = retry_s
        self.engine: Engine
        self.applied_seq = 0  # commands through the engine
        self.applied_ts = 0
        self.stream_seq = 0
        self.projected_seq = 0  # the database's position
        self._snapshot_seq = 0

    def start(self) -> None:
        """Rebuild the engine to the database's position and bind the durable consumer after it."""
        self.journal.refresh()
        self.projected_seq = self.store.last_projected_seq()
        if self.projected_seq > self.journal.last_seq:
            raise JournalError(f"the store has commands up to {self.projected_seq}, the stream {self.journal.stream} "
                               f"only up to {self.journal.last_seq}: another stream's database?")
        self.engine, self.applied_seq = self._engine_at_or_before(self.projected_seq)
        self._snapshot_seq = self.applied_seq
        for seq, cmd in self._replay(self.applied_seq, self.projected_seq):
            self.engine.process(cmd)
            self.applied_seq, self.applied_ts = seq, cmd.ts
        self.stream_seq = self._stream_seq_holding(self.projected_seq + 1) - 1
        self.reader.open(self.stream_seq + 1)
        log.warning("store consumer %s: store at command %d, reading the stream from sequence %d",
                    self.reader.name, self.projected_seq, self.stream_seq + 1)

    def _engine_at_or_before(self, seq: int) -> tuple[Engine, int]:
        factory = default_engine_factory()
        if self._snapshot_dir.exists():
            for path in reversed(list_snapshots(self._snapshot_dir)):
                try:
                    snap = load_snapshot(path)
                except Exception:  # a damaged snapshot: an older one or the stream will do
                    log.warning("snapshot %s unreadable, skipped", path)
                    continue
                if snap.command_seq <= seq:
                    return factory.from_snapshot(snap.engine), snap.command_seq
        return factory.new(), 0

    def _replay(self, after: int, through: int) -> Iterator[tuple[int, Command]]:
        if through <= after:
            return
        for seq, cmd in self.journal.replay(after_seq=after):
            yield seq, cmd
            if seq >= through:
                return

    def _stream_seq_holding(self, cmd_seq: int) -> int:
        return self.journal.connection.read(
            lambda: find_stream_seq(self.journal.connection.js, self.journal.stream, cmd_seq, self.journal.stream_seq))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step(stop)

    def step(self, stop: threading.Event | None = None) -> int:
        """Pull once, apply, project (retrying the database until it answers), then ack.
        Returns the commands projected."""
        fetched = self.reader.fetch()
        items: list[tuple[int, Command, Result]] = []
        last_handle: Msg | None = None
        for msg, handle in fetched:
            last_handle = handle
            if msg.stream_seq <= self.stream_seq:
                continue  # redelivered: applied before
            for seq, payload in split_records(msg):
                if seq <= self.applied_seq:
                    continue
                if seq != self.applied_seq + 1:  # the consumer was positioned past our database
                    log.warning("store consumer %s: command %d after %d: repositioning the consumer",
                                self.reader.name, seq, self.applied_seq)
                    self._project(items, stop)
                    self.reader.reposition(self._stream_seq_holding(self.applied_seq + 1))
                    return len(items)
                cmd = codec.decode(payload)
                result = self.engine.process(cmd)
                self.applied_seq, self.applied_ts = seq, cmd.ts
                if seq > self.projected_seq:
                    items.append((seq, cmd, result))
            self.stream_seq = msg.stream_seq
        self._project(items, stop)
        if last_handle is not None:
            self.reader.ack(last_handle)  # only after the commit: a crash before it redelivers
        self._maybe_snapshot()
        return len(items)

    def _project(self, items: list[tuple[int, Command, Result]], stop: threading.Event | None) -> None:
        """Write ``items`` in one transaction; the engine has applied them already, so a failing
        database is retried here (never skipped) until it answers or the process stops."""
        while items:
            try:
                self.projected_seq = self.store.project(items)
                return
            except StoreError as exc:
                log.warning("store consumer: cannot project %d commands (retrying in %.1f s): %s",
                            len(items), self._retry_s, exc)
                if (stop or threading.Event()).wait(self._retry_s):
                    raise  # stopping: the commands stay unacknowledged, a restart projects them

    def _maybe_snapshot(self) -> None:
        # only engine states the database has reached: a restart rebuilds to the database's position
        if self.projected_seq - self._snapshot_seq < self._snapshot_every or self.applied_seq != self.projected_seq:
            return
        data = encode_snapshot(self.applied_seq, self.applied_ts, self.engine.snapshot())
        write_snapshot_bytes(self._snapshot_dir, self.applied_seq, data)
        self._snapshot_seq = self.applied_seq

    def status(self) -> ConsumerStatus:
        return ConsumerStatus(projected_seq=self.projected_seq, stream_seq=self.stream_seq)

    def close(self) -> None:
        self.reader.close()


class ExternalProjection(StoreWriter):
    """The leader's projection with ``store_mode = "external"``: it writes nothing (the store
    consumer does) and reports the database's position, so history reads still wait (bounded)
    until the store has the leader's latest command."""

    def enqueue(self, cmd_seq: int, cmd: Command, result: Result) -> None:
        return None

    async def start(self) -> None:
        self.written_seq = await asyncio.to_thread(self.store.last_projected_seq)

    async def stop(self) -> None:
        return None

    async def wait_written(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.written_seq = await asyncio.to_thread(self.store.last_projected_seq)
            except StoreError:
                return False
            if self.written_seq >= seq:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)


def projection_writer(store: Store, external: bool) -> StoreWriter:
    return ExternalProjection(store) if external else StoreWriter(store)


def catch_up_projection(journal: CommandJournal, store: Store, *, external: bool, retry_s: float = 0.5) -> int:
    """The leader's start-up catch-up of the projection (``sync_from_journal``). With a store
    consumer projecting at the same time one transaction may collide with the consumer's (the same
    rows): each attempt starts again from the database's position, so a few attempts suffice."""
    attempts = 10 if external else 1
    for attempt in range(1, attempts + 1):
        try:
            return sync_from_journal(journal, store)
        except StoreError as exc:
            if attempt == attempts:
                raise
            log.warning("projection catch-up collided with the store consumer (retrying): %s", exc)
            time.sleep(retry_s)
    raise AssertionError("unreachable")


def run_store_consumer(journal_url: str, db_url: str, data_dir: Path, *, name: str = "store",
                       replicas: int = 1, snapshot_every: int = 50_000, stop: threading.Event | None = None) -> int:
    """``venue store-consumer``: project until ``stop`` (SIGTERM/SIGINT in the CLI)."""
    stop = stop or threading.Event()
    store = Store.open(db_url)
    journal = NatsJournal.open(journal_url, data_dir / "journal", replicas=replicas)
    consumer = StoreConsumer(journal, store, name=name, snapshot_dir=data_dir / "store-consumer",
                             snapshot_every=snapshot_every)
    try:
        consumer.start()
        print(f"store consumer {name}: store at command {consumer.projected_seq}, following {journal.stream}",
              flush=True)
        consumer.run(stop)
    finally:
        consumer.close()
        journal.close()
        store.close()
    return 0
