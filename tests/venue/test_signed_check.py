"""Issue 16, the venue side without a chain: ``venue.signed.SignedOrders`` refuses what a signed order
does not cover before the engine, remembers the order for settlement, and ``CancelWatcher`` turns
the contract's cancel logs into journaled cancels."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account

from engine import (
    AmendOrder,
    CancelOrder,
    Command,
    InstrumentSpec,
    NewOrder,
    OrderAccepted,
    OrderType,
    OrderView,
    Result,
    ResultCode,
    Side,
    TimeInForce,
)
from gateway.errors import ApiError, http_status
from gateway.schemas import SignedOrderBody
from gateway.signed import signed_attachment
from market.model import Listing
from venue.signed import CancelWatcher, SignedOrders
from venueclient.signed_orders import OrderDomain, order_digest, order_for, sign_order

NOW_S = 1_800_000_000
TOKEN, CASH = "0x" + "11" * 20, "0x" + "22" * 20
DOMAIN = OrderDomain(chain_id=31337, verifying_contract="0x" + "33" * 20)
# 0 decimals note, 6 decimals cash; one lot = one note, one tick = 0.01 cash per note
LISTING = Listing(spec=InstrumentSpec(symbol="OMN", tick_size=10_000, lot_size=1), name="t", token_address=TOKEN,
                  cash_token_address=CASH, token_decimals=0, cash_decimals=6)
ACCOUNT = Account.create()


@dataclass
class Parties:
    wallets: dict[str, str] = field(default_factory=lambda: {"inv": ACCOUNT.address})

    def listing(self, symbol: str) -> Listing | None:
        return LISTING if symbol == "OMN" else None

    def wallet_of(self, participant: str) -> str | None:
        return self.wallets.get(participant)


@dataclass
class Orders:
    views: dict[int, OrderView] = field(default_factory=dict)

    def order(self, order_id: int) -> OrderView | None:
        return self.views.get(order_id)


def wire(side: str = "buy", qty: int = 3, price: str = "101.25", *, expiry: int = NOW_S + 60, nonce: int = 1,
         key: bytes | None = None, **override: str) -> dict[str, str]:
    order = order_for(wallet=ACCOUNT.address, token=TOKEN, cash_token=CASH, side=side, price=Decimal(price),
                      qty=Decimal(qty), token_decimals=0, cash_decimals=6, expiry=expiry, nonce=nonce)
    return {**sign_order({**order, **override}, DOMAIN, key if key is not None else ACCOUNT.key), }


def new(attachment: dict[str, str] | None, *, side: Side = Side.BUY, qty: int = 3, price: int | None = 10_125,
        order_type: OrderType = OrderType.LIMIT, participant: str = "inv") -> NewOrder:
    return NewOrder(ts=0, participant=participant, symbol="OMN", side=side, qty=qty, price=price,
                    order_type=order_type, client_order_id="c1",
                    attachment=json.dumps(attachment) if attachment is not None else "")


def signed_orders(**kw: Any) -> SignedOrders:
    kw.setdefault("domain", DOMAIN)
    kw.setdefault("parties", Parties())
    kw.setdefault("orders", Orders())
    return SignedOrders(clock_s=lambda: NOW_S, **kw)


def code(orders: SignedOrders, cmd: NewOrder | AmendOrder) -> str | None:
    refusal = orders.check(cmd)
    return None if refusal is None else refusal.code


def test_a_matching_signed_order_passes() -> None:
    assert code(signed_orders(), new(wire())) is None
    assert code(signed_orders(), new(wire("sell"), side=Side.SELL)) is None


def test_signed_mode_and_listing_rule_require_a_signed_order() -> None:
    assert code(signed_orders(), new(None)) is None
    assert code(signed_orders(signed_mode=lambda p: p == "inv"), new(None)) == "SIGNED_ORDER_REQUIRED"
    required = signed_orders()
    required.set_required("OMN", True)
    assert code(required, new(None)) == "SIGNED_ORDER_REQUIRED"
    required.set_required("OMN", False)
    assert code(required, new(None)) is None


@pytest.mark.parametrize(("cmd", "what"), [
    (new(wire(), qty=2), "max_quantity"),
    (new(wire(), price=10_126), "limit_price"),
    (new(wire(), side=Side.SELL), "side"),
    (new(wire(), order_type=OrderType.MARKET), "limit order"),
    (new(wire(token=CASH)), "token"),
    (new(wire(cash_token=TOKEN)), "cash_token"),
    (new(wire(wallet="0x" + "44" * 20)), "wallet"),
])
def test_fields_that_do_not_match_the_order_are_refused(cmd: NewOrder, what: str) -> None:
    refusal = signed_orders().check(cmd)
    assert refusal is not None and refusal.code == "SIGNED_ORDER_MISMATCH" and what in refusal.message


def test_expired_wrong_key_unavailable_and_reused_are_refused() -> None:
    assert code(signed_orders(), new(wire(expiry=NOW_S))) == "SIGNED_ORDER_EXPIRED"
    assert code(signed_orders(), new(wire(key=Account.create().key))) == "SIGNED_ORDER_BAD_SIGNATURE"
    other_domain = {**wire(), "signature": sign_order(wire(), replace(DOMAIN, chain_id=1), ACCOUNT.key)["signature"]}
    assert code(signed_orders(), new(other_domain)) == "SIGNED_ORDER_BAD_SIGNATURE"
    assert code(signed_orders(domain=None), new(wire())) == "SIGNED_ORDERS_UNAVAILABLE"
    orders = signed_orders()
    cmd = new(wire())
    orders.on_command(cmd, _accepted(7, cmd))
    assert code(orders, new(wire())) == "SIGNED_ORDER_REUSED"


def _view(order_id: int, *, qty: int = 3, price: int = 10_125) -> OrderView:
    return OrderView(order_id=order_id, client_order_id="c1", participant="inv", session="", symbol="OMN",
                     side=Side.BUY, price=price, qty=qty, remaining=qty, tif=TimeInForce.GTC, expire_ts=None,
                     accepted_ts=0)


def _accepted(order_id: int, cmd: NewOrder) -> Result:
    event = OrderAccepted(seq=1, ts=0, order_id=order_id, client_order_id=cmd.client_order_id,
                          participant=cmd.participant, session="", symbol=cmd.symbol, side=cmd.side,
                          order_type=cmd.order_type, tif=cmd.tif, price=cmd.price, qty=cmd.qty, expire_ts=None,
                          post_only=False)
    return Result(code=ResultCode.OK, events=(event,), order_id=order_id)


def test_an_amend_stays_within_the_signed_order() -> None:
    book = Orders({7: _view(7)})
    orders = signed_orders(orders=book)
    cmd = new(wire())
    orders.on_command(cmd, _accepted(7, cmd))
    amend = lambda **kw: AmendOrder(ts=0, participant="inv", order_id=7, **kw)  # noqa: E731
    assert code(orders, amend(qty=2)) is None  # less is within the signed maximum
    assert code(orders, amend(price=10_000)) is None  # a better price for a buy
    assert code(orders, amend(qty=4)) == "SIGNED_ORDER_AMEND_BEYOND"
    assert code(orders, amend(price=10_126)) == "SIGNED_ORDER_AMEND_BEYOND"


def test_the_signed_order_is_kept_for_settlement_and_read_back_after_a_restart() -> None:
    book = Orders({7: _view(7)})
    orders = signed_orders(orders=book)
    cmd, plain = new(wire()), new(None)
    orders.on_command(cmd, _accepted(7, cmd))
    orders.on_command(plain, _accepted(8, plain))
    kept = orders.order_of(7)
    assert kept is not None and kept.max_quantity == 3 and not kept.sell
    assert orders.order_of(8) is None
    book.views.clear()  # order 7 left the book: forgotten after its command's trades were built
    orders.after_command(_accepted(7, cmd))
    assert orders.order_of(7) is None
    # a restarted venue reads orders from before its first new order in the store
    reads: list[int] = []
    restarted = signed_orders(orders=book, loader=lambda oid: reads.append(oid) or cmd.attachment)
    assert restarted.order_of(7) == kept
    restarted.on_command(plain, _accepted(9, plain))
    assert restarted.order_of(10) is None and reads == [7]  # live orders never touch the store


@dataclass
class Logs:
    entries: list[tuple[str, str, Any]]
    block: int = 5

    def head(self) -> int:
        return self.block

    def cancels(self, from_block: int, to_block: int) -> list[tuple[str, str, Any]]:
        return self.entries if from_block <= self.block <= to_block else []


@dataclass
class Queue:
    sent: list[Command] = field(default_factory=list)

    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]:
        self.sent.append(cmd)
        return len(self.sent), cmd, asyncio.Future()


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, object]]] = []

    def audit(self, actor: str, action: str, details: Any) -> None:
        self.entries.append((action, dict(details)))


async def test_on_chain_cancels_by_hash_and_by_nonce_cancel_the_resting_orders() -> None:
    orders = signed_orders(orders=Orders({7: _view(7), 8: _view(8), 9: _view(9)}))
    placed = {}
    for order_id, nonce in ((7, 1), (8, 2), (9, 3)):
        signed = wire(nonce=nonce)
        cmd = new(signed)
        orders.on_command(cmd, _accepted(order_id, cmd))
        placed[order_id] = signed
    logs = Logs([("hash", ACCOUNT.address, order_digest(placed[8], DOMAIN)),
                 ("hash", "0x" + "55" * 20, order_digest(placed[9], DOMAIN)),  # another wallet: ignored
                 ("nonce", ACCOUNT.address, 2)])
    queue, audit = Queue(), Audit()
    watcher = CancelWatcher(signed=orders, logs=logs, sequencer=queue, audit=audit, from_block=5)
    assert sorted(watcher.poll_once()) == [7, 8]
    assert {(c.participant, c.order_id) for c in queue.sent if isinstance(c, CancelOrder)} == {("inv", 7), ("inv", 8)}
    assert {d["code"] for _, d in audit.entries} == {"ORDER_CANCELLED_ON_CHAIN"}
    assert watcher.poll_once() == [] and watcher.next_block == 6  # each block read once


def test_the_gateway_parses_the_signed_order_into_the_attachment() -> None:
    body = SignedOrderBody(**wire())
    assert json.loads(signed_attachment(body)) == wire()
    assert signed_attachment(None) == ""
    with pytest.raises(ApiError) as err:
        signed_attachment(SignedOrderBody(**{**wire(), "limit_price": str(2**256)}))
    assert err.value.code == "SIGNED_ORDER_MALFORMED"


# ---------------------------------------------------------------- ERC-1271 contract wallets

CONTRACT_WALLET = "0x" + "66" * 20  # a contract wallet whose owner key is ACCOUNT's


@dataclass
class WalletContract:
    """A wallet contract as ``ContractWalletSignatures`` asks it: yes for its owner's signatures."""

    owner: str = ACCOUNT.address
    asked: list[bytes] = field(default_factory=list)
    fail: Exception | None = None

    def accepts(self, wallet: str, digest: bytes, signature: bytes) -> bool:
        self.asked.append(digest)
        if self.fail is not None:
            raise self.fail
        signer = Account._recover_hash(digest, signature=signature)
        return wallet == CONTRACT_WALLET and signer == self.owner


