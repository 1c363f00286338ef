"""Orders/trades projection of the command stream, the asynchronous ``StoreWriter`` and the
rebuild/catch-up from the journal (the journal is the source of truth, the store a projection).

``Store.project`` applies ``(cmd_seq, cmd, result)`` items in one transaction together with the
projection's ``last_seq``, so a batch is applied exactly once even if it is retried, and items at
or below ``last_seq`` are skipped. A gap (an item beyond ``last_seq + 1``) is refused: the store
must first catch up from the journal (``sync_from_journal``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from engine import Command, Result
from store.apply import Item
from store.errors import ProjectionGapError, StoreError
from store.repository import Store

if TYPE_CHECKING:
    from journal import CommandJournal, EngineFactory, EngineLike

log = logging.getLogger(__name__)


class StoreWriter:
    """Consumes ``(cmd_seq, cmd, result)`` from the sequencer without blocking it and writes batches
    in a worker thread, one transaction per batch. Subscribe ``writer.enqueue`` to the sequencer.

    A failing database is retried (the journal keeps everything meanwhile); a gap stops the writer
    until ``sync_from_journal`` has run. ``stop`` drains what it can and returns."""

    def __init__(self, store: Store, *, max_batch: int = 1000, retry_delay: float = 1.0) -> None:
        self.store = store
        self._max_batch = max_batch
        self._retry_delay = retry_delay
        self._queue: deque[Item] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written_seq = 0
        self.last_error: StoreError | None = None
        self.needs_resync = False

    def enqueue(self, cmd_seq: int, cmd: Command, result: Result) -> None:
        self._queue.append((cmd_seq, cmd, result))
        self._idle.clear()
        self._wakeup.set()

    __call__ = enqueue

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        self.written_seq = await asyncio.to_thread(self.store.last_projected_seq)
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def flush(self) -> None:
        """Wait until everything enqueued so far is written (or the writer gave up)."""
        await self._idle.wait()

    async def wait_written(self, seq: int, timeout: float) -> bool:
        """Wait until commands up to ``seq`` are in the store (read-your-writes for history reads);
        False if that did not happen within ``timeout`` seconds (a slow or failing database)."""
        if self.written_seq >= seq:
            return True
        if self.needs_resync:
            return False  # nothing more gets written until the store is synced from the journal
        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(lambda: self.written_seq >= seq), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if not self._queue or self.needs_resync:
                self._idle.set()
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue[i] for i in range(min(self._max_batch, len(self._queue)))]
            try:
                self.written_seq = await asyncio.to_thread(self.store.project, batch)
                self.last_error = None
            except ProjectionGapError as exc:
                log.error("store writer stopped: %s", exc)
                self.last_error, self.needs_resync = exc, True
                self._queue.clear()
                continue
            except StoreError as exc:
                self.last_error = exc
                if self._stopping:
                    log.error(
                        "store writer stopping with %d commands unwritten (catch up from the journal): %s",
                        len(self._queue),
                        exc,
                    )
                    self._idle.set()
                    return
                log.warning("store write failed, retrying in %.1fs: %s", self._retry_delay, exc)
                await asyncio.sleep(self._retry_delay)
                continue
            for _ in batch:
                self._queue.popleft()
            async with self._progress:
                self._progress.notify_all()


def _factory(factory: EngineFactory[Any] | None) -> EngineFactory[Any]:
    from journal.snapshot import default_engine_factory

    return factory or default_engine_factory()


def rebuild_from_journal(
    journal: CommandJournal, store: Store, *, factory: EngineFactory[Any] | None = None, batch_size: int = 5000
) -> int:
    """Drop the orders/trades projection and rebuild it by replaying the whole journal through a
    fresh engine. Settlement states are re-mirrored from the settlements table. Returns last seq."""
    store.clear_projection()
    return _replay_into(journal, store, _factory(factory).new(), after_seq=0, project_after=0, batch_size=batch_size)


def sync_from_journal(
    journal: CommandJournal, store: Store, *, factory: EngineFactory[Any] | None = None, batch_size: int = 5000
) -> int:
    """Project the journal commands the store has not seen yet (after a crash the asynchronous
    store may lag the journal). Starts the engine from the newest snapshot at or before the store's
    position when there is one. Returns the store's new last seq."""
    from journal.snapshot import list_snapshots, load_snapshot

    f = _factory(factory)
    start = store.last_projected_seq()
    if start > journal.last_seq:
        raise StoreError(f"store is at command {start} but the journal ends at {journal.last_seq}")
    if start == journal.last_seq:
        return start
    engine, engine_seq = f.new(), 0
    for path in reversed(list_snapshots(journal.directory)):
        try:
            snap = load_snapshot(path)
        except Exception:
            continue
        if snap.command_seq <= start:
            engine, engine_seq = f.from_snapshot(snap.engine), snap.command_seq
            break
    return _replay_into(journal, store, engine, after_seq=engine_seq, project_after=start, batch_size=batch_size)


def _replay_into(
    journal: CommandJournal, store: Store, engine: EngineLike, *, after_seq: int, project_after: int, batch_size: int
) -> int:
    process = engine.process
    last = project_after
    batch: list[Item] = []
    for seq, cmd in journal.replay(after_seq=after_seq):
        result = process(cmd)
        if seq <= project_after:
            continue
        batch.append((seq, cmd, result))
        if len(batch) >= batch_size:
            last = store.project(batch)
            batch = []
    if batch:
        last = store.project(batch)
    return last
