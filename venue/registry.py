"""Reference data changes an operator makes, validated and written to the store with an audit entry:
onboarding, updating and offboarding participants, revoking API keys, listing instruments and
setting their rules. The CLI (``venue.admin``) and the operator API (``venue.registry_api``) both
call these functions, so both give the same answers and codes (``market.codes``, operator band).

Every write is one transaction: a participant refused for its wallet leaves nothing behind, an
instrument refused for its rules is not listed. A running venue picks the change up from the store
(``venue.refresh``), at once when the operator API made it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from web3 import Web3

import compliance
import store as store_pkg
from compliance.countries import ALPHA2_TO_NUMERIC
from venue.listings import ListingError, ListingRules, rules_from_dict, rules_to_dict

log = logging.getLogger(__name__)

_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class RegistryError(Exception):
    """A refused change; ``code`` is a stable code of ``market.codes``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def translated(what: str) -> Iterator[None]:
    """The store's errors as registry codes."""
    try:
        yield
    except store_pkg.StoreUnavailableError as exc:
        raise RegistryError("STORE_UNAVAILABLE", f"{what}: {exc}") from exc
    except store_pkg.NotFoundError as exc:
        raise RegistryError("UNKNOWN_PARTICIPANT" if "participant" in str(exc) else "UNKNOWN_INSTRUMENT"
                            if "instrument" in str(exc) else "KEY_NOT_FOUND", str(exc)) from exc
    except store_pkg.DuplicateError as exc:
        text = str(exc)
        code = ("WALLET_IN_USE" if "wallet" in text else "INSTRUMENT_EXISTS" if "instrument" in text
                else "PARTICIPANT_EXISTS")
        raise RegistryError(code, text) from exc
    except store_pkg.InvalidRecordError as exc:
        raise RegistryError("INVALID_RECORD", str(exc)) from exc


# ---------------------------------------------------------------- validation


