"""Investor-signed orders in the venue (issue 16): checked before the engine, kept with the order,
handed to settlement, and cancelled when the investor cancels on chain.

    gateway: signed_order -> NewOrder.attachment (canonical JSON, journaled with the order)
    check (pipeline gate step): required for signed-mode participants and listings that require it;
        the signature recovers to the participant's wallet (EIP-712, domain = DvP contract + chain id),
        the fields match the order (wallet, tokens, side, limit price, maximum quantity), not expired;
        an amend stays within the signed limit price and maximum quantity
    on_command (post-trade, before the fills): order id -> signed order, for ``order_of``
    order_of (trade book): the signed orders of a trade's sides -> ``TradeToSettle`` -> ``settleSigned``
    CancelWatcher: the DvP contract's ``OrderCancelled`` / ``MinNonceRaised`` logs, each poll ->
        a journaled ``CancelOrder`` of the resting order, audited with ``ORDER_CANCELLED_ON_CHAIN``

    verify (``Pipeline.submit``, awaited before the gate): a signature that does not recover to the
        wallet is put to the wallet contract (ERC-1271 ``isValidSignature``, a chain read in a
        worker thread with a short timeout, never on the event loop); a yes is cached per order
        hash and signature, and ``check`` accepts it. EOA orders never leave the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine import (
    AmendOrder,
    CancelOrder,
    Command,
    Fill,
    MassCancel,
    NewOrder,
    OrderAccepted,
    OrderType,
    OrderView,
    Result,
    Side,
)
from market.model import Listing, Rejection
from market.signed import SignedOrder, SignedOrderFormatError, limit_price_of, signed_order_from_wire
from venueclient.signed_orders import OrderDomain, order_digest, recover_signer

log = logging.getLogger(__name__)

OrderCommand = NewOrder | AmendOrder | CancelOrder | MassCancel


class Parties(Protocol):
    def listing(self, symbol: str) -> Listing | None: ...

    def wallet_of(self, participant: str) -> str | None: ...


class OrderReader(Protocol):
    def order(self, order_id: int) -> OrderView | None: ...


_VERIFIED_CACHE = 4_096  # (order hash, signature) pairs whose signature is known to be the wallet's
WALLET_CHECK_TIMEOUT_S = 3.0

# (wallet, order digest, signature) -> the wallet contract accepts it (ERC-1271); blocking RPC
WalletCheck = Callable[[str, bytes, bytes], bool]


@dataclass(frozen=True, slots=True)
class _Signed:
    """A new order's signed order that passed every check but the signature's."""

    order: SignedOrder
    wallet: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class _Entry:
    participant: str
    order: SignedOrder
    digest: bytes


def _refuse(code: str, text: str) -> Rejection:
    return Rejection(code=code, message=text)


def parse_attachment(attachment: str) -> SignedOrder:
    """The signed order journaled with a ``NewOrder``; raises ``SignedOrderFormatError``."""
    try:
        wire = json.loads(attachment)
    except ValueError as exc:
        raise SignedOrderFormatError(f"attachment is not JSON: {exc}") from None
    if not isinstance(wire, dict):
        raise SignedOrderFormatError("attachment is not a JSON object")
    return signed_order_from_wire(wire)


class SignedOrders:
    def __init__(
        self,
        *,
        domain: OrderDomain | None,
        parties: Parties,
        orders: OrderReader,
        signed_mode: Callable[[str], bool] = lambda participant: False,
        required: Callable[[str], bool] = lambda symbol: False,
        loader: Callable[[int], str | None] | None = None,
        clock_s: Callable[[], float] = time.time,
        wallet_check: WalletCheck | None = None,
        wallet_check_timeout_s: float = WALLET_CHECK_TIMEOUT_S,
    ) -> None:
        self._domain = domain
        self._parties = parties
        self._orders = orders
        self._signed_mode = signed_mode
        self._required = required
        self._loader = loader  # the store's copy, for orders from before a restart
        self._clock_s = clock_s
        self._by_order: dict[int, _Entry] = {}
        self._digests: set[bytes] = set()
        self._first_live: int | None = None  # the first order id this process accepted
        self._required_symbols: set[str] = set()
        self._wallet_check = wallet_check
        self._wallet_check_timeout_s = wallet_check_timeout_s
        self._verified: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()

    # ------------------------------------------------------------ 1. before the engine

    def check(self, cmd: OrderCommand) -> Rejection | None:
        if isinstance(cmd, NewOrder):
            return self._check_new(cmd)
        if isinstance(cmd, AmendOrder):
            return self._check_amend(cmd)
        return None  # cancels only reduce risk

    def _check_new(self, cmd: NewOrder) -> Rejection | None:
        signed = self._prepare(cmd)
        if not isinstance(signed, _Signed):
            return signed
        order = signed.order
        if (signed.digest, order.signature) not in self._verified:
            signer = recover_signer(order.to_wire(), self._domain) if self._domain is not None else None
            if signer is None or signer.lower() != signed.wallet.lower():
                asked = " (nor does the wallet accept it as an ERC-1271 contract)" if self._wallet_check else ""
                return _refuse("SIGNED_ORDER_BAD_SIGNATURE",
                               f"the signature is by {signer or 'nobody (malformed)'}, not the wallet "
                               f"{signed.wallet}{asked}")
        if signed.digest in self._digests:
            return _refuse("SIGNED_ORDER_REUSED", "this signed order is attached to another order already; "
                                                  "sign a new one (another nonce)")
        return None

    def _prepare(self, cmd: NewOrder) -> _Signed | Rejection | None:
        """Every check of a new order but the signature's: a refusal, None (nothing to check: an
        unsigned order allowed, or one the engine refuses), or the signed order to verify."""
        if not cmd.attachment:
            if self._signed_mode(cmd.participant):
                return _refuse("SIGNED_ORDER_REQUIRED", f"participant {cmd.participant!r} is in signed mode: "
                                                        "send the order with its signed_order")
            if cmd.symbol in self._required_symbols or self._required(cmd.symbol):
                return _refuse("SIGNED_ORDER_REQUIRED", f"{cmd.symbol} requires orders signed by the wallet")
            return None
        if self._domain is None:
            return _refuse("SIGNED_ORDERS_UNAVAILABLE", "the venue has no settlement contract configured")
        try:
            order = parse_attachment(cmd.attachment)
        except SignedOrderFormatError as exc:
            return _refuse("SIGNED_ORDER_MISMATCH", str(exc))
        listing = self._parties.listing(cmd.symbol)
        wallet = self._parties.wallet_of(cmd.participant)
        if listing is None:
            return None  # the engine answers UNKNOWN_INSTRUMENT
        if wallet is None:
            return _refuse("SIGNED_ORDER_MISMATCH", f"participant {cmd.participant!r} has no settlement wallet")
        mismatch = _mismatch(cmd, order, listing, wallet)
        if mismatch is not None:
            return _refuse("SIGNED_ORDER_MISMATCH", mismatch)
        if order.expiry <= self._clock_s():
            return _refuse("SIGNED_ORDER_EXPIRED", f"the signed order expired at {order.expiry} (unix seconds)")
        return _Signed(order, wallet, order_digest(order.to_wire(), self._domain))

    async def verify(self, cmd: OrderCommand) -> Rejection | None:
        """Before ``check``, off the synchronous gate: a new order whose signature does not recover to
        the wallet is put to the wallet contract (ERC-1271). A yes is cached for ``check``; a no is
        left to ``check`` (``SIGNED_ORDER_BAD_SIGNATURE``); no answer in time is ``CHAIN_UNAVAILABLE``.
        Does not suspend for EOA signatures, so their order relative to other commands is kept."""
        if not isinstance(cmd, NewOrder) or not cmd.attachment or self._wallet_check is None:
            return None
        signed = self._prepare(cmd)
        if not isinstance(signed, _Signed):
            return None  # ``check`` answers
        key = (signed.digest, signed.order.signature)
        if key in self._verified:
            self._verified.move_to_end(key)
            return None
        signer = recover_signer(signed.order.to_wire(), self._domain) if self._domain is not None else None
        if signer is not None and signer.lower() == signed.wallet.lower():
            self._remember_verified(key)  # ``check`` does not recover it a second time
            return None
        try:
            accepted = await asyncio.wait_for(
                asyncio.to_thread(self._wallet_check, signed.wallet, signed.digest, signed.order.signature),
                self._wallet_check_timeout_s)
        except TimeoutError:
            return _refuse("CHAIN_UNAVAILABLE", f"the wallet contract {signed.wallet} did not answer "
                                                f"isValidSignature within {self._wallet_check_timeout_s:g} s; retry")
        except Exception as exc:  # the node: unreachable or erroring
            log.warning("ERC-1271 check of wallet %s failed: %s", signed.wallet, exc)
            return _refuse("CHAIN_UNAVAILABLE", f"cannot ask the wallet contract {signed.wallet} to check the "
                                                f"signature ({exc}); retry")
        if accepted:
            self._remember_verified(key)
        return None

    def _remember_verified(self, key: tuple[bytes, bytes]) -> None:
        self._verified[key] = None
        while len(self._verified) > _VERIFIED_CACHE:
            self._verified.popitem(last=False)

    def _check_amend(self, cmd: AmendOrder) -> Rejection | None:
        entry = self._entry(cmd.order_id)
        if entry is None:
            return None
        view = self._orders.order(cmd.order_id)
        listing = self._parties.listing(view.symbol) if view is not None else None
        if view is None or listing is None:
            return None  # the engine answers UNKNOWN_ORDER
        signed = entry.order
        if cmd.qty is not None and listing.token_amount(cmd.qty) > signed.max_quantity:
            return _refuse("SIGNED_ORDER_AMEND_BEYOND", f"quantity above the signed maximum {signed.max_quantity}")
        if cmd.price is not None:
            limit = limit_price_of(price_ticks=cmd.price, tick_size=listing.spec.tick_size,
                                   lot_size=listing.spec.lot_size)
            worse = limit is None or (limit < signed.limit_price if signed.sell else limit > signed.limit_price)
            if worse:
                return _refuse("SIGNED_ORDER_AMEND_BEYOND", "price beyond the signed limit price")
        return None

    # ------------------------------------------------------------ 2. after the engine

    def on_command(self, cmd: Command, result: Result) -> None:
        """Post-trade listener, before the fills of the same command are turned into trades."""
        if not isinstance(cmd, NewOrder):
            return
        accepted = next((e for e in result.events if isinstance(e, OrderAccepted)), None)
        if accepted is None:
            return
        if self._first_live is None:
            self._first_live = accepted.order_id
        if cmd.attachment:
            self._remember(accepted.order_id, cmd.participant, cmd.attachment)

    def _remember(self, order_id: int, participant: str, attachment: str) -> _Entry | None:
        if self._domain is None:
            return None
        try:
            order = parse_attachment(attachment)
        except SignedOrderFormatError:
            log.error("order %d: its journaled signed order does not parse; it settles unsigned", order_id)
            return None
        entry = _Entry(participant, order, order_digest(order.to_wire(), self._domain))
        self._by_order[order_id] = entry
        self._digests.add(entry.digest)
        return entry

    def after_command(self, result: Result) -> None:
        """Post-trade, after the fills became trades: forget orders that left the book (a later
        settlement retry reads them from the store)."""
        for event in result.events:
            for order_id in _order_ids(event):
                if order_id in self._by_order and self._orders.order(order_id) is None:
                    self.forget(order_id)

    def restore(self, open_orders: Iterable[OrderView]) -> int:
        """After a restart: the signed orders of the resting orders, from the store."""
        found = 0
        for view in open_orders:
            found += self._entry(view.order_id) is not None
        return found

    def _entry(self, order_id: int) -> _Entry | None:
        entry = self._by_order.get(order_id)
        # Orders accepted by this process passed ``on_command``: absent means unsigned. Older ones
        # (before a restart) are read from the store, once.
        if entry is None and self._loader is not None and (self._first_live is None or order_id < self._first_live):
            attachment = self._loader(order_id)
            if attachment:
                view = self._orders.order(order_id)
                entry = self._remember(order_id, view.participant if view is not None else "", attachment)
        return entry

    def set_required(self, symbol: str, required: bool) -> None:
        """A listing's rule: every order must be signed."""
        if required:
            self._required_symbols.add(symbol)
        else:
            self._required_symbols.discard(symbol)

    def order_of(self, order_id: int) -> SignedOrder | None:
        """The signed order an engine order carries (None: unsigned)."""
        entry = self._entry(order_id)
        return entry.order if entry is not None else None

    def digest_of(self, order_id: int) -> bytes | None:
        entry = self._entry(order_id)
        return entry.digest if entry is not None else None

    # ------------------------------------------------------------ 3. on-chain cancels

    def cancelled_by_hash(self, wallet: str, digest: bytes) -> list[tuple[str, int]]:
        """(participant, order id) of the live orders carrying this wallet's order ``digest``."""
        return [(e.participant, oid) for oid, e in self._by_order.items()
                if e.digest == digest and e.order.wallet.lower() == wallet.lower()]

    def below_nonce(self, wallet: str, min_nonce: int) -> list[tuple[str, int]]:
        return [(e.participant, oid) for oid, e in self._by_order.items()
                if e.order.nonce < min_nonce and e.order.wallet.lower() == wallet.lower()]

    def known(self) -> list[tuple[int, str, SignedOrder, bytes]]:
        """(order id, participant, signed order, digest) of every signed order now known to rest."""
        return [(oid, e.participant, e.order, e.digest) for oid, e in self._by_order.items()]

    def forget(self, order_id: int) -> None:
        entry = self._by_order.pop(order_id, None)
        if entry is not None:
            self._digests.discard(entry.digest)