def _contract_wallet_orders(wallet: WalletContract | None, **kw: Any) -> SignedOrders:
    return signed_orders(parties=Parties({"inv": CONTRACT_WALLET}),
                         wallet_check=wallet.accepts if wallet is not None else None, **kw)


async def _verify_then_check(orders: SignedOrders, cmd: NewOrder) -> str | None:
    refusal = await orders.verify(cmd) or orders.check(cmd)
    return None if refusal is None else refusal.code


async def test_a_contract_wallet_order_is_accepted_when_the_wallet_says_so() -> None:
    cmd = new(wire(wallet=CONTRACT_WALLET))  # signed by the owner key for the contract wallet
    # without a chain to ask (the venue before the fix), the owner's signature is not the wallet's
    assert await _verify_then_check(_contract_wallet_orders(None), cmd) == "SIGNED_ORDER_BAD_SIGNATURE"
    wallet = WalletContract()
    orders = _contract_wallet_orders(wallet)
    assert await _verify_then_check(orders, cmd) is None
    assert await _verify_then_check(orders, cmd) is None and len(wallet.asked) == 1  # a yes is cached
    # the same order with another (the owner's, but over another order) signature is asked again
    forged = {**wire(wallet=CONTRACT_WALLET), "signature": wire(wallet=CONTRACT_WALLET, nonce=2)["signature"]}
    assert await _verify_then_check(orders, new(forged)) == "SIGNED_ORDER_BAD_SIGNATURE"
    assert len(wallet.asked) == 2


