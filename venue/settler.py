"""Settlement as a durable consumer: ``venue settler``, and the leader's side of it.

    leader (--settlement external)                      settler (any machine; one per venue)
      trade passes the pre-settlement re-check
      -> publish TradeToSettle on the stream    ──>   durable pull consumer (explicit ack)
         <STREAM>_SETTLE (file, replicated)            -> SettlementService.recover: asks the chain first
                                                          (decided: report it; else queue and settle)
      core.on_settlement_update  <── omn.<STREAM>.settled ── every state of the trade
                                                          -> ack the trade's message once terminal

Exactly once: a settle request is acknowledged only when its trade's settlement is final
(CONFIRMED, or FINAL with finality tracking, or FAILED). A settler that dies redelivers the
unacknowledged requests to its successor, which asks the chain before sending (``recover``: a trade
decided before the crash is reported, not sent again), and the contract refuses a second decision
for a trade id in any case (``TradeAlreadyDecided``). The leader stays the one that decides
*whether* a trade settles (its pre-settlement re-check) and the one that records and publishes
settlement states (store, subscribers, gateways). A state published while no leader listens is
not lost for good: a new leader sends every unfinished trade again at takeover
(``ExternalSettlement.recover``), and the settler answers a request for a decided trade with its
decision from the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from journal.nats import NatsLoop, parse_url
from market import wire
from market.model import SettlementState, SettlementUpdate
from market.signed import SignedOrder
from settlement.service import SettlementService, TradeToSettle

log = logging.getLogger(__name__)

UpdateSink = Callable[[SettlementUpdate], None]
_TRADE_FIELDS = tuple(f.name for f in dataclasses.fields(TradeToSettle))


def settle_stream(stream: str) -> str:
    return f"{stream}_SETTLE"


def settle_subject(stream: str) -> str:
    return f"omn.{stream}.settle"


def settled_subject(stream: str) -> str:
    return f"omn.{stream}.settled"


def encode_trade(trade: TradeToSettle) -> bytes:
    return wire.dumps({name: getattr(trade, name) for name in _TRADE_FIELDS})


def decode_trade(data: bytes) -> TradeToSettle:
    """A settle request; ``wire.WireError`` if it is not one."""
    raw = wire.loads(data)
    if not isinstance(raw, dict) or set(raw) != set(_TRADE_FIELDS):
        raise wire.WireError("not a settle request")
    for side in ("sell_order", "buy_order"):
        if raw[side] is not None and not isinstance(raw[side], SignedOrder):
            raise wire.WireError(f"{side} is not a signed order")
    try:
        return TradeToSettle(**raw)
    except TypeError as exc:
        raise wire.WireError(str(exc)) from exc


def decode_update(data: bytes) -> SettlementUpdate:
    update = wire.loads(data)
    if not isinstance(update, SettlementUpdate):
        raise wire.WireError("not a settlement update")
    return update


async def ensure_settle_stream(js: JetStreamContext, stream: str, replicas: int) -> None:
    for attempt in range(50):  # a cluster that has just started elects its meta leader first
        try:
            try:
                await js.stream_info(settle_stream(stream))
            except NotFoundError:
                await js.add_stream(StreamConfig(
                    name=settle_stream(stream), subjects=[settle_subject(stream)], storage=StorageType.FILE,
                    num_replicas=replicas, duplicate_window=120.0))
            return
        except NotFoundError:
            raise
        except Exception:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)


def terminal(status: SettlementState, *, finality: bool) -> bool:
    return status in (SettlementState.FAILED, SettlementState.FINAL) or (
        status is SettlementState.CONFIRMED and not finality)


# ---------------------------------------------------------------- the leader's side


class ExternalSettlement(SettlementService):
    """The leader's settlement service with ``settlement_mode = "external"``: ``submit`` and
    ``recover`` publish settle requests (durably: retried until the stream acknowledges), ``run``
    feeds the settler's updates to ``on_update``. It never sends a transaction."""

    def __init__(self, *args: Any, journal_url: str, replicas: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        servers, self._stream = parse_url(journal_url)
        self._conn = NatsLoop(servers, timeout=5.0)
        self._conn.call(ensure_settle_stream(self._conn.js, self._stream, replicas))
        self._publisher = uuid.uuid4().hex[:12]  # a takeover sends again what its predecessor sent

    def submit(self, trade: TradeToSettle) -> None:
        trade = trade.normalized()
        self._request(trade)
        self._notify(SettlementUpdate(trade_id=trade.trade_id, status=SettlementState.PENDING), self._on_update)

    def recover(self, unfinished: Iterable[TradeToSettle], *, from_block: int = 0) -> list[SettlementUpdate]:
        """Ask the settler again about every unfinished trade: it answers from the chain."""
        for trade in unfinished:
            self._request(trade.normalized())
        return []

    def _request(self, trade: TradeToSettle) -> None:
        self._conn.spawn(_publish_retried(self._conn.js, settle_subject(self._stream), encode_trade(trade),
                                          f"{self._publisher}:{trade.trade_id}"))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._loop = loop

        async def heard(msg: Msg) -> None:
            try:
                update = decode_update(msg.data)
            except wire.WireError as exc:
                log.warning("ignored a settlement update that is not one: %s", exc)
                return
            loop.call_soon_threadsafe(self._notify, update, self._on_update)

        sub = self._conn.call(self._conn.nc.subscribe(settled_subject(self._stream), cb=heard))
        try:
            while not self._stopping:
                await self._wakeup.wait()
                self._wakeup.clear()
        finally:
            with contextlib.suppress(Exception):
                self._conn.call(sub.unsubscribe())
            await asyncio.to_thread(self._conn.close)


async def _publish_retried(js: JetStreamContext, subject: str, data: bytes, msg_id: str) -> None:
    for attempt in range(1, 121):  # about a minute: a NATS node failing over
        try:
            await js.publish(subject, data, timeout=2.0, headers={"Nats-Msg-Id": msg_id})
            return
        except Exception as exc:
            if attempt == 120:
                log.error("settle request %s not published (a takeover sends it again): %r", msg_id, exc)
                return
            await asyncio.sleep(0.5)


def settlement_service(external: bool, journal_url: str | None, replicas: int,
                       *args: Any, **kwargs: Any) -> SettlementService:
    """The leader's settlement service: in process, or the settler's (``external``)."""
    if not external:
        return SettlementService(*args, **kwargs)
    if journal_url is None:
        raise ValueError("settlement_mode = external needs journal_url = nats://...")
    return ExternalSettlement(*args, journal_url=journal_url, replicas=replicas, **kwargs)


# ---------------------------------------------------------------- the settler


class Settler:
    """Consumes settle requests and settles them (see the module docstring). ``make_service``
    builds the ``SettlementService`` around the settler's ``on_update``."""

    def __init__(self, journal_url: str, make_service: Callable[[UpdateSink], SettlementService], *,
                 name: str = "settler", replicas: int = 1, ack_wait_s: float = 10.0) -> None:
        self._servers, self._stream = parse_url(journal_url)
        self._make_service = make_service
        self.name = name
        self._replicas = replicas
        # a request delivered to a settler that died comes again after this long; a live settler
        # keeps its unfinished requests with a heartbeat every third of it (``in_progress``)
        self._ack_wait_s = ack_wait_s
        self._inflight: dict[int, list[Msg]] = {}  # trade id -> its unacknowledged requests
        self._nc: NatsClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.service: SettlementService | None = None
        self.published: list[SettlementUpdate] = []
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        nc = self._nc = await nats.connect(servers=self._servers, reconnect_time_wait=0.2, max_reconnect_attempts=-1,
                                           name=f"omn-{self.name}")
        js = nc.jetstream(timeout=5.0)
        await ensure_settle_stream(js, self._stream, self._replicas)
        psub = await js.pull_subscribe(settle_subject(self._stream), durable=self.name,
                                       stream=settle_stream(self._stream),
                                       config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                             ack_wait=self._ack_wait_s))
        service = self.service = self._make_service(self._on_update)
        task = service.start()
        self.ready.set()
        heartbeat = time.monotonic()
        try:
            while not stop.is_set() and not task.done():
                if time.monotonic() - heartbeat >= self._ack_wait_s / 3:
                    heartbeat = time.monotonic()
                    for held in list(self._inflight.values()):
                        for msg in held:
                            with contextlib.suppress(Exception):
                                await msg.in_progress()
                try:
                    msgs = await psub.fetch(256, timeout=min(0.5, self._ack_wait_s / 6))
                except (TimeoutError, NatsTimeoutError):
                    continue
                fresh = self._take(msgs)
                if fresh:
                    await asyncio.to_thread(service.recover, fresh, from_block=0)
        finally:
            service.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
            await nc.close()

    def _take(self, msgs: list[Msg]) -> list[TradeToSettle]:
        fresh: list[TradeToSettle] = []
        for msg in msgs:
            try:
                trade = decode_trade(msg.data).normalized()
            except Exception as exc:  # never settleable: refused for good, not redelivered
                log.error("settle request refused: %s", exc)
                self._spawn(msg.term())
                continue
            held = self._inflight.setdefault(trade.trade_id, [])
            held.append(msg)
            if len(held) == 1:
                fresh.append(trade)
        return fresh

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _on_update(self, update: SettlementUpdate) -> None:
        """Called on the event loop (``run``) or a worker thread (``recover``): hop to the loop."""
        self._spawn(self._publish(update))

    async def _publish(self, update: SettlementUpdate) -> None:
        assert self._nc is not None and self.service is not None
        self.published.append(update)
        await self._nc.publish(settled_subject(self._stream), wire.dumps(update))
        if terminal(update.status, finality=self.service.finality is not None):
            await self._nc.flush()  # the state is out before the request is acknowledged
            for msg in self._inflight.pop(update.trade_id, []):
                await msg.ack()
