from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from engine import Command, NewOrder, Side
from journal import CodecError, decode, encode
from tests.journal.commands import EVERY_KIND, trading_commands


@pytest.mark.parametrize("cmd", EVERY_KIND, ids=lambda c: type(c).__name__)
def test_every_command_kind_round_trips_exactly(cmd: Command) -> None:
    back = decode(encode(cmd))
    assert back == cmd
    assert type(back) is type(cmd)
    for name in getattr(cmd, "__dataclass_fields__", {}):
        assert type(getattr(back, name)) is type(getattr(cmd, name)), name  # enums stay enums


@settings(max_examples=200)
@given(trading_commands)
def test_generated_commands_round_trip(cmd: Command) -> None:
    assert decode(encode(cmd)) == cmd


def test_encoding_is_deterministic_and_omits_defaults() -> None:
    cmd = NewOrder(ts=5, participant="a", symbol="S", side=Side.BUY, qty=1, price=3)
    data = encode(cmd)
    assert data == encode(NewOrder(ts=5, participant="a", symbol="S", side=Side.BUY, qty=1, price=3))
    assert json.loads(data) == [1, 3, {"participant": "a", "price": 3, "qty": 1, "side": 1, "symbol": "S", "ts": 5}]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"{}", "triple"),
        (b"[2,3,{}]", "version 2"),
        (b"[1,99,{}]", "unknown command tag 99"),
        (b'[1,"3",{}]', "unknown command tag"),
        (b'[1,7,{"ts":true}]', "expected int, got bool"),
        (b'[1,7,{"ts":"1"}]', "expected int, got str"),
        (b'[1,7,{"ts":1,"extra":2}]', "unknown fields ['extra']"),
        (b"[1,7,{}]", "AdvanceTime"),
        (b'[1,3,{"ts":1,"participant":"a","symbol":"S","side":9,"qty":1}]', "9 is not a valid Side"),
        (b'[1,1,{"ts":1,"spec":{"symbol":"S","tick_size":1}}]', "InstrumentSpec"),
        (b'[1,1,{"ts":1,"spec":[]}]', "expected an object"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=None) as info:
        decode(payload)
    assert message in str(info.value)


def test_encoding_a_non_command_is_an_error() -> None:
    with pytest.raises(CodecError, match="not an engine command: str"):
        encode("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        (
            NewOrder(ts=1, participant="a", symbol="S", side=Side.BUY, qty=True, price=3),
            "NewOrder.qty: expected int, got bool",
        ),
        (NewOrder(ts=1, participant="a", symbol="S", side=1, qty=1), "NewOrder.side: expected Side, got int"),  # type: ignore[arg-type]
        (NewOrder(ts=1.0, participant="a", symbol="S", side=Side.BUY, qty=1), "NewOrder.ts: expected int, got float"),  # type: ignore[arg-type]
        (NewOrder(ts=1, participant=None, symbol="S", side=Side.BUY, qty=1), "participant: expected str, got NoneType"),  # type: ignore[arg-type]
    ],
)
def test_encoding_refuses_wrong_field_types(cmd: Command, message: str) -> None:
    with pytest.raises(CodecError) as info:
        encode(cmd)
    assert message in str(info.value)
