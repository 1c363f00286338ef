"""Reference data of the running venue: the live reload makes the venue match the store, removals
included (a key revoked in the store stops authenticating in the running venue)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import store as store_pkg
from compliance import ChainStateCache, Gatekeeper
from market.model import Role
from venue.reference import ReferenceData, read_store

SETTLE = "0x" + "5e" * 20
WALLET_A, WALLET_B = "0x" + "aa" * 20, "0x" + "bb" * 20


def _store(tmp_path: Path) -> store_pkg.Store:
    store = store_pkg.Store.open(f"sqlite:///{tmp_path / 'venue.db'}")
    store.add_participant(store_pkg.Participant(
        id="alice", name="alice", status=store_pkg.ParticipantStatus.ACTIVE, investor_category="MIFID_PROFESSIONAL",
        jurisdiction="DE", kyc_expiry=dt.date(2099, 1, 1)))
    store.add_wallet("alice", WALLET_A)
    for key_id in ("alice-1", "alice-2"):
        store.add_api_key(store_pkg.ApiKeyRecord(key_id=key_id, participant="alice", role=store_pkg.KeyRole.TRADER,
                                                 public_key=bytes(32)))
    return store


def test_a_key_revoked_in_the_store_stops_working_at_the_next_reload(tmp_path: Path) -> None:
    store = _store(tmp_path)
    reference = ReferenceData()
    reference.apply(*read_store(store))
    key = reference.api_key("alice-1")
    assert key is not None and key.participant == "alice" and key.role is Role.TRADER
    store.revoke_api_key("alice-1")
    reference.apply(*read_store(store))
    assert reference.api_key("alice-1") is None
    assert reference.api_key("alice-2") is not None  # the other key is untouched
    store.close()


def test_wallet_changes_and_removals_reach_the_gate(tmp_path: Path) -> None:
    store = _store(tmp_path)
    gate = Gatekeeper(ChainStateCache(), settlement_address=SETTLE)
    reference = ReferenceData(gate=gate)
    participants, wallets, keys = read_store(store)
    reference.apply(participants, wallets, keys)
    alice = gate.participant("alice")
    assert alice is not None and alice.wallet == WALLET_A and reference.wallet_of("alice") == WALLET_A
    reference.apply(participants, {"alice": WALLET_B}, keys)
    alice = gate.participant("alice")
    assert alice is not None and alice.wallet == WALLET_B and reference.wallet_of("alice") == WALLET_B
    reference.apply(participants, {}, keys)  # the wallet was removed in the store
    alice = gate.participant("alice")
    assert alice is not None and alice.wallet is None and reference.wallet_of("alice") is None
    store.close()
