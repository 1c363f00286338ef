"""Order entry shared by REST and websocket: validation to engine commands, client order id
idempotency, and turning the venue's ``Outcome`` into a reply.

Idempotency: per participant, a client order id maps to the first request's reply. A duplicate
with the same content gets that reply again (also while the first is still in flight: it waits
for it); a duplicate with different content is refused with CLIENT_ORDER_ID_REUSED. Requests
refused before reaching the venue (bad input) are not remembered, so they can be corrected and
resent under the same id. The memory is per gateway process and bounded (oldest ids forgotten).
Across a restart: resting orders are seeded from the book (a resend gets that order), and the venue
refuses with CLIENT_ORDER_ID_REUSED every other id its journal holds (a filled IOC, a cancelled
order), so a retry after a restart never creates a second order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import (
    AmendOrder,
    CancelOrder,
    CancelReason,
    InstrumentStatus,
    MassCancel,
    NewOrder,
    OrderCancelled,
    OrderType,
    ResultCode,
    Side,
    StpMode,
    TimeInForce,
)
from gateway import metrics
from gateway.config import GatewayConfig
from gateway.decimals import format_price, format_qty, parse_price, parse_qty
from gateway.errors import ApiError, engine_message, error_body, http_status
from gateway.ports import Listing, OrderAck, Outcome, VenuePort
from gateway.render import JSON, side_text
from gateway.schemas import AmendRequest, CancelRequest, MassCancelRequest, NewOrderRequest
from gateway.signed import signed_attachment
from market.model import OrderStatus

log = logging.getLogger(__name__)
Command = NewOrder | AmendOrder | CancelOrder | MassCancel

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_TIFS = {"gtc": TimeInForce.GTC, "gtd": TimeInForce.GTD, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}
_STPS = {"cancel_newest": StpMode.CANCEL_NEWEST, "cancel_oldest": StpMode.CANCEL_OLDEST,
         "cancel_both": StpMode.CANCEL_BOTH, "decrement": StpMode.DECREMENT}
_TYPES = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
STATUSES = {"pre_open": InstrumentStatus.PRE_OPEN, "open": InstrumentStatus.OPEN,
            "halted": InstrumentStatus.HALTED, "closed": InstrumentStatus.CLOSED, "call": InstrumentStatus.CALL}


@dataclass(frozen=True, slots=True)
class Reply:
    """HTTP-like status plus JSON body; websocket replies carry the same body."""

    status: int
    body: JSON

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass(slots=True)
class _Entry:
    """One remembered client order id: its request's fingerprint and, once answered, the reply
    (or the error). A future exists only while someone waits for an unanswered entry (a duplicate
    sent while the first is in flight), not per order."""

    fingerprint: tuple[Any, ...]
    reply: Reply | None = None
    error: ApiError | None = None
    order_id: int | None = None
    waiter: asyncio.Future[Reply] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.reply is not None or self.error is not None

    def answer(self, reply: Reply) -> None:
        order_id = reply.body.get("order_id")
        self.order_id = order_id if isinstance(order_id, int) else None
        self.reply = reply
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(reply)

    def refuse(self, error: ApiError) -> None:
        self.error = error
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
            self.waiter.exception()  # mark retrieved: the waiters still receive it

    async def wait(self) -> Reply:
        if self.reply is not None:
            return self.reply
        if self.error is not None:
            raise self.error
        if self.waiter is None:
            self.waiter = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self.waiter)


def fingerprint(req: NewOrderRequest) -> tuple[Any, ...]:
    """What makes two new-order requests "the same order" for idempotency: every field (the
    model's field order; cheaper than ``model_dump``)."""
    return (req.symbol, req.side, req.qty, req.price, req.type, req.tif, req.expire_ts, req.post_only, req.stp,
            req.client_order_id)


def _error(code: str, message: str, **extra: Any) -> Reply:
    return Reply(http_status(code), error_body(code, message, **extra))


class OrderService:
    def __init__(self, venue: VenuePort, config: GatewayConfig) -> None:
        self._venue = venue
        self._max_ids = config.idempotency_max_per_participant
        self._ids: dict[str, OrderedDict[str, _Entry]] = {}
        self._prefix = "gw" + secrets.token_hex(4)
        self._auto = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def listing(self, symbol: str) -> Listing:
        listing = self._venue.listing(symbol)
        if listing is None:
            raise ApiError("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
        return listing

    # ------------------------------------------------------------ new order

    def build_new(self, participant: str, req: NewOrderRequest, session: str, coid: str) -> NewOrder:
        listing = self.listing(req.symbol)
        qty = parse_qty(req.qty, listing)
        price = parse_price(req.price, listing) if req.price is not None else None
        return NewOrder(
            ts=0, participant=participant, symbol=req.symbol, side=_SIDES[req.side], qty=qty, price=price,
            order_type=_TYPES[req.type], tif=_TIFS[req.tif], expire_ts=req.expire_ts, post_only=req.post_only,
            stp=_STPS[req.stp], client_order_id=coid, session=session,
            attachment=signed_attachment(req.signed_order),
        )

    async def new_order(self, participant: str, req: NewOrderRequest, *, session: str = "") -> Reply:
        coid = req.client_order_id or f"{self._prefix}-{next(self._auto)}"
        cmd = self.build_new(participant, req, session, coid)  # raises ApiError on bad input
        if req.client_order_id is None:
            return self._new_reply(await self._submit(participant, cmd), cmd)
        ids = self._participant_ids(participant)
        entry = self._remember(ids, coid, req)
        if entry is None:
            entry = ids[coid]
            # The venue work runs in its own task: a caller that goes away (client disconnect) must
            # not leave an order in the venue whose id the gateway forgot.
            task = asyncio.ensure_future(self._complete_new(self._start(participant, cmd), cmd, ids, entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await entry.wait()

    def _remember(self, ids: OrderedDict[str, _Entry], coid: str, req: NewOrderRequest) -> _Entry | None:
        """The earlier entry of ``coid`` when this request repeats it (None: ``coid`` is new and now
        remembered); CLIENT_ORDER_ID_REUSED when it was used for a different order."""
        fp = fingerprint(req)
        entry = ids.get(coid)
        if entry is not None:
            if entry.fingerprint and entry.fingerprint != fp:
                raise ApiError("CLIENT_ORDER_ID_REUSED",
                               f"client_order_id {coid!r} was already used for a different order")
            return entry
        ids[coid] = _Entry(fingerprint=fp)
        self._evict(ids)
        return None

    async def _complete_new(self, submitted: asyncio.Future[Outcome], cmd: NewOrder,
                            ids: OrderedDict[str, _Entry], entry: _Entry) -> None:
        try:
            reply = self._new_reply(await self._outcome(submitted), cmd)
        except Exception as exc:
            ids.pop(cmd.client_order_id, None)  # the venue never answered: a retry under the same id is safe
            entry.refuse(exc if isinstance(exc, ApiError) else ApiError("VENUE_ERROR", "venue failed"))
            return
        entry.answer(reply)

    async def new_orders(self, participant: str, reqs: Sequence[NewOrderRequest], *,
                         session: str = "") -> list[Reply | ApiError]:
        """Several new orders of one participant (a websocket read pass) as one venue batch: each
        is checked and remembered like ``new_order`` in one synchronous stretch, the valid ones go
        to ``VenuePort.submit_batch`` together (consecutive seqs, one journal group), and the
        answer is one reply or error per request, in request order. A repeat of a client order id
        (also one earlier in the same batch) gets that order's reply, as with ``new_order``.

        Call it from a task that is never cancelled (``gateway.ws`` runs each batch in its own
        task, which the session waits for and never cancels): cancelled while the venue has the
        batch, it would leave orders in the venue whose client order ids are never answered."""
        answers: list[Reply | ApiError | None] = [None] * len(reqs)
        cmds: list[NewOrder] = []
        slots: list[tuple[int, _Entry | None]] = []
        repeats: list[tuple[int, _Entry]] = []
        ids: OrderedDict[str, _Entry] | None = None
        for i, req in enumerate(reqs):
            try:
                coid = req.client_order_id or f"{self._prefix}-{next(self._auto)}"
                cmd = self.build_new(participant, req, session, coid)
                entry: _Entry | None = None
                if req.client_order_id is not None:
                    ids = self._participant_ids(participant) if ids is None else ids
                    earlier = self._remember(ids, coid, req)
                    if earlier is not None:
                        repeats.append((i, earlier))
                        continue
                    entry = ids[coid]
            except ApiError as err:
                answers[i] = err
                continue
            cmds.append(cmd)
            slots.append((i, entry))
        if cmds:
            try:
                # Not shielded (a shield is a task and two loop turns more per batch, ~15 us): the
                # caller runs this in a task nobody cancels (see the docstring).
                outcomes = await self._venue.submit_batch(participant, cmds)
            except Exception as exc:
                if not isinstance(exc, ApiError):
                    log.exception("venue.submit_batch failed")
                failure = exc if isinstance(exc, ApiError) else ApiError(
                    "VENUE_ERROR", "the venue could not process the command; retry later")
                for cmd, (i, entry) in zip(cmds, slots, strict=True):
                    record_outcome(cmd, None)
                    answers[i] = failure
                    if entry is not None and ids is not None:
                        ids.pop(cmd.client_order_id, None)  # never answered: a retry under the same id is safe
                        entry.refuse(failure)
            else:
                for cmd, (i, entry), outcome in zip(cmds, slots, outcomes, strict=True):
                    record_outcome(cmd, outcome)
                    reply = self._new_reply(outcome, cmd)
                    answers[i] = reply
                    if entry is not None:
                        entry.answer(reply)
        for i, entry in repeats:
            try:
                answers[i] = await entry.wait()
            except ApiError as err:
                answers[i] = err
        return [a if a is not None else ApiError("INTERNAL_ERROR", "internal error") for a in answers]

    def _participant_ids(self, participant: str) -> OrderedDict[str, _Entry]:
        """This participant's remembered ids; on first use seeded from its open orders, so a
        client retrying after a gateway restart gets its resting order, not a second one."""
        ids = self._ids.get(participant)
        if ids is None:
            ids = self._ids[participant] = OrderedDict()
            for view in self._venue.open_orders(participant):
                listing = self._venue.listing(view.symbol)
                if not view.client_order_id or listing is None:
                    continue
                filled = view.qty - view.remaining
                body = {"order_id": view.order_id, "client_order_id": view.client_order_id, "symbol": view.symbol,
                        "side": side_text(view.side), "status": OrderStatus.of(filled, view.qty, False).value,
                        "price": format_price(view.price, listing), "qty": format_qty(view.qty, listing),
                        "filled_qty": format_qty(filled, listing), "remaining_qty": format_qty(view.remaining, listing),
                        "fills": [], "cancel_reason": None, "priority_kept": None, "ts": view.accepted_ts}
                # empty fingerprint: the original request is unknown, any resend gets this order
                ids[view.client_order_id] = _Entry(fingerprint=(), reply=Reply(200, body), order_id=view.order_id)
        return ids

    def _evict(self, ids: OrderedDict[str, _Entry]) -> None:
        while len(ids) > self._max_ids:
            oldest_key = next(iter(ids))
            if not ids[oldest_key].done:
                break
            del ids[oldest_key]

    def _start(self, participant: str, cmd: Command) -> asyncio.Future[Outcome]:
        """Hands the command to the venue now. Every path starts its venue call synchronously at
        this point, so commands reach the venue in the order the client sent them."""
        future = asyncio.ensure_future(self._venue.submit(participant, cmd))
        future.add_done_callback(lambda f: _count(cmd, f))
        return future

    @staticmethod
    async def _outcome(submitted: asyncio.Future[Outcome]) -> Outcome:
        try:
            return await asyncio.shield(submitted)  # runs to the end even if our caller goes away
        except ApiError:
            raise
        except Exception as exc:
            log.exception("venue.submit failed")
            raise ApiError("VENUE_ERROR", "the venue could not process the command; retry later") from exc

    async def _submit(self, participant: str, cmd: Command) -> Outcome:
        return await self._outcome(self._start(participant, cmd))

    @staticmethod
    def _refusal(outcome: Outcome, **extra: Any) -> Reply | None:
        if outcome.rejection is not None:
            return _error(outcome.rejection.code, outcome.rejection.message, **extra)
        result = outcome.result
        if result is None:
            return _error("VENUE_ERROR", "the venue returned no result")
        if result.code is not ResultCode.OK:
            return _error(result.code.name, engine_message(result.code), **extra)
        return None

    def _new_reply(self, outcome: Outcome, cmd: NewOrder) -> Reply:
        refused = self._refusal(outcome, client_order_id=cmd.client_order_id)
        if refused is not None:
            return refused
        ack = outcome.ack
        if ack is None or ack.order_id is None:
            return _error("VENUE_ERROR", "the venue accepted the order without an order id")
        return Reply(200, self._ack_body(ack, self.listing(cmd.symbol)))

    @staticmethod
    def _ack_body(ack: OrderAck, listing: Listing) -> JSON:
        """The venue's typed acknowledgement as the reply body (new orders and amends)."""
        assert ack.side is not None and ack.status is not None
        side = side_text(ack.side)
        return {
            "order_id": ack.order_id, "client_order_id": ack.client_order_id, "symbol": ack.symbol, "side": side,
            "status": ack.status.value,
            "price": None if ack.price is None else format_price(ack.price, listing),
            "qty": format_qty(ack.qty, listing), "filled_qty": format_qty(ack.filled, listing),
            "remaining_qty": format_qty(ack.remaining, listing),
            "fills": [{"trade_id": f.trade_id, "symbol": ack.symbol, "order_id": ack.order_id, "side": side,
                       "price": format_price(f.price, listing), "qty": format_qty(f.qty, listing),
                       "liquidity": "taker" if f.taker else "maker", "premium_bps": f.premium_bps, "ts": f.ts}
                      for f in ack.fills],
            "cancel_reason": None if ack.cancel_reason is None else ack.cancel_reason.name.lower(),
            "priority_kept": ack.priority_kept, "ts": ack.ts,
        }

    refusal = _refusal  # public names for the other order-entry services (gateway.mm)
    ack_body = _ack_body

    # ------------------------------------------------------------ amend / cancel

    async def resolve(self, participant: str, order_id: int | None, coid: str | None) -> int:
        """The engine order id addressed by ``order_id`` or ``client_order_id`` (exactly one)."""
        if (order_id is None) == (coid is None):
            raise ApiError("MISSING_FIELD", "give exactly one of order_id and client_order_id")
        if order_id is not None:
            return order_id
        assert coid is not None
        entry = self._participant_ids(participant).get(coid)
        if entry is not None:
            if not entry.done:
                await entry.wait()
            if entry.order_id is not None:
                return entry.order_id
        for view in self._venue.open_orders(participant):
            if view.client_order_id == coid:
                return view.order_id
        raise ApiError("UNKNOWN_ORDER", f"no order with client_order_id {coid!r}")

    def _owned(self, participant: str, order_id: int) -> None:
        view = self._venue.order(order_id)
        if view is None or view.participant != participant:  # never reveal others' orders
            raise ApiError("UNKNOWN_ORDER", f"unknown order {order_id}")

    async def amend(self, participant: str, req: AmendRequest) -> Reply:
        order_id = await self.resolve(participant, req.order_id, req.client_order_id)
        view = self._venue.order(order_id)
        if view is None or view.participant != participant:
            raise ApiError("UNKNOWN_ORDER", f"unknown order {order_id}")
        if req.price is None and req.qty is None:
            raise ApiError("MISSING_FIELD", "amend needs price and/or qty")
        listing = self.listing(view.symbol)
        price = parse_price(req.price, listing) if req.price is not None else None
        qty = parse_qty(req.qty, listing) if req.qty is not None else None
        cmd = AmendOrder(ts=0, participant=participant, order_id=order_id, price=price, qty=qty)
        outcome = await self._submit(participant, cmd)
        refused = self._refusal(outcome, order_id=order_id)
        if refused is not None:
            return refused
        ack = outcome.ack
        if ack is None or ack.order_id != order_id:
            return _error("VENUE_ERROR", "the venue confirmed the amend without an amend event")
        return Reply(200, self._ack_body(ack, listing))

    async def cancel(self, participant: str, req: CancelRequest) -> Reply:
        order_id = await self.resolve(participant, req.order_id, req.client_order_id)
        self._owned(participant, order_id)
        outcome = await self._submit(participant, CancelOrder(ts=0, participant=participant, order_id=order_id))
        refused = self._refusal(outcome, order_id=order_id)
        if refused is not None:
            return refused
        assert outcome.result is not None
        for ev in outcome.result.events:
            if isinstance(ev, OrderCancelled) and ev.order_id == order_id:
                listing = self.listing(ev.symbol)
                return Reply(200, {"order_id": order_id, "symbol": ev.symbol, "side": side_text(ev.side),
                                   "status": "cancelled", "cancelled_qty": format_qty(ev.remaining, listing),
                                   "ts": ev.ts})
        return _error("VENUE_ERROR", "the venue confirmed the cancel without a cancel event")

    async def mass_cancel(self, participant: str, req: MassCancelRequest, *, session: str | None = None,
                          reason: CancelReason = CancelReason.MASS_CANCEL) -> Reply:
        if req.symbol is not None:
            self.listing(req.symbol)
        cmd = MassCancel(ts=0, participant=participant, symbol=req.symbol,
                         side=None if req.side is None else _SIDES[req.side], session=session, reason=reason)
        outcome = await self._submit(participant, cmd)
        refused = self._refusal(outcome)
        if refused is not None:
            return refused
        assert outcome.result is not None
        ids = [ev.order_id for ev in outcome.result.events if isinstance(ev, OrderCancelled)]
        return Reply(200, {"cancelled": ids})

    async def set_status(self, operator: str, symbol: str, status: str) -> Reply:
        self.listing(symbol)
        outcome = await self._venue.set_status(symbol, STATUSES[status], operator=operator)
        refused = self._refusal(outcome)
        if refused is not None:
            return refused
        return Reply(200, {"symbol": symbol, "status": status})


_KINDS: dict[type, str] = {NewOrder: "new", AmendOrder: "amend", CancelOrder: "cancel", MassCancel: "mass_cancel"}


def _count(cmd: Command, done: asyncio.Future[Outcome]) -> None:
    record_outcome(cmd, None if done.cancelled() or done.exception() is not None else done.result())


def record_outcome(cmd: Command, outcome: Outcome | None) -> None:
    """Prometheus: every command the venue saw, accepted or with its rejection code (None: the
    venue failed)."""
    kind = _KINDS.get(type(cmd))
    if kind is None:
        return
    if outcome is None:
        metrics.record_order(kind, "VENUE_ERROR")
        return
    if outcome.rejection is not None:
        metrics.record_order(kind, outcome.rejection.code)
    elif outcome.result is not None and outcome.result.code is not ResultCode.OK:
        metrics.record_order(kind, outcome.result.code.name)
    else:
        metrics.record_order(kind, None)