def _order_ids(event: object) -> tuple[int, ...]:
    if isinstance(event, Fill):
        return (event.maker_order_id, event.taker_order_id)
    order_id = getattr(event, "order_id", None)
    return (order_id,) if isinstance(order_id, int) else ()


def _mismatch(cmd: NewOrder, order: SignedOrder, listing: Listing, wallet: str) -> str | None:
    if order.wallet.lower() != wallet.lower():
        return f"signed_order.wallet {order.wallet} is not the participant's wallet {wallet}"
    if order.token.lower() != listing.token_address.lower():
        return f"signed_order.token is not {cmd.symbol}'s note token {listing.token_address}"
    if order.cash_token.lower() != listing.cash_token_address.lower():
        return f"signed_order.cash_token is not {cmd.symbol}'s cash token {listing.cash_token_address}"
    if order.sell != (cmd.side is Side.SELL):
        return "signed_order.side differs from the order's side"
    if cmd.order_type is not OrderType.LIMIT or cmd.price is None:
        return "a signed order must be a limit order"
    limit = limit_price_of(price_ticks=cmd.price, tick_size=listing.spec.tick_size, lot_size=listing.spec.lot_size)
    if limit is None or limit != order.limit_price:
        return f"signed_order.limit_price {order.limit_price} is not the order's price ({limit})"
    quantity = listing.token_amount(cmd.qty)
    if quantity != order.max_quantity:
        return f"signed_order.max_quantity {order.max_quantity} is not the order's quantity ({quantity})"
    return None


