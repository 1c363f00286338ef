"""Onboarding in one transaction, offboarding, and listing rules (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from store import DuplicateError, Instrument, InstrumentState, NotFoundError, Participant, ParticipantStatus, Store
from store.records import ApiKeyRecord, KeyRole

WALLET = "0x" + "ab" * 20


def _participant(pid: str) -> Participant:
    return Participant(id=pid, name=pid, status=ParticipantStatus.ACTIVE, investor_category="MIFID_PROFESSIONAL",
                       jurisdiction="lu", kyc_expiry=dt.date(2030, 1, 1))


def _instrument(symbol: str) -> Instrument:
    return Instrument(symbol=symbol, name=symbol, token_address="0x" + "11" * 20, cash_token_address="0x" + "22" * 20,
                      token_decimals=0, cash_decimals=6, tick_size=10_000, lot_size=1, min_qty=1, max_qty=100,
                      band_low=1, band_high=1_000, status=InstrumentState.OPEN)


def test_onboarding_is_one_transaction(store: Store) -> None:
    store.onboard_participant(_participant("p1"), WALLET.upper().replace("0X", "0x"))
    with pytest.raises(DuplicateError, match="already belongs to participant 'p1'"):
        store.onboard_participant(_participant("p2"), WALLET)
    assert store.get_participant("p2") is None  # nothing half-created
    with pytest.raises(DuplicateError):
        store.onboard_participant(_participant("p1"))
    assert [w.address for w in store.list_wallets("p1")] == [WALLET]


def test_offboarding_closes_and_revokes_every_key(store: Store) -> None:
    store.onboard_participant(_participant("p1"))
    for key_id in ("k1", "k2"):
        store.add_api_key(ApiKeyRecord(key_id=key_id, participant="p1", role=KeyRole.TRADER, public_key=b"\x01" * 32))
    assert store.offboard_participant("p1") == ["k1", "k2"]
    assert store.get_participant("p1").status is ParticipantStatus.CLOSED  # type: ignore[union-attr]
    assert store.list_api_keys("p1") == []
    with pytest.raises(NotFoundError):
        store.offboard_participant("nobody")


def test_listing_rules_are_stored_with_the_instrument_and_replaced(store: Store) -> None:
    store.add_instrument(_instrument("A"), {"max_holders": 5, "blocked_jurisdictions": ["RU"]})
    store.add_instrument(_instrument("B"))
    assert json.loads(store.list_listing_rules()["A"]) == {"blocked_jurisdictions": ["RU"], "max_holders": 5}
    assert "B" not in store.list_listing_rules()
    store.set_listing_rules("B", {"holding_cap": 10})
    store.set_listing_rules("A", {"max_holders": 6})
    assert {s: json.loads(t) for s, t in store.list_listing_rules().items()} == {
        "A": {"max_holders": 6}, "B": {"holding_cap": 10}}
    with pytest.raises(NotFoundError):
        store.set_listing_rules("C", {})
