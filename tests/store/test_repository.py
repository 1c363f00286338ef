from __future__ import annotations

import datetime as dt

import pytest

from store import (
    ApiKeyRecord,
    DuplicateError,
    EligibilityDecision,
    Instrument,
    InstrumentState,
    InvalidRecordError,
    KeyRole,
    NotFoundError,
    Outcome,
    Participant,
    ParticipantStatus,
    SettlementStatus,
    SettlementUpdate,
    Store,
)

ALICE = Participant(
    id="alice",
    name="Alice Capital",
    status=ParticipantStatus.ACTIVE,
    investor_category="professional",
    jurisdiction="de",
    kyc_expiry=dt.date(2027, 6, 30),
)
WALLET = "0x" + "Ab" * 20
TOKEN = "0x" + "11" * 20
CASH = "0x" + "22" * 20
OMN = Instrument(
    symbol="OMN1",
    name="Omnes Mining Note 1",
    token_address=TOKEN,
    cash_token_address=CASH,
    token_decimals=18,
    cash_decimals=6,
    tick_size=10_000,
    lot_size=10**18,
    min_qty=1,
    max_qty=10_000,
    band_low=1,
    band_high=1_000_000,
    status=InstrumentState.OPEN,
    maturity_ts=1_900_000_000_000_000_000,
)


def test_participants_round_trip_and_update(store: Store) -> None:
    added = store.add_participant(ALICE)
    assert added.jurisdiction == "DE" and added.created_ts > 0
    assert store.get_participant("alice") == added
    assert store.get_participant("nobody") is None
    updated = store.update_participant("alice", status="suspended", kyc_expiry=dt.date(2028, 1, 1))
    assert updated.status is ParticipantStatus.SUSPENDED and updated.kyc_expiry == dt.date(2028, 1, 1)
    assert store.list_participants() == [updated]


def test_participant_errors_are_specific(store: Store) -> None:
    store.add_participant(ALICE)
    with pytest.raises(DuplicateError, match="add participant alice: already exists"):
        store.add_participant(ALICE)
    with pytest.raises(InvalidRecordError, match="'frozen' is not one of active, suspended, closed"):
        store.update_participant("alice", status="frozen")
    with pytest.raises(NotFoundError, match="unknown participant 'bob'"):
        store.update_participant("bob", status="active")
    unchanged = store.get_participant("alice")
    assert unchanged is not None and unchanged.status is ParticipantStatus.ACTIVE


def test_wallets(store: Store) -> None:
    store.add_participant(ALICE)
    wallet = store.add_wallet("alice", WALLET)
    assert wallet.address == WALLET.lower()
    assert store.wallet_owner(WALLET.upper().replace("0X", "0x")) == "alice"
    assert [w.address for w in store.list_wallets("alice")] == [WALLET.lower()]
    with pytest.raises(DuplicateError):
        store.add_wallet("alice", WALLET)
    with pytest.raises(NotFoundError, match="unknown participant 'bob'"):
        store.add_wallet("bob", "0x" + "cd" * 20)
    with pytest.raises(InvalidRecordError, match="20-byte hex address"):
        store.add_wallet("alice", "0x1234")


def test_api_keys_store_only_public_keys_and_can_be_revoked(store: Store) -> None:
    key = ApiKeyRecord(key_id="k1", participant="alice", role=KeyRole.TRADER, public_key=bytes(range(32)))
    store.add_api_key(key)
    store.add_api_key(ApiKeyRecord(key_id="op", participant="ops", role=KeyRole.OPERATOR, public_key=b"\x01" * 32))
    got = store.get_api_key("k1")
    assert got is not None and got.public_key == bytes(range(32)) and got.role is KeyRole.TRADER
    assert [k.key_id for k in store.list_api_keys()] == ["k1", "op"]
    revoked = store.revoke_api_key("k1", ts=42)
    assert revoked.revoked_ts == 42
    assert store.revoke_api_key("k1", ts=99).revoked_ts == 42  # first revocation stands
    assert [k.key_id for k in store.list_api_keys()] == ["op"]
    assert [k.key_id for k in store.list_api_keys("alice", include_revoked=True)] == ["k1"]
    with pytest.raises(InvalidRecordError, match="must be 32 bytes, got 31"):
        store.add_api_key(ApiKeyRecord(key_id="k2", participant="a", role=KeyRole.TRADER, public_key=b"x" * 31))
    with pytest.raises(InvalidRecordError, match="'admin' is not one of trader, operator"):
        store.add_api_key(ApiKeyRecord(key_id="k3", participant="a", role="admin", public_key=b"x" * 32))  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.revoke_api_key("nope")