# ---------------------------------------------------------------- the chain side


class CommandQueue(Protocol):
    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]: ...


class Audit(Protocol):
    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None: ...


class LogSource(Protocol):
    """The DvP contract's cancel logs since a block (``venue.signed_chain.DvPCancelLogs``)."""

    def head(self) -> int: ...

    def cancels(self, from_block: int, to_block: int) -> list[tuple[str, str, Any]]:
        """``("hash", wallet, digest)`` / ``("nonce", wallet, min_nonce)`` in chain order."""
        ...

    def state(self, wallet: str, digest: bytes) -> tuple[bool, int]:
        """What the contract holds now: whether ``digest`` is cancelled, and the wallet's minimum nonce."""
        ...


class CancelWatcher:
    """Each ``poll_once`` reads the contract's cancel logs up to the head and cancels the resting
    orders they void, so an on-chain cancel reaches the book within one poll."""

    def __init__(self, *, signed: SignedOrders, logs: LogSource, sequencer: CommandQueue, audit: Audit | None,
                 from_block: int = 0) -> None:
        self._signed = signed
        self._logs = logs
        self._sequencer = sequencer
        self._audit = audit
        self.next_block = from_block

    def fetch(self) -> tuple[int, list[tuple[str, str, Any]]]:
        """The head and the cancel logs since the last poll (RPC: run it off the event loop)."""
        head = self._logs.head()
        return head, (self._logs.cancels(self.next_block, head) if head >= self.next_block else [])

    def voided_now(self) -> list[tuple[str, str, Any]]:
        """The cancels the contract holds now for the signed orders known to rest, as cancel entries
        (RPC: run it off the event loop). A restarted venue reads logs from the head on, so a cancel
        made while it was down shows only in the contract's state."""
        found: list[tuple[str, str, Any]] = []
        min_nonces: dict[str, int] = {}
        for _, _, order, digest in self._signed.known():
            cancelled, min_nonce = self._logs.state(order.wallet, digest)
            if cancelled:
                found.append(("hash", order.wallet, digest))
            if order.nonce < min_nonce and min_nonces.get(order.wallet.lower()) != min_nonce:
                min_nonces[order.wallet.lower()] = min_nonce
                found.append(("nonce", order.wallet, min_nonce))
        return found

    async def catch_up(self) -> list[int]:
        """Cancel the restored orders the contract already voids (once, at start, before serving)."""
        return self.apply(0, await asyncio.to_thread(self.voided_now))

    def apply(self, head: int, cancels: list[tuple[str, str, Any]]) -> list[int]:
        """Cancel the resting orders the logs void (on the event loop); returns their order ids."""
        cancelled: list[int] = []
        for kind, wallet, value in cancels:
            targets = (self._signed.cancelled_by_hash(wallet, value) if kind == "hash"
                       else self._signed.below_nonce(wallet, int(value)))
            for participant, order_id in targets:
                self._signed.forget(order_id)
                try:
                    self._sequencer.enqueue(CancelOrder(ts=0, participant=participant, order_id=order_id))
                except Exception:  # a stopped sequencer: nothing rests or matches any more
                    log.exception("cannot cancel order %d after its on-chain cancel", order_id)
                    continue
                cancelled.append(order_id)
                if self._audit is not None:
                    self._audit.audit("chain", "orders.cancel_signed", {
                        "code": "ORDER_CANCELLED_ON_CHAIN", "participant": participant, "order_id": order_id,
                        "wallet": wallet, "by": kind,
                        "value": "0x" + value.hex() if isinstance(value, bytes) else str(value)})
        self.next_block = max(self.next_block, head + 1)
        return cancelled

    def poll_once(self) -> list[int]:
        return self.apply(*self.fetch())

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            try:
                self.apply(*await asyncio.to_thread(self.fetch))
            except Exception:  # a node hiccup: the next poll reads the same blocks again
                log.exception("signed-order cancel poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