async def test_a_contract_wallet_that_refuses_or_does_not_answer_refuses_the_order() -> None:
    refusing = WalletContract(owner=Account.create().address)
    orders = _contract_wallet_orders(refusing)
    cmd = new(wire(wallet=CONTRACT_WALLET))
    assert await _verify_then_check(orders, cmd) == "SIGNED_ORDER_BAD_SIGNATURE"
    assert await _verify_then_check(orders, cmd) == "SIGNED_ORDER_BAD_SIGNATURE" and len(refusing.asked) == 2
    down = WalletContract(fail=ConnectionError("node unreachable"))
    refusal = await _contract_wallet_orders(down).verify(cmd)
    assert refusal is not None and refusal.code == "CHAIN_UNAVAILABLE" and "retry" in refusal.message
    assert http_status(refusal.code) == 503  # the client retries
    release = threading.Event()
    stuck = WalletContract()
    stuck.accepts = lambda *args: release.wait(10)  # type: ignore[method-assign]
    try:
        refusal = await _contract_wallet_orders(stuck, wallet_check_timeout_s=0.05).verify(cmd)
    finally:
        release.set()  # the worker thread ends
    assert refusal is not None and refusal.code == "CHAIN_UNAVAILABLE" and "did not answer" in refusal.message


async def test_eoa_and_mismatching_orders_never_ask_the_chain() -> None:
    wallet = WalletContract()
    orders = signed_orders(wallet_check=wallet.accepts)
    assert await _verify_then_check(orders, new(wire())) is None  # an EOA's own signature
    assert await _verify_then_check(orders, new(wire(key=Account.create().key))) == "SIGNED_ORDER_BAD_SIGNATURE"
    contract = _contract_wallet_orders(wallet)
    assert await _verify_then_check(contract, new(wire(wallet=CONTRACT_WALLET), qty=2)) == "SIGNED_ORDER_MISMATCH"
    assert await _verify_then_check(contract, new(wire(wallet=CONTRACT_WALLET, expiry=NOW_S))) == \
        "SIGNED_ORDER_EXPIRED"
    assert len(wallet.asked) == 1  # only the signature that is not the EOA's own (the real check finds no code)


