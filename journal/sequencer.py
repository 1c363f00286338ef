"""The sequencer: stamps, numbers and journals commands (group commit), then applies them.

``submit`` stamps ``ts`` and a command seq on the event-loop thread and hands the command to one
long-lived writer thread, which takes everything handed to it so far (up to ``max_batch``),
appends it as one batch with one fsync, and posts the batch back to the loop, which applies it to
the engine in order, tells subscribers and resolves each caller's future. A caller therefore hears
back only after its command is durable. While the writer fsyncs one batch, the next one gathers
(group commit). Without a journal the loop applies each turn's commands at the end of the turn.
Engine state changes only between batches, so a snapshot taken on the event-loop thread always
matches ``applied_seq`` exactly.

Fail-stop: if the journal cannot be written or the engine raises, every pending and later
``submit`` fails with ``SequencerFailedError``; restart the process and ``recover``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from engine.messages import Command, Result
from journal import codec
from journal.backend import CommandJournal, TaggingJournal
from journal.errors import SequencerFailedError, SequencerStoppedError
from journal.snapshot import EngineLike, batch_processor, encode_snapshot, write_snapshot_bytes

log = logging.getLogger(__name__)

Listener = Callable[[int, Command, Result], None]

# The id of the request the commands enqueued in this context come from (set by the leader's
# responder for a gateway's forwarded cancel/amend): a ``TaggingJournal`` stores it with the command.
REQUEST_ID: ContextVar[str | None] = ContextVar("journal_request_id", default=None)


_COPY_FIELDS: dict[type[Any], tuple[str, ...] | None] = {}


def _stamped(cmd: Command, ts: int) -> Command:
    """``dataclasses.replace(cmd, ts=ts)``, about 4x faster on this hot path: the command was
    already validated by its constructor, so copying its slots is enough. Classes with a
    ``__post_init__`` (which could check ``ts``) still go through ``replace``."""
    cls = type(cmd)
    names = _COPY_FIELDS.get(cls, ())
    if names == ():
        is_plain = dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__") and hasattr(cls, "__slots__")
        names = _COPY_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls)) if is_plain else None
    if names is None:
        return dataclasses.replace(cmd, ts=ts)
    new = object.__new__(cls)
    for name in names:
        object.__setattr__(new, name, getattr(cmd, name))
    object.__setattr__(new, "ts", ts)
    return new


class _State(Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(slots=True)
class _Pending:
    seq: int
    cmd: Command
    payload: bytes
    future: asyncio.Future[Result]
    tag: str | None = None  # REQUEST_ID when it was enqueued


class Sequencer:
    def __init__(
        self,
        engine: EngineLike,
        journal: CommandJournal | None,
        *,
        clock: Callable[[], int] = time.time_ns,
        max_batch: int = 512,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.engine = engine
        self.journal = journal
        self._clock = clock
        self._max_batch = max_batch
        # The engine must already contain every journaled command (see ``recover``).
        self._next_seq = (journal.last_seq if journal else 0) + 1
        self._last_ts = journal.last_ts if journal else 0
        self._applied_seq = self._next_seq - 1
        self._applied_ts = self._last_ts
        self._queue: list[_Pending] = []  # no journal: enqueued this loop turn, applied at its end
        self._handoff_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # The writer thread's inbox: lists of pendings, ``None`` to stop. One long-lived thread
        # (not ``asyncio.to_thread``): a queue wakeup is about half the CPU of an executor hop.
        self._inbox: queue.SimpleQueue[list[_Pending] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._writer_done: asyncio.Future[None] | None = None
        self._listeners: list[Listener] = []
        self._state = _State.NEW
        self._failure: BaseException | None = None
        self.batches = 0  # appended batches, for metrics
        self.commands = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._state is not _State.NEW:
            raise SequencerStoppedError(f"sequencer cannot start from state {self._state.value}")
        self._loop = asyncio.get_running_loop()
        self._state = _State.RUNNING
        if self.journal is not None:
            self._writer_done = self._loop.create_future()
            self._thread = threading.Thread(target=self._write_loop, args=(self.journal, self._loop),
                                            name="sequencer-writer", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        """Stop accepting commands, finish everything already queued, then return."""
        if self._state is _State.RUNNING:
            self._state = _State.STOPPING
            self._hand_off()
        thread = self._thread
        if thread is not None:
            self._inbox.put(None)
            assert self._writer_done is not None
            await self._writer_done  # every batch before the stop marker is applied
            thread.join()
            self._thread = None
        if self._state is _State.STOPPING or self._state is _State.NEW:
            self._state = _State.STOPPED

    @property
    def running(self) -> bool:
        return self._state is _State.RUNNING

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    @property
    def applied_seq(self) -> int:
        """Command seq of the last command applied to the engine."""
        return self._applied_seq

    @property
    def last_ts(self) -> int:
        return self._last_ts

    @property
    def queued(self) -> int:
        """Commands sequenced but not yet applied (queued, being journaled or about to apply)."""
        return self._next_seq - 1 - self._applied_seq

    # ------------------------------------------------------------ commands

    async def submit(self, cmd: Command) -> Result:
        """Sequence ``cmd`` (its ``ts`` is replaced) and return the engine's result once durable."""
        return (await self.submit_sequenced(cmd))[2]

    async def submit_sequenced(self, cmd: Command) -> tuple[int, Command, Result]:
        """Like ``submit``, also returning the command seq and the stamped command as journaled."""
        seq, stamped, future = self.enqueue(cmd)
        # A caller that goes away cancels only this future; the command stays queued and is still
        # journaled and applied (the writer skips resolving cancelled futures).
        result = await future
        return seq, stamped, result

    @property
    def next_seq(self) -> int:
        """The seq the next ``enqueue``/``submit`` will give its command (a gate may key state by it)."""
        return self._next_seq

    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]:
        """Stamp, number and queue ``cmd`` synchronously; the future resolves once it is durable and
        applied. Nothing runs between reading ``next_seq`` and this call on the same loop turn, so
        the seq a caller read is the seq its command gets."""
        if self._state is _State.FAILED:
            raise SequencerFailedError("sequencer failed earlier; restart and recover") from self._failure
        if self._state is not _State.RUNNING:
            raise SequencerStoppedError(f"sequencer is {self._state.value}")
        ts = max(self._last_ts, self._clock())
        stamped = _stamped(cmd, ts)
        # Encode here, before taking a seq: a malformed command fails only its caller (CodecError)
        # and can never reach the journal, where it would break every later recovery.
        payload = codec.encode(stamped) if self.journal is not None else b""
        self._last_ts = ts
        seq = self._next_seq
        self._next_seq += 1
        assert self._loop is not None
        future: asyncio.Future[Result] = self._loop.create_future()
        pending = _Pending(seq=seq, cmd=stamped, payload=payload, future=future, tag=REQUEST_ID.get())
        if self._thread is not None:
            # Straight to the writer thread. It needs the GIL to take anything, so it takes what
            # this loop turn enqueued together once the loop waits for I/O (one group).
            self._inbox.put([pending])
            return seq, stamped, future
        self._queue.append(pending)
        if not self._handoff_scheduled:
            self._handoff_scheduled = True
            self._loop.call_soon(self._hand_off)
        return seq, stamped, future

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener(seq, cmd, result)`` runs after durability, in command order, on the loop thread."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # ------------------------------------------------------------ snapshots

    def snapshot(self, directory: Path | str) -> Path:
        """Write the engine state at ``applied_seq`` atomically (blocks the loop for the fsync)."""
        data = encode_snapshot(self._applied_seq, self._applied_ts, self.engine.snapshot())
        return write_snapshot_bytes(directory, self._applied_seq, data)

    async def snapshot_async(self, directory: Path | str) -> Path:
        """Like ``snapshot``, but only the serialisation runs on the loop; the fsync runs in a thread."""
        seq = self._applied_seq
        data = encode_snapshot(seq, self._applied_ts, self.engine.snapshot())
        return await asyncio.to_thread(write_snapshot_bytes, directory, seq, data)

    # ------------------------------------------------------------ writer

    def _hand_off(self) -> None:
        """Loop thread, no journal: apply this turn's commands (nothing to wait for)."""
        self._handoff_scheduled = False
        if not self._queue:
            return
        batch, self._queue = self._queue, []
        if self._state is _State.FAILED:
            self._fail_pending(batch)
            return
        for i in range(0, len(batch), self._max_batch):
            self.batches += 1
            self._apply(batch[i:i + self._max_batch])

    def _write_loop(self, journal: CommandJournal, loop: asyncio.AbstractEventLoop) -> None:
        """Writer thread: take everything handed off so far (group commit), append it with one
        write + fsync per ``max_batch`` commands, then have the loop apply it. Batches are applied
        in append order (the loop runs callbacks in the order they were posted)."""
        carry: list[_Pending] = []
        stopping = False
        while True:
            if not carry:
                if stopping:
                    break
                item = self._inbox.get()
                if item is None:
                    break
                carry = item
            while len(carry) < self._max_batch and not stopping:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    carry.extend(item)
            batch, carry = carry[:self._max_batch], carry[self._max_batch:]
            try:
                records = [(p.seq, p.cmd.ts, p.payload) for p in batch]
                tags = {p.seq: p.tag for p in batch if p.tag}
                if tags and isinstance(journal, TaggingJournal):
                    journal.append_tagged(records, tags)
                else:
                    journal.append_encoded(records)
            except Exception as exc:  # fail-stop: nothing of this batch or later reaches the engine
                rest = [*batch, *carry]
                while (item := self._get_nowait()) is not None:
                    rest.extend(item)
                self._post(loop, self._journal_failed, exc, rest)
                break
            self._post(loop, self._apply_journaled, batch)
        self._post(loop, self._writer_stopped)

    def _get_nowait(self) -> list[_Pending] | None:
        try:
            return self._inbox.get_nowait() or []
        except queue.Empty:
            return None

    @staticmethod
    def _post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            loop.call_soon_threadsafe(callback, *args)

    def _writer_stopped(self) -> None:
        if self._writer_done is not None and not self._writer_done.done():
            self._writer_done.set_result(None)

    def _journal_failed(self, exc: BaseException, pending: list[_Pending]) -> None:
        self._set_failed(exc)
        # the writer has stopped taking from its inbox: what was handed off meanwhile fails too
        while (item := self._get_nowait()) is not None:
            pending.extend(item)
        self._fail_pending(pending)

    def _apply_journaled(self, batch: list[_Pending]) -> None:
        if self._state is _State.FAILED:  # the engine failed on an earlier batch
            self._fail_pending(batch)
            return
        self.batches += 1
        self._apply(batch)

    def _apply(self, batch: list[_Pending]) -> None:
        """Loop thread: apply a durable batch to the engine in order, tell listeners, resolve futures."""
        try:
            # One engine call per batch when the engine has process_many (an exception there fails
            # the whole batch: fail-stop, every command is journaled and recovery replays them).
            many = batch_processor(self.engine)
            try:
                results = None if many is None else many([p.cmd for p in batch])
            except Exception:
                log.error(
                    "engine raised on commands %d-%d; they are journaled, replay will meet them again",
                    batch[0].seq, batch[-1].seq,
                )
                raise
            for i, pending in enumerate(batch):
                try:
                    result = self.engine.process(pending.cmd) if results is None else results[i]
                except Exception:
                    log.error("engine raised on command %d; it is journaled, replay will meet it again", pending.seq)
                    raise
                self._applied_seq = pending.seq
                # Queued commands have advanced _last_ts already; snapshots need the applied one.
                self._applied_ts = pending.cmd.ts
                self.commands += 1
                self._notify(pending.seq, pending.cmd, result)
                if not pending.future.done():
                    pending.future.set_result(result)
        except Exception as exc:
            self._set_failed(exc)
            self._fail_pending(batch)
            if self._thread is not None:
                self._inbox.put(None)  # the writer stops; what it still appends is failed on arrival

    def _set_failed(self, exc: BaseException) -> None:
        if self._state is _State.FAILED:
            return
        log.error("sequencer failed; refusing further commands", exc_info=exc)
        self._failure = exc
        self._state = _State.FAILED

    def _fail_pending(self, pending: list[_Pending]) -> None:
        exc = self._failure
        assert exc is not None
        failed = SequencerFailedError(f"command not applied: {type(exc).__name__}: {exc}")
        failed.__cause__ = exc
        for p in [*pending, *self._queue]:
            if not p.future.done():
                p.future.set_exception(failed)
        self._queue.clear()

    def _notify(self, seq: int, cmd: Command, result: Result) -> None:
        for listener in list(self._listeners):
            try:
                listener(seq, cmd, result)
            except Exception:
                # A broken subscriber must not stop the venue or hide the result from others.
                log.exception("sequencer listener %r failed on command %d", listener, seq)
