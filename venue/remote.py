"""The leader's side of ``venue gateway`` processes: a NATS responder and the event publisher.

Subjects, per stream (``omn.<STREAM>.*``, so venues sharing a NATS cluster stay apart):

    rpc          request/reply, queue group ``leader``: ``{"op", "args", "id"}`` -> ``{"ok": value,
                 "pos": stream_seq}`` or ``{"err": code, "msg": text}`` (values in ``market.wire``;
                 ``pos``: the journal position of the state the answer was read from). Only the
                 process holding the lease subscribes, so only the leader answers.
    events       every engine event the leader's core fans out, in ``seq`` order, in batches of
                 ``[[stream_seq, [event, ...]], ...]`` (the events of one journal position
                 together: ``VenuePort.stream_seq``); the header ``Omn-Seq`` carries the seq of the
                 batch's last event.
    settlements  settlement notices.
    keys         the ids of API keys the leader's reference data just dropped (revoked or deleted in
                 the store): every gateway closes their websocket sessions (4010 ``KEY_REVOKED``) and
                 forgets them from its key cache, as the leader does with its own sessions.

A command retried under the same request ``id`` while the first is running or after it answered
(a lost reply) gets the first answer (bounded memory). After a leader change the new leader has
no such memory, but it read every journaled client order id from the stream: a new order retried
with the same client order id is refused there with ``CLIENT_ORDER_ID_REUSED``, and the responder
answers with that order's acknowledgement instead: from the book when it rests, else from the store
(filled, cancelled; without its fill list) - so an in-flight order retried across a failover is
executed at most once and answered. A cancel, amend or mass cancel is journaled with its request id
(``journal.sequencer.REQUEST_ID``, the stream message's ``Omn-Requests`` header); a standby keeps
the result of each it applies (``venue.ha.Follower.answers``) and, once leading, answers a retry
under that id with the first outcome instead of running it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from engine import AmendOrder, CancelOrder, Command, Event, MassCancel, NewOrder, OrderView, ResultCode
from engine import Result as EngineResult
from journal.sequencer import REQUEST_ID
from market import wire
from market.history import OrderRecord
from market.model import OrderAck, OrderStatus, Outcome, SettlementNotice

log = logging.getLogger(__name__)

# what a gateway may call on the leader: the gateway's ``VenuePort`` (subscriptions are subjects)
OPS = frozenset({"listings", "listing", "api_key", "submit", "submit_batch", "set_status", "l2", "order",
                 "open_orders", "trades", "order_record", "trade_history"})
_MEMORY = 50_000  # request ids remembered for retries
_TAGGED = (AmendOrder, CancelOrder, MassCancel)  # journaled with their request id (new orders: the client order id)
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # fits the journal's "seq=id,..." header


def subjects(stream: str) -> tuple[str, str, str]:
    """(rpc, events, settlements) subjects of the venue on stream ``stream``."""
    base = f"omn.{stream}"
    return f"{base}.rpc", f"{base}.events", f"{base}.settlements"


def keys_subject(stream: str) -> str:
    """The subject on which the leader of stream ``stream`` announces revoked API keys."""
    return f"omn.{stream}.keys"


def _reused(outcome: Outcome) -> bool:
    rejection = outcome.rejection or (outcome.ack.rejection if outcome.ack is not None else None)
    return rejection is not None and rejection.code == "CLIENT_ORDER_ID_REUSED"


def resting_ack(view: OrderView) -> Outcome:
    """The answer to a new order found resting on the book: its acknowledgement as of now."""
    filled = view.qty - view.remaining
    ack = OrderAck(order_id=view.order_id, client_order_id=view.client_order_id, symbol=view.symbol,
                   side=view.side, status=OrderStatus.of(filled, view.qty, False), price=view.price, qty=view.qty,
                   filled=filled, remaining=view.remaining, ts=view.accepted_ts)
    return Outcome(result=EngineResult(code=ResultCode.OK, events=(), order_id=view.order_id), ack=ack)


def recorded_ack(record: OrderRecord) -> Outcome:
    """The answer to a new order found finished (filled, cancelled, expired): its state as of now,
    without its fill list (the client reads its fills by order id)."""
    status = OrderStatus.CANCELLED if record.state is OrderStatus.EXPIRED else record.state
    ack = OrderAck(order_id=record.order_id, client_order_id=record.client_order_id, symbol=record.symbol,
                   side=record.side, status=status, price=record.price, qty=record.qty, filled=record.filled,
                   remaining=record.remaining, ts=record.accepted_ts)
    return Outcome(result=EngineResult(code=ResultCode.OK, events=(), order_id=record.order_id), ack=ack)


class LeaderResponder:
    """Answers gateways' requests through ``core`` (the venue's normal pipeline) and publishes the
    events and settlement notices ``core`` fans out. Runs on the venue's event loop."""

    def __init__(self, core: Any, servers: list[str], stream: str, *,
                 alive: Callable[[], bool] = lambda: True,
                 earlier: Mapping[str, tuple[Command, EngineResult]] | None = None) -> None:
        self.core = core
        # request id -> (command, result) of the tagged commands journaled by earlier leaders and
        # applied by this process as a follower (``venue.ha.Follower.answers``)
        self.earlier: Mapping[str, tuple[Command, EngineResult]] = earlier if earlier is not None else {}
        self.alive = alive  # False once fenced: answer nothing more, so gateways retry at the new leader
        self.servers = servers
        self.rpc, self.events_subject, self.settlements_subject = subjects(stream)
        self.keys_subject = keys_subject(stream)
        self.nc: NatsClient | None = None
        self._answers: OrderedDict[str, asyncio.Future[bytes]] = OrderedDict()
        self._outbox: asyncio.Queue[tuple[str, bytes, dict[str, str]] | None] = asyncio.Queue()
        self._pending: list[tuple[int, list[Event]]] = []  # (stream_seq, its events), in order
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: list[Callable[[], None]] = []
        self._publisher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.nc = await nats.connect(servers=self.servers, name="omn-leader-rpc", reconnect_time_wait=0.2,
                                     max_reconnect_attempts=-1, allow_reconnect=True)
        self._unsubscribe = [self.core.subscribe_events(self._on_event),
                             self.core.subscribe_settlements(self._on_settlement)]
        self._publisher = asyncio.ensure_future(self._publish_loop())
        reference = getattr(self.core, "reference", None)  # venue.reference.ReferenceData (the real core)
        if reference is not None:
            reference.on_keys_revoked = self._announcing_revocations(reference.on_keys_revoked)
        await self.nc.subscribe(self.rpc, queue="leader", cb=self._on_request)
        await self.nc.flush()

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._outbox.put_nowait(None)
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._publisher, 5)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    # -- events out

    def _on_event(self, event: Event) -> None:
        position = self.core.stream_seq
        if self._pending and self._pending[-1][0] == position:
            self._pending[-1][1].append(event)
        else:
            self._pending.append((position, [event]))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            payload = wire.dumps([[position, events] for position, events in batch])  # lists: no tuple tags
            self._outbox.put_nowait((self.events_subject, payload, {"Omn-Seq": str(batch[-1][1][-1].seq)}))

    def _on_settlement(self, notice: SettlementNotice) -> None:
        self._outbox.put_nowait((self.settlements_subject, wire.dumps(notice), {}))

    def _announcing_revocations(self, then: Callable[[list[Any]], object] | None) -> Callable[[list[Any]], None]:
        """``ReferenceData.on_keys_revoked``: announce the keys to the gateways, then ``then`` (the
        leader's own session closing and order enforcement)."""

        def on_revoked(keys: list[Any]) -> None:
            self._outbox.put_nowait((self.keys_subject, wire.dumps([key.key_id for key in keys]), {}))
            if then is not None:
                then(keys)

        return on_revoked

    async def _publish_loop(self) -> None:
        while (item := await self._outbox.get()) is not None:
            subject, payload, headers = item
            assert self.nc is not None
            try:
                await self.nc.publish(subject, payload, headers=headers or None)
            except Exception as exc:  # NATS reconnecting: the gateways see a gap and resynchronise
                log.warning("cannot publish on %s: %r", subject, exc)

    # -- requests in

    async def _on_request(self, msg: Msg) -> None:
        task = asyncio.ensure_future(self._answer(msg))  # concurrently: the callback must not block
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        if not self.alive():
            return
        try:
            request = wire.loads(msg.data)
            if (not isinstance(request, dict) or request.get("op") not in OPS
                    or not isinstance(request.get("args"), list)):
                raise wire.WireError("a request is {op, args, id} with a known op")
        except wire.WireError as exc:
            await msg.respond(wire.dumps({"err": "REMOTE_BAD_REQUEST", "msg": str(exc)}))
            return
        rid = request.get("id")
        if isinstance(rid, str) and rid:
            answer = self._answers.get(rid)
            if answer is None:
                answer = asyncio.ensure_future(self._execute(request))
                self._answers[rid] = answer
                while len(self._answers) > _MEMORY:
                    self._answers.popitem(last=False)
            payload = await asyncio.shield(answer)
        else:
            payload = await self._execute(request)
        if not self.alive():
            return  # deposed (the stream refused this process): the gateway times out and asks again
        with contextlib.suppress(Exception):  # the gateway went away: it retries under the same id
            await msg.respond(payload)

    async def _execute(self, request: dict[str, Any]) -> bytes:
        op: str = request["op"]
        args: list[Any] = request["args"]
        kwargs = request.get("kw") or {}
        raw_id = request.get("id")
        rid = raw_id if isinstance(raw_id, str) and _SAFE_ID.fullmatch(raw_id) is not None else None
        tagged = op == "submit" and len(args) == 2 and isinstance(args[1], _TAGGED) and rid is not None
        if tagged and rid is not None and rid in self.earlier:  # the dead leader journaled it: its outcome
            cmd, result = self.earlier[rid]
            return wire.dumps({"ok": self._first_outcome(cmd, result), "pos": self.core.stream_seq})
        token = REQUEST_ID.set(rid) if tagged else None  # journaled with the command (``Omn-Requests``)
        try:
            value = getattr(self.core, op)(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
            if op == "submit" and isinstance(value, Outcome) and _reused(value) and isinstance(args[1], NewOrder):
                value = await self._earlier(args[0], args[1]) or value
            return wire.dumps({"ok": value, "pos": self.core.stream_seq})
        except Exception as exc:
            log.exception("request %s from a gateway failed", op)
            return wire.dumps({"err": getattr(exc, "code", "REMOTE_ERROR"), "msg": str(exc)})
        finally:
            if token is not None:
                REQUEST_ID.reset(token)

    def _first_outcome(self, cmd: Command, result: EngineResult) -> Outcome:
        """The outcome the dead leader answered a journaled cancel/amend with (as the pipeline
        builds it; an amend's fills without their premium to the NAV)."""
        coid = ""
        if isinstance(cmd, AmendOrder):
            view = self.core.order(cmd.order_id)
            coid = view.client_order_id if view is not None else ""
        return Outcome(result=result, ack=OrderAck.answer(cmd, result, amend_client_order_id=coid))

    async def _earlier(self, participant: str, cmd: NewOrder) -> Outcome | None:
        """The acknowledgement of the order ``cmd`` repeats: on the book, or finished (from the store)."""
        for view in self.core.open_orders(participant, cmd.symbol):
            if view.client_order_id == cmd.client_order_id and view.side == cmd.side and view.price == cmd.price:
                return resting_ack(view)
        record = await self.core.order_by_client_id(participant, cmd.client_order_id)
        if record is None or (record.symbol, record.side, record.price) != (cmd.symbol, cmd.side, cmd.price):
            return None
        return recorded_ack(record)