@dataclass
class ChainState(Logs):
    """Cancel logs plus what the contract holds now: a cancel made while the venue was down lies in
    blocks before the restarted watcher's first block, so only the contract's state shows it."""

    cancelled: set[bytes] = field(default_factory=set)
    min_nonces: dict[str, int] = field(default_factory=dict)

    def state(self, wallet: str, digest: bytes) -> tuple[bool, int]:
        return digest in self.cancelled, self.min_nonces.get(wallet.lower(), 0)


async def test_cancels_made_while_the_venue_was_down_cancel_the_restored_orders() -> None:
    placed = {order_id: wire(nonce=nonce) for order_id, nonce in ((7, 1), (8, 2), (9, 5))}
    cmds = {order_id: new(signed) for order_id, signed in placed.items()}
    # the restarted venue: orders 7-9 rest, their signed orders come from the store
    restarted = signed_orders(orders=Orders({oid: _view(oid) for oid in placed}),
                              loader=lambda oid: cmds[oid].attachment)
    assert restarted.restore(_view(oid) for oid in placed) == 3
    # while it was down: order 8 cancelled by hash, nonces below 2 voided (order 7); no log from now on
    chain = ChainState([], block=40, cancelled={order_digest(placed[8], DOMAIN)},
                       min_nonces={ACCOUNT.address.lower(): 2})
    queue, audit = Queue(), Audit()
    watcher = CancelWatcher(signed=restarted, logs=chain, sequencer=queue, audit=audit, from_block=41)
    assert watcher.poll_once() == []  # the logs from the head on show nothing
    assert sorted(await watcher.catch_up()) == [7, 8]
    assert {(c.participant, c.order_id) for c in queue.sent if isinstance(c, CancelOrder)} == {("inv", 7), ("inv", 8)}
    assert sorted(d["by"] for _, d in audit.entries) == ["hash", "nonce"]
    assert restarted.order_of(9) is not None and await watcher.catch_up() == []  # each order cancelled once
