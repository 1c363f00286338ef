"""Offline administration used by the CLI: schema, deployment, participants, API keys.

A running venue picks up participants, wallets and keys added here within a few seconds (it
re-reads reference data from the store).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

import compliance
import store as store_pkg
from settlement.errors import SettlementError
from venue.config import VenueConfig
from venue.listings import ListingRules, save_rules
from venueclient import generate_keypair


class AdminError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _open(config: VenueConfig) -> store_pkg.Store:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return store_pkg.Store.open(config.database_url)
    except store_pkg.StoreError as exc:
        raise AdminError("STORE_UNAVAILABLE", str(exc)) from exc


@contextmanager
def _store(config: VenueConfig) -> Iterator[store_pkg.Store]:
    """The store for one CLI command, with its errors translated to admin codes."""
    store = _open(config)
    try:
        yield store
    except store_pkg.DuplicateError as exc:
        raise AdminError("DUPLICATE", str(exc)) from exc
    except store_pkg.InvalidRecordError as exc:
        raise AdminError("INVALID", str(exc)) from exc
    finally:
        store.close()


def migrate(config: VenueConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store_pkg.migrate(config.database_url)
    except store_pkg.StoreError as exc:
        raise AdminError("MIGRATION_FAILED", str(exc)) from exc


def deploy(config: VenueConfig) -> dict[str, Any]:
    from venue.runtime import deploy_or_load, open_chain

    if config.chain in ("inprocess", "anvil"):
        raise AdminError("EPHEMERAL_CHAIN", f"a {config.chain} chain lives only as long as the venue process; "
                         "`venue run`/`venue demo` deploy to it themselves. Give --chain a JSON-RPC URL.")
    try:
        chain = open_chain(config)
    except SettlementError as exc:
        raise AdminError("CHAIN_UNAVAILABLE", str(exc)) from exc
    try:
        deployment = deploy_or_load(chain, config, fresh=True)
    finally:
        chain.close()
    result: dict[str, Any] = json.loads(deployment.to_json())
    result["deployment_file"] = str(config.deployment_path)
    return result


def add_participant(
    config: VenueConfig,
    participant: str,
    *,
    name: str,
    category: str,
    jurisdiction: str,
    kyc_days: int,
    wallet: str | None,
    signed_orders: bool = False,
) -> None:
    try:
        compliance.InvestorCategory(category)
    except ValueError as exc:
        allowed = ", ".join(c.value for c in compliance.InvestorCategory)
        raise AdminError("INVALID_CATEGORY", f"category {category!r} is not one of {allowed}") from exc
    if kyc_days < 0:
        raise AdminError("INVALID_KYC", "kyc-days must not be negative")
    with _store(config) as store:
        store.add_participant(store_pkg.Participant(
            id=participant, name=name, status=store_pkg.ParticipantStatus.ACTIVE, investor_category=category,
            jurisdiction=jurisdiction.upper(), kyc_expiry=dt.date.today() + dt.timedelta(days=kyc_days),
            signed_orders=signed_orders,
        ))
        if wallet:
            store.add_wallet(participant, wallet)
        store.append_audit("cli", "participant.add", {"participant": participant, "category": category,
                                                      "jurisdiction": jurisdiction.upper(), "wallet": wallet,
                                                      "signed_orders": signed_orders})


def list_participants(config: VenueConfig) -> list[dict[str, Any]]:
    with _store(config) as store:
        return [
            {"id": p.id, "name": p.name, "status": p.status.value, "category": p.investor_category,
             "jurisdiction": p.jurisdiction, "kyc_expiry": p.kyc_expiry.isoformat() if p.kyc_expiry else None,
             "signed_orders": p.signed_orders,
             "wallets": [w.address for w in store.list_wallets(p.id)]}
            for p in store.list_participants()
        ]


def create_key(config: VenueConfig, participant: str, *, role: str) -> dict[str, str]:
    with _store(config) as store:
        if role == "trader" and store.get_participant(participant) is None:
            raise AdminError("UNKNOWN_PARTICIPANT", f"no participant {participant!r}; add it first")
        private, public = generate_keypair()
        key_id = f"{participant}-{secrets.token_hex(4)}"
        store.add_api_key(store_pkg.ApiKeyRecord(key_id=key_id, participant=participant,
                                                 role=store_pkg.KeyRole(role), public_key=public))
        store.append_audit("cli", "key.create", {"key_id": key_id, "participant": participant, "role": role})
        return {"key_id": key_id, "participant": participant, "role": role,
                "private_key": private.hex(), "public_key": public.hex()}


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise AdminError("INVALID_NUMBER", f"{what}: {text!r} is not a decimal number") from exc
    if not value.is_finite() or value <= 0:
        raise AdminError("INVALID_NUMBER", f"{what}: {text!r} must be a positive finite number")
    return value


def _units(value: Decimal, decimals: int, what: str) -> int:
    """A decimal amount as an exact integer of base units (no rounding, no floats)."""
    scaled = value * (Decimal(10) ** decimals)
    if scaled != scaled.to_integral_value():
        raise AdminError("INVALID_NUMBER", f"{what}: {value} is not a whole number of base units")
    return int(scaled)


def add_instrument(
    config: VenueConfig,
    symbol: str,
    *,
    name: str,
    token: str,
    cash_token: str,
    token_decimals: int,
    cash_decimals: int,
    tick: str,
    lot: str,
    min_qty: int,
    max_qty: int,
    band: tuple[str, str],
    categories: list[str],
    blocked: list[str],
    holding_cap: int | None,
    max_holders: int | None,
    signed_orders_required: bool = False,
) -> None:
    lot_notes = _decimal(lot, "lot")
    lot_size = _units(lot_notes, token_decimals, "lot")
    # prices are quoted per note; the engine's tick is cash units per lot
    tick_size = _units(_decimal(tick, "tick") * lot_notes, cash_decimals, "tick")
    low, high = (_units(_decimal(b, "band") * lot_notes, cash_decimals, "band") for b in band)
    if low % tick_size or high % tick_size:
        raise AdminError("INVALID_BAND", "band limits must be multiples of the tick")
    if not 0 < min_qty <= max_qty:
        raise AdminError("INVALID_SIZE", "need 0 < min-qty <= max-qty")
    for c in categories:
        try:
            compliance.InvestorCategory(c)
        except ValueError as exc:
            raise AdminError("INVALID_CATEGORY", f"unknown investor category {c!r}") from exc
    rules = ListingRules(allowed_categories=tuple(categories), blocked_jurisdictions=tuple(c.upper() for c in blocked),
                         holding_cap=holding_cap, max_holders=max_holders,
                         signed_orders_required=signed_orders_required)
    with _store(config) as store:
        store.add_instrument(store_pkg.Instrument(
            symbol=symbol, name=name, token_address=token, cash_token_address=cash_token,
            token_decimals=token_decimals, cash_decimals=cash_decimals, tick_size=tick_size, lot_size=lot_size,
            min_qty=min_qty, max_qty=max_qty, band_low=low // tick_size, band_high=high // tick_size,
            status=store_pkg.InstrumentState.OPEN,
        ))
        save_rules(config.data_dir, symbol, rules)
        store.append_audit("cli", "instrument.add", {"symbol": symbol, "token": token, "cash_token": cash_token})


def list_instruments(config: VenueConfig) -> list[dict[str, Any]]:
    with _store(config) as store:
        return [{"symbol": i.symbol, "name": i.name, "status": i.status.value, "token": i.token_address,
                 "cash_token": i.cash_token_address, "tick_size": i.tick_size, "lot_size": i.lot_size}
                for i in store.list_instruments()]
