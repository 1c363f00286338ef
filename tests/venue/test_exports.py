"""The day's record exports (``venue.exports``): RTS 22 transaction reports and RTS 24 order records,
checked field by field against a store filled with a known day of trading."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Side
from store import (
    Instrument,
    InstrumentState,
    Participant,
    ParticipantStatus,
    SettlementStatus,
    SettlementUpdate,
    Store,
    TradePremium,
)
from tests.store.events import CMD, accepted, cancelled, fill, result
from venue.exports import RTS22_COLUMNS, RTS24_COLUMNS, ExportError, ExportOptions, day_window, export, rts22, rts24
from venue.records import Records

DAY = "2026-11-26"
T0 = day_window(DAY)[0]
PRICE = 4_500_010  # ticks of 0.01: 45000.10 per note
ALICE_WALLET = "0x" + "a1" * 20
BOB_WALLET = "0x" + "b0" * 20
TX = "0x" + "cd" * 32
UTC_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'venue.sqlite'}")
    s.add_instrument(Instrument(
        symbol="OMN1", name="OMN hashrate note 2027", token_address="0x" + "11" * 20,
        cash_token_address="0x" + "22" * 20, token_decimals=0, cash_decimals=6, tick_size=10_000, lot_size=1,
        min_qty=1, max_qty=1000, band_low=1, band_high=10**9, status=InstrumentState.OPEN))
    for pid, country, wallet in (("alice", "LU", ALICE_WALLET), ("bob", "DE", BOB_WALLET)):
        s.add_participant(Participant(id=pid, name=pid.title(), status=ParticipantStatus.ACTIVE,
                                      investor_category="MIFID_PROFESSIONAL", jurisdiction=country, kyc_expiry=None))
        s.add_wallet(pid, wallet)
    priced = {"price": PRICE}
    s.project([
        # day before: an order and a trade that the day's exports must leave out
        (1, CMD, result(accepted(1, "alice", Side.SELL, 1, PRICE, ts=T0 - 50),
                        accepted(2, "bob", Side.BUY, 1, PRICE, ts=T0 - 40),
                        dataclasses.replace(fill(1, maker=1, taker=2, qty=1, maker_remaining=0, taker_remaining=0,
                                                 ts=T0 - 40), **priced))),
        # the day: alice rests 10, bob buys 3 then 4 (aggressor), alice cancels the rest
        (2, CMD, result(accepted(10, "alice", Side.SELL, 10, PRICE, ts=T0 + 1_000))),
        (3, CMD, result(accepted(11, "bob", Side.BUY, 3, PRICE, ts=T0 + 2_000),
                        dataclasses.replace(fill(2, maker=10, taker=11, qty=3, maker_remaining=7, taker_remaining=0,
                                                 ts=T0 + 2_000), **priced))),
        (4, CMD, result(accepted(12, "bob", Side.BUY, 4, PRICE, ts=T0 + 3_000),
                        dataclasses.replace(fill(3, maker=10, taker=12, qty=4, maker_remaining=3, taker_remaining=0,
                                                 ts=T0 + 3_000), **priced))),
        (5, CMD, result(cancelled(10, remaining=3, ts=T0 + 4_000))),
    ])
    s.record_settlements([SettlementUpdate(trade_id=2, status=SettlementStatus.CONFIRMED, tx_hash=TX, block=42)])
    s.record_trade_premiums([TradePremium(trade_id=2, nav="44900", premium_bps=22)])
    yield s
    s.close()


def _rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_rts22_reports_each_trade_of_the_day_with_both_sides(store: Store) -> None:
    header, rows = _rows(rts22(store, DAY, ExportOptions(mic="XOMN", executing_entity="LEI0000000000000000X",
                                                         identifiers={"OMN1": "LU0000000001"})))
    assert tuple(header) == RTS22_COLUMNS
    assert [r["f3_trading_venue_transaction_id"] for r in rows] == ["2", "3"]  # trade 1 was the day before
    first = rows[0]
    assert first["f1_report_status"] == "NEWT" and first["f2_transaction_reference_number"] == "XOMN-2"
    assert first["f4_executing_entity_id"] == "LEI0000000000000000X" and first["f36_venue"] == "XOMN"
    # maker alice sold, taker bob bought (aggressor buy)
    assert (first["f7_buyer_id"], first["f8_buyer_branch_country"]) == ("bob", "DE")
    assert (first["f16_seller_id"], first["f17_seller_branch_country"]) == ("alice", "LU")
    assert (first["x_buyer_wallet"], first["x_seller_wallet"]) == (BOB_WALLET, ALICE_WALLET)
    assert (first["f30_quantity"], first["f33_price"], first["f35_net_amount"]) == ("3", "45000.1", "135000.3")
    assert first["f34_price_currency"] == "USD" and first["f29_trading_capacity"] == "DEAL"
    assert UTC_TS.match(first["f28_trading_date_time"]) and first["f28_trading_date_time"].startswith(DAY)
    assert (first["f41_instrument_id"], first["f42_instrument_full_name"]) == ("LU0000000001", "OMN hashrate note 2027")
    assert (first["x_settlement_status"], first["x_settlement_tx_hash"], first["x_settlement_block"]) == (
        "confirmed", TX, "42")
    assert (first["x_premium_bps"], first["x_nav"]) == ("22", "44900")
    assert rows[1]["x_premium_bps"] == "" and rows[1]["x_settlement_tx_hash"] == ""  # none known: empty, not 0


def test_rts24_records_every_order_event_in_time_order(store: Store) -> None:
    header, rows = _rows(rts24(store, DAY))
    assert tuple(header) == RTS24_COLUMNS
    events = [(r["f19_order_id"], r["f20_order_event"]) for r in rows]
    assert events == [("10", "NEWO"), ("11", "NEWO"), ("10", "PARF"), ("11", "FILL"), ("12", "NEWO"),
                      ("10", "PARF"), ("12", "FILL"), ("10", "CAME")]  # the taker's entry precedes its fill
    assert [r["f14_sequence_number"] for r in rows] == [str(i) for i in range(1, 9)]
    alice = [r for r in rows if r["f19_order_id"] == "10"]
    assert [r["f36_remaining_quantity"] for r in alice] == ["10", "7", "3", "0"]
    assert [r["f38_traded_quantity"] for r in alice] == ["0", "3", "4", "0"]
    assert [r["f44_passive_aggressive"] for r in alice] == ["", "PASV", "PASV", ""]
    assert [r["f47_trading_venue_transaction_id"] for r in alice] == ["", "2", "3", ""]
    assert {r["f31_buy_sell_indicator"] for r in alice} == {"SELL"}
    assert alice[-1]["f32_order_status"] == "INAC" and alice[-1]["x_reason"] == "user"
    bob_fill = next(r for r in rows if r["f19_order_id"] == "11" and r["f20_order_event"] == "FILL")
    assert bob_fill["f44_passive_aggressive"] == "AGRE" and bob_fill["f27_transaction_price"] == "45000.1"
    assert bob_fill["f31_buy_sell_indicator"] == "BUYI" and bob_fill["f21_order_type"] == "LMTO"
    assert all(UTC_TS.match(r["f9_date_time"]) for r in rows)
    assert {r["f10_validity_period"] for r in rows} == {"GTCV"} and {r["f15_segment_mic"] for r in rows} == {"XOFF"}


def test_bad_export_requests_have_stable_codes(store: Store) -> None:
    with pytest.raises(ExportError) as kind:
        export(store, "rts99", DAY)
    assert kind.value.code == "EXPORT_UNKNOWN_KIND"
    with pytest.raises(ExportError) as day:
        export(store, "rts22", "26/11/2026")
    assert day.value.code == "EXPORT_BAD_DATE" and "YYYY-MM-DD" in str(day.value)


def test_confirmations_are_the_participants_own_with_the_settlement_tx(store: Store) -> None:
    records = Records(store, None)
    alice = records.confirmations("alice", day=DAY)
    assert [c["trade_id"] for c in alice] == [3, 2]  # newest first
    second = alice[1]
    assert (second["side"], second["liquidity"], second["order_id"]) == ("sell", "maker", 10)
    assert (second["price"], second["qty"], second["consideration"]) == ("45000.1", "3", "135000.3")
    assert second["settlement"]["tx_hash"] == TX and second["settlement"]["status"] == "confirmed"
    assert second["premium_bps"] == 22 and second["wallet"] == ALICE_WALLET
    assert "bob" not in str(second)  # the counterparty is never shown
    assert records.confirmation("bob", 2) is not None and records.confirmation("carol", 2) is None
    assert [c["trade_id"] for c in records.confirmations("bob")] == [3, 2, 1]