def jurisdiction(code: str) -> str:
    """An ISO 3166-1 alpha-2 country code, upper case (``XX`` and ``ZZ`` are not countries)."""
    value = code.strip().upper()
    if value not in ALPHA2_TO_NUMERIC:
        raise RegistryError("INVALID_JURISDICTION", f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return value


def wallet(address: str) -> str:
    """A 20-byte 0x address; mixed case must be a valid EIP-55 checksum (a typo is caught)."""
    value = address.strip()
    if not _HEX_ADDRESS.fullmatch(value):
        raise RegistryError("INVALID_WALLET", f"{address!r} is not a 0x-prefixed 20-byte hex address")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not Web3.is_checksum_address(value):
        raise RegistryError("INVALID_WALLET", f"{address!r} fails its EIP-55 checksum (a mistyped character?)")
    return value.lower()


def category(name: str) -> str:
    try:
        return compliance.InvestorCategory(name.strip().upper()).value
    except ValueError:
        allowed = ", ".join(c.value for c in compliance.InvestorCategory)
        raise RegistryError("INVALID_CATEGORY", f"category {name!r} is not one of {allowed}") from None


def participant_id(value: str) -> str:
    if not _PARTICIPANT_ID.fullmatch(value):
        raise RegistryError("INVALID_PARTICIPANT_ID", f"participant id {value!r}: 1-64 letters, digits, '-', '_', "
                                                      "'.', starting with a letter or digit")
    return value


def kyc_expiry(days: int, today: dt.date | None = None) -> dt.date:
    if days < 0:
        raise RegistryError("INVALID_KYC", "kyc-days must not be negative")
    if days > 3_660:
        raise RegistryError("INVALID_KYC", "kyc-days above ten years: renew KYC at least every ten years")
    return (today or dt.date.today()) + dt.timedelta(days=days)


def participant_problem(p: store_pkg.Participant) -> str | None:
    """What makes a stored participant unusable (the venue reports and skips it), or None."""
    try:
        category(p.investor_category)
        jurisdiction(p.jurisdiction)
    except RegistryError as exc:
        return f"{exc.code}: {exc}"
    return None


# ---------------------------------------------------------------- participants


def onboard(store: store_pkg.Store, *, participant: str, name: str, investor_category: str, country: str,
            kyc_days: int, wallet_address: str | None, actor: str,
            signed_orders: bool = False) -> store_pkg.Participant:
    """``signed_orders``: signed mode (issue 16), every order must carry an order signed by the wallet."""
    record = store_pkg.Participant(
        id=participant_id(participant), name=name or participant, status=store_pkg.ParticipantStatus.ACTIVE,
        investor_category=category(investor_category), jurisdiction=jurisdiction(country),
        kyc_expiry=kyc_expiry(kyc_days), signed_orders=signed_orders)
    address = None if wallet_address is None else wallet(wallet_address)
    with translated(f"onboard {participant}"):
        added = store.onboard_participant(record, address)
        store.append_audit(actor, "participant.add", {
            "participant": added.id, "category": added.investor_category, "jurisdiction": added.jurisdiction,
            "wallet": address, "kyc_expiry": added.kyc_expiry.isoformat() if added.kyc_expiry else None,
            "signed_orders": added.signed_orders})
    log.info("participant %s onboarded (%s, %s, wallet %s) by %s", added.id, added.investor_category,
             added.jurisdiction, address, actor)
    return added


def update(store: store_pkg.Store, participant: str, *, actor: str, investor_category: str | None = None,
           country: str | None = None, kyc_days: int | None = None, status: str | None = None,
           wallet_address: str | None = None) -> store_pkg.Participant:
    """Change a participant's category, jurisdiction, KYC validity, status (active / suspended) or
    add a settlement wallet. An offboarded participant stays closed."""
    changes: dict[str, Any] = {}
    if investor_category is not None:
        changes["investor_category"] = category(investor_category)
    if country is not None:
        changes["jurisdiction"] = jurisdiction(country)
    if kyc_days is not None:
        changes["kyc_expiry"] = kyc_expiry(kyc_days)
    if status is not None:
        if status not in ("active", "suspended"):
            raise RegistryError("INVALID_RECORD", "status is active or suspended (offboard to close)")
        changes["status"] = status
    address = None if wallet_address is None else wallet(wallet_address)
    with translated(f"update {participant}"):
        current = store.get_participant(participant)
        if current is None:
            raise RegistryError("UNKNOWN_PARTICIPANT", f"no participant {participant!r}")
        if current.status is store_pkg.ParticipantStatus.CLOSED:
            raise RegistryError("PARTICIPANT_CLOSED", f"participant {participant!r} was offboarded")
        if address is not None:
            owner = store.wallet_owner(address)
            if owner is not None and owner != participant:
                raise RegistryError("WALLET_IN_USE", f"wallet {address} already belongs to participant {owner!r}")
            if owner is None:
                store.add_wallet(participant, address)
        updated = store.update_participant(participant, **changes) if changes else current
        details: dict[str, Any] = {"participant": participant, **{
            k: v.isoformat() if isinstance(v, dt.date) else v for k, v in changes.items()}}
        if address is not None:
            details["wallet"] = address
        store.append_audit(actor, "participant.update", details)
    log.info("participant %s updated by %s: %s", participant, actor,
             ", ".join(f"{k}={v}" for k, v in details.items() if k != "participant"))
    return updated


def offboard(store: store_pkg.Store, participant: str, *, actor: str) -> list[str]:
    """Close the participant and revoke its keys (a running venue cancels its open orders)."""
    with translated(f"offboard {participant}"):
        revoked = store.offboard_participant(participant)
        store.append_audit(actor, "participant.offboard", {"participant": participant, "keys_revoked": revoked})
    log.info("participant %s offboarded by %s (keys revoked: %s)", participant, actor, ", ".join(revoked) or "none")
    return revoked


def revoke_key(store: store_pkg.Store, key_id: str, *, actor: str) -> store_pkg.ApiKeyRecord:
    with translated(f"revoke {key_id}"):
        if store.get_api_key(key_id) is None:
            raise RegistryError("KEY_NOT_FOUND", f"no API key {key_id!r}")
        record = store.revoke_api_key(key_id)
        store.append_audit(actor, "key.revoke", {"key_id": key_id, "participant": record.participant})
    log.info("API key %s of %s revoked by %s", key_id, record.participant, actor)
    return record


# ---------------------------------------------------------------- listings


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise RegistryError("INVALID_NUMBER", f"{what}: {text!r} is not a decimal number") from exc
    if not value.is_finite() or value <= 0:
        raise RegistryError("INVALID_NUMBER", f"{what}: {text!r} must be a positive finite number")
    return value


def _units(value: Decimal, decimals: int, what: str) -> int:
    """A decimal amount as an exact integer of base units (no rounding, no floats)."""
    scaled = value * (Decimal(10) ** decimals)
    if scaled != scaled.to_integral_value():
        raise RegistryError("INVALID_NUMBER", f"{what}: {value} is not a whole number of base units")
    return int(scaled)


def validated_rules(values: dict[str, Any], base: ListingRules | None = None) -> ListingRules:
    """``values`` (rule name -> value, e.g. from CLI flags or a JSON body) over ``base``, checked."""
    try:
        merged = rules_from_dict({**(rules_to_dict(base) if base is not None else {}), **values})
    except ListingError as exc:
        raise RegistryError("INVALID_LISTING_RULE", str(exc)) from exc
    for c in merged.allowed_categories:
        category(c)
    for code in (*merged.allowed_jurisdictions, *merged.blocked_jurisdictions):
        jurisdiction(code)
    return replace(merged, allowed_jurisdictions=tuple(c.upper() for c in merged.allowed_jurisdictions),
                   blocked_jurisdictions=tuple(c.upper() for c in merged.blocked_jurisdictions))


def list_instrument(store: store_pkg.Store, symbol: str, *, name: str, token: str, cash_token: str,
                    token_decimals: int, cash_decimals: int, tick: str, lot: str, min_qty: int, max_qty: int,
                    band: tuple[str, str], rules: dict[str, Any], actor: str,
                    status: store_pkg.InstrumentState = store_pkg.InstrumentState.OPEN) -> ListingRules:
    """Instrument (trading parameters) and its listing rules in one transaction, audited."""
    lot_notes = _decimal(lot, "lot")
    lot_size = _units(lot_notes, token_decimals, "lot")
    # prices are quoted per note; the engine's tick is cash units per lot
    tick_size = _units(_decimal(tick, "tick") * lot_notes, cash_decimals, "tick")
    low, high = (_units(_decimal(b, "band") * lot_notes, cash_decimals, "band") for b in band)
    if low % tick_size or high % tick_size:
        raise RegistryError("INVALID_BAND", "band limits must be multiples of the tick")
    if low >= high:
        raise RegistryError("INVALID_BAND", "the band's low limit must be below its high limit")
    if not 0 < min_qty <= max_qty:
        raise RegistryError("INVALID_SIZE", "need 0 < min-qty <= max-qty")
    checked = validated_rules(rules)
    maturity = None if checked.maturity_date is None else int(dt.datetime.combine(
        dt.date.fromisoformat(checked.maturity_date), dt.time(), tzinfo=dt.UTC).timestamp()) * 10**9
    with translated(f"list {symbol}"):
        if store.get_instrument(symbol) is not None:
            raise RegistryError("INSTRUMENT_EXISTS", f"instrument {symbol!r} is listed")
        store.add_instrument(store_pkg.Instrument(
            symbol=symbol, name=name, token_address=wallet(token), cash_token_address=wallet(cash_token),
            token_decimals=token_decimals, cash_decimals=cash_decimals, tick_size=tick_size, lot_size=lot_size,
            min_qty=min_qty, max_qty=max_qty, band_low=low // tick_size, band_high=high // tick_size,
            status=status, maturity_ts=maturity), rules_to_dict(checked))
        store.append_audit(actor, "instrument.add", {"symbol": symbol, "token": token, "cash_token": cash_token,
                                                     "rules": rules_to_dict(checked)})
    log.info("instrument %s listed by %s (token %s)", symbol, actor, token)
    return checked


def stored_rules(store: store_pkg.Store, symbol: str) -> ListingRules:
    with translated(f"rules of {symbol}"):
        if store.get_instrument(symbol) is None:
            raise RegistryError("UNKNOWN_INSTRUMENT", f"no instrument {symbol!r}")
        text = store.list_listing_rules().get(symbol)
    if text is None:
        return ListingRules()
    try:
        return rules_from_dict(_json(text))
    except ListingError as exc:
        raise RegistryError("INVALID_LISTING_RULE", f"the stored rules of {symbol} are unreadable: {exc}") from exc


def set_rules(store: store_pkg.Store, symbol: str, changes: dict[str, Any], *, actor: str) -> ListingRules:
    """Change some rules of a listed instrument (the others keep their values), audited."""
    current = stored_rules(store, symbol)
    checked = validated_rules(changes, current)
    with translated(f"set rules of {symbol}"):
        store.set_listing_rules(symbol, rules_to_dict(checked))
        store.append_audit(actor, "instrument.rules", {"symbol": symbol, "changes": changes})
    log.info("listing rules of %s changed by %s: %s", symbol, actor, changes)
    return checked


def _json(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListingError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ListingError("not a JSON object")
    return value
