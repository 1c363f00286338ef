"""``market.wire``: the values a gateway process and the leader exchange round-trip exactly, and
the decoder builds nothing but the venue's own dataclasses and enums."""

from __future__ import annotations

import pytest

from engine import L2Snapshot, Level, NewOrder, Side
from engine.instrument import InstrumentStatus
from market import wire
from market.model import ApiKey, OrderAck, OrderStatus, Outcome, Rejection, Role
from venue.remote import _reused


def test_port_values_round_trip() -> None:
    order = NewOrder(ts=0, participant="p", symbol="S", side=Side.BUY, qty=3, price=100, client_order_id="c-1")
    book = L2Snapshot(symbol="S", md_seq=7, status=InstrumentStatus.OPEN,
                      bids=(Level(price=1, qty=2, count=1),), asks=())
    ack = OrderAck(order_id=5, client_order_id="c-1", symbol="S", side=Side.SELL, status=OrderStatus.OPEN,
                   price=100, qty=3, filled=0, remaining=3)
    key = ApiKey(key_id="k", participant="p", role=Role.TRADER, public_key=b"\x00" * 32)
    value = {"ok": [order, book, key, Outcome(rejection=Rejection(code="X", message="m"), ack=ack), b"\x01", None]}
    back = wire.loads(wire.dumps(value))
    assert back == value
    assert back["ok"][2].role is Role.TRADER  # the enum, not its value (a StrEnum is also a str)
    assert back["ok"][1].status is InstrumentStatus.OPEN


@pytest.mark.parametrize("payload", [
    b'{"$t": "os:system", "f": {}}',  # not one of ours
    b'{"$t": "engine.messages:NewOrder", "f": {"nope": 1}}',  # unknown field
    b'{"$e": "engine.messages:Side", "v": 99}',  # no such member
    b'{"$t": "market.wire:WireError", "f": {}}',  # ours, but not a dataclass
    b"not json",
])
def test_anything_else_is_refused(payload: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.loads(payload)


def test_a_reused_client_order_id_is_recognised_in_either_place() -> None:
    refusal = Rejection(code="CLIENT_ORDER_ID_REUSED", message="m")
    assert _reused(Outcome(rejection=refusal))
    assert _reused(Outcome(ack=OrderAck.rejected(refusal, client_order_id="c")))
    assert not _reused(Outcome(rejection=Rejection(code="OTHER", message="m")))


def test_integers_beyond_64_bits_and_decimals_round_trip_exactly() -> None:
    """Raw token amounts exceed 64 bits: neither encoded nor decoded through a float."""
    from decimal import Decimal

    value = {"amount": 2**80 + 1, "price": Decimal("45000.125"), "n": [-(2**70), 3]}
    assert wire.loads(wire.dumps(value)) == value
    assert wire.loads(wire.dumps(value))["amount"] == 2**80 + 1
