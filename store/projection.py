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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import (
    Command,
    Fill,
    InstrumentStatusChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    Result,
)
from store.errors import ProjectionGapError, StoreError
from store.models import InstrumentRow, OrderRow, ProjectionStateRow, SettlementRow, TradeRow
from store.records import OrderStatus, SettlementStatus

if TYPE_CHECKING:
    from journal import EngineFactory, EngineLike, Journal
    from store.repository import Store

log = logging.getLogger(__name__)

Item = tuple[int, Command, Result]
PROJECTION = "orders_trades"


def project_items(session: Session, items: Sequence[Item]) -> int:
    """Apply items to the orders/trades tables; returns the new ``last_seq``."""
    state = session.get(ProjectionStateRow, PROJECTION)
    if state is None:
        state = ProjectionStateRow(name=PROJECTION, last_seq=0)
        session.add(state)
    orders: dict[int, OrderRow | None] = {}
    trade_ids: list[int] = []

    def order(order_id: int) -> OrderRow | None:
        if order_id not in orders:
            with session.no_autoflush:
                orders[order_id] = session.get(OrderRow, order_id)
            if orders[order_id] is None:
                log.warning("projection: order %d is not in the store", order_id)
        return orders[order_id]

    for cmd_seq, _cmd, result in items:
        if cmd_seq <= state.last_seq:
            continue
        if cmd_seq != state.last_seq + 1:
            raise ProjectionGapError(f"store has commands up to {state.last_seq}, got {cmd_seq}: sync from the journal")
        for ev in result.events:
            if isinstance(ev, OrderAccepted):
                row = OrderRow(
                    order_id=ev.order_id,
                    client_order_id=ev.client_order_id,
                    participant=ev.participant,
                    session=ev.session,
                    symbol=ev.symbol,
                    side=ev.side.name.lower(),
                    order_type=ev.order_type.name.lower(),
                    tif=ev.tif.name.lower(),
                    price=ev.price,
                    qty=ev.qty,
                    remaining=ev.qty,
                    filled=0,
                    status=OrderStatus.OPEN.value,
                    expire_ts=ev.expire_ts,
                    accepted_ts=ev.ts,
                    updated_ts=ev.ts,
                    cmd_seq=cmd_seq,
                )
                session.add(row)
                orders[ev.order_id] = row
            elif isinstance(ev, Fill):
                session.add(
                    TradeRow(
                        trade_id=ev.trade_id,
                        symbol=ev.symbol,
                        price=ev.price,
                        qty=ev.qty,
                        aggressor=ev.aggressor.name.lower(),
                        maker_order_id=ev.maker_order_id,
                        maker_participant=ev.maker_participant,
                        taker_order_id=ev.taker_order_id,
                        taker_participant=ev.taker_participant,
                        ts=ev.ts,
                        settlement_status=SettlementStatus.PENDING.value,
                        cmd_seq=cmd_seq,
                    )
                )
                trade_ids.append(ev.trade_id)
                for oid, remaining in (
                    (ev.maker_order_id, ev.maker_remaining),
                    (ev.taker_order_id, ev.taker_remaining),
                ):
                    o = order(oid)
                    if o is not None:
                        o.filled += ev.qty
                        o.remaining = remaining
                        o.status = (OrderStatus.FILLED if remaining == 0 else OrderStatus.PARTIALLY_FILLED).value
                        o.updated_ts = ev.ts
            elif isinstance(ev, OrderAmended):
                o = order(ev.order_id)
                if o is not None:
                    o.price, o.qty, o.remaining = ev.price, ev.qty, ev.remaining
                    o.status = (OrderStatus.PARTIALLY_FILLED if o.filled else OrderStatus.OPEN).value
                    o.updated_ts = ev.ts
            elif isinstance(ev, OrderCancelled | OrderExpired):
                o = order(ev.order_id)
                if o is not None:
                    o.remaining = 0
                    o.status = (OrderStatus.CANCELLED if isinstance(ev, OrderCancelled) else OrderStatus.EXPIRED).value
                    o.updated_ts = ev.ts
            elif isinstance(ev, InstrumentStatusChanged):
                session.execute(
                    sa.update(InstrumentRow)
                    .where(InstrumentRow.symbol == ev.symbol)
                    .values(status=ev.status.name.lower())
                )
        state.last_seq = cmd_seq
    session.flush()
    if trade_ids:
        # A settlement update can arrive before its trade is projected: mirror it now.
        settled = sa.select(SettlementRow.status).where(SettlementRow.trade_id == TradeRow.trade_id).scalar_subquery()
        session.execute(
            sa.update(TradeRow)
            .where(TradeRow.trade_id.in_(trade_ids), sa.exists().where(SettlementRow.trade_id == TradeRow.trade_id))
            .values(settlement_status=settled)
            .execution_options(synchronize_session=False)
        )
    return state.last_seq


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


def _factory(factory: EngineFactory[Any] | None) -> EngineFactory[Any]:
    from journal.snapshot import default_engine_factory

    return factory or default_engine_factory()


def rebuild_from_journal(
    journal: Journal, store: Store, *, factory: EngineFactory[Any] | None = None, batch_size: int = 5000
) -> int:
    """Drop the orders/trades projection and rebuild it by replaying the whole journal through a
    fresh engine. Settlement states are re-mirrored from the settlements table. Returns last seq."""
    store.clear_projection()
    return _replay_into(journal, store, _factory(factory).new(), after_seq=0, project_after=0, batch_size=batch_size)


def sync_from_journal(
    journal: Journal, store: Store, *, factory: EngineFactory[Any] | None = None, batch_size: int = 5000
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
    journal: Journal, store: Store, engine: EngineLike, *, after_seq: int, project_after: int, batch_size: int
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