def test_instruments(store: Store) -> None:
    added = store.add_instrument(OMN)
    assert added == OMN  # big integers (10**18 lot size) survive on every backend
    assert store.set_instrument_status("OMN1", "halted").status is InstrumentState.HALTED
    assert store.set_instrument_status("OMN1", "call").status is InstrumentState.CALL  # a call auction
    assert [i.symbol for i in store.list_instruments()] == ["OMN1"]
    with pytest.raises(DuplicateError):
        store.add_instrument(OMN)
    with pytest.raises(NotFoundError, match="unknown instrument 'X'"):
        store.set_instrument_status("X", "open")


def test_settlement_updates_keep_earlier_facts(store: Store) -> None:
    store.record_settlement(SettlementUpdate(trade_id=7, status=SettlementStatus.PENDING, updated_ts=1))
    store.record_settlement(
        SettlementUpdate(trade_id=7, status=SettlementStatus.SUBMITTED, tx_hash="0x" + "ab" * 32, updated_ts=2)
    )
    store.record_settlement(
        SettlementUpdate(trade_id=7, status=SettlementStatus.CONFIRMED, block=12, gas_used=150_484, updated_ts=3)
    )
    got = store.get_settlement(7)
    assert got == SettlementUpdate(
        trade_id=7,
        status=SettlementStatus.CONFIRMED,
        tx_hash="0x" + "ab" * 32,
        block=12,
        gas_used=150_484,
        updated_ts=3,
    )
    store.record_settlement(SettlementUpdate(trade_id=8, status=SettlementStatus.FAILED, reason="buyer frozen"))
    assert [s.trade_id for s in store.list_settlements(status="failed")] == [8]
    with pytest.raises(InvalidRecordError, match="settlement status"):
        store.record_settlement(SettlementUpdate(trade_id=9, status="lost"))  # type: ignore[arg-type]


def test_eligibility_decisions_newest_first_and_counted(store: Store) -> None:
    store.record_eligibility_decisions(
        [
            EligibilityDecision(
                ts=1, participant="alice", symbol="OMN1", outcome=Outcome.ACCEPTED, code="OK", message="ok"
            ),
            EligibilityDecision(
                ts=2,
                participant="bob",
                symbol="OMN1",
                outcome=Outcome.REJECTED,
                code="WALLET_FROZEN",
                message="wallet is frozen",
            ),
            EligibilityDecision(
                ts=3,
                participant="bob",
                symbol="OMN1",
                outcome=Outcome.REJECTED,
                code="WALLET_FROZEN",
                message="wallet is frozen",
            ),
        ]
    )
    store.record_eligibility_decision(
        EligibilityDecision(
            ts=4, participant="bob", symbol="OMN1", outcome=Outcome.REJECTED, code="KYC_EXPIRED", message="KYC expired"
        )
    )
    assert [d.ts for d in store.list_eligibility_decisions(participant="bob")] == [4, 3, 2]
    assert [d.ts for d in store.list_eligibility_decisions(outcome="accepted")] == [1]
    assert store.rejection_counts() == {"WALLET_FROZEN": 2, "KYC_EXPIRED": 1}
    assert all(d.id is not None for d in store.list_eligibility_decisions())


def test_a_final_settlement_state_is_stored(store: Store) -> None:
    """Issue 12 item 10: the schema refused 'final' (CHECK constraint), so the venue could not record it."""
    store.record_settlements([SettlementUpdate(trade_id=11, status=SettlementStatus.CONFIRMED, block=5),
                              SettlementUpdate(trade_id=11, status=SettlementStatus.FINAL)], final_through=5)
    got = store.get_settlement(11)
    assert got is not None and (got.status, got.block) == (SettlementStatus.FINAL, 5)
    assert store.settlement_final_through() == 5
