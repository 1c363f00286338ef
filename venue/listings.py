"""Per-instrument listing rules: the compliance rules the gatekeeper enforces (allowed investor
categories and jurisdictions, holding cap, holders, lock-up, trading end), the reference-price
rules (NAV collar, attestation age) and the note series' metadata.

They live in the database (``listing_rules``, one JSON object per instrument, written with an audit
entry by ``venue.registry``). A ``listings.json`` left by an older version in the data directory is
moved into the database once at start (``migrate_file``) and renamed; it is never read again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from store import Store

log = logging.getLogger(__name__)

# MiFID II Annex II professional clients and eligible counterparties: the audience of a Luxembourg
# note; US categories (and anything else) must be allowed explicitly per listing.
PROFESSIONAL_CATEGORIES = ("MIFID_PROFESSIONAL", "ELIGIBLE_COUNTERPARTY")


class ListingError(ValueError):
    """A listing rule is unknown or has a value of the wrong kind (the message names it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingRules:
    allowed_categories: tuple[str, ...] = PROFESSIONAL_CATEGORIES
    allowed_jurisdictions: tuple[str, ...] = ()  # empty: every jurisdiction not blocked
    blocked_jurisdictions: tuple[str, ...] = ()
    holding_cap: int | None = None  # token base units per investor
    max_holders: int | None = None
    lockup_until_ts: int | None = None  # ns; no trading before
    trading_end_ts: int | None = None  # ns; no trading from (e.g. a week before maturity)
    # reference price (issue 14): NAV collar in percent of the NAV in force ("20" = NAV - 20 %), the
    # maximum age of the latest NAV / custody attestation before the instrument halts
    nav_collar_below_pct: str | None = None
    nav_collar_above_pct: str | None = None
    attestation_max_age_s: int | None = None
    # request for quotes (venue.rfq): who is asked to quote: "eligible" (every participant eligible
    # for the instrument), "market_makers" (only those in ``market_makers``) or "none" (no RFQs);
    # the longest time to live of a request and of a quote
    rfq_responders: str = "eligible"
    market_makers: tuple[str, ...] = ()
    rfq_max_ttl_s: int = 300
    # negotiated block trades (venue.blocks): the smallest block in lots (None: no block trades) and
    # how long the first side waits for its counterparty's confirmation
    min_block_lots: int | None = None
    block_confirm_s: int = 300
    # issue 16: every order on this listing must carry an order signed by the participant's wallet
    signed_orders_required: bool = False
    # note series metadata shown in the API and console
    hashrate_ph_s_per_note: str | None = None
    tenor_months: int | None = None
    issue_date: str | None = None  # ISO date
    maturity_date: str | None = None  # ISO date
    expense_ratio_bps: int | None = None
    settlement_asset: str | None = None
    identifier: str | None = None  # ISIN-like series identifier
    # trading phases (issue 15): periodic call auctions, one uncross every this many seconds
    # (``venue.auctions``); None = continuous trading
    call_interval_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_TUPLES = ("allowed_categories", "allowed_jurisdictions", "blocked_jurisdictions")
_IDS = ("market_makers",)  # participant ids: kept as written
_INTS = ("holding_cap", "max_holders", "lockup_until_ts", "trading_end_ts", "attestation_max_age_s",
         "tenor_months", "expense_ratio_bps", "rfq_max_ttl_s", "min_block_lots", "block_confirm_s")
_FLOATS = ("call_interval_s",)  # seconds, > 0
_CHOICES = {"rfq_responders": ("eligible", "market_makers", "none")}
_BOOLS = ("signed_orders_required",)
_DECIMALS = ("nav_collar_below_pct", "nav_collar_above_pct", "hashrate_ph_s_per_note")
_DATES = ("issue_date", "maturity_date")
RULE_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ListingRules))


def rules_to_dict(rules: ListingRules) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(rules).items()}


def rules_from_dict(values: dict[str, Any]) -> ListingRules:
    """Rules from a JSON object, each value checked for its kind; unknown names are refused."""
    unknown = sorted(set(values) - set(RULE_NAMES))
    if unknown:
        raise ListingError(f"unknown listing rules {unknown}; known: {', '.join(RULE_NAMES)}")
    fixed: dict[str, Any] = {}
    for name, value in values.items():
        fixed[name] = _checked(name, value)
    return ListingRules(**fixed)


def _checked(name: str, value: Any) -> Any:
    if name in _TUPLES:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise ListingError(f"{name}: a list of codes, not {value!r}")
        return tuple(v.strip().upper() for v in items if v.strip())
    if name in _IDS:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise ListingError(f"{name}: a list of participant ids, not {value!r}")
        return tuple(v.strip() for v in items if v.strip())
    if value is None:
        return None
    if name in _BOOLS:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise ListingError(f"{name}: true or false, not {value!r}")
        return value
    if name in _FLOATS:
        try:
            seconds = float(value) if not isinstance(value, bool) else -1.0
        except (TypeError, ValueError):
            raise ListingError(f"{name}: a number of seconds, not {value!r}") from None
        if not seconds > 0 or seconds == float("inf"):
            raise ListingError(f"{name}: a positive number of seconds, not {value!r}")
        return seconds
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ListingError(f"{name}: one of {', '.join(_CHOICES[name])}, not {value!r}")
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ListingError(f"{name}: a whole number, not {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ListingError(f"{name}: a whole number, not {value!r}") from None
        if number < 0:
            raise ListingError(f"{name}: must not be negative")
        return number
    if name in _DECIMALS:
        try:
            number_d = Decimal(str(value))
        except InvalidOperation:
            raise ListingError(f"{name}: a decimal number, not {value!r}") from None
        if not number_d.is_finite() or number_d < 0:
            raise ListingError(f"{name}: a non-negative decimal number, not {value!r}")
        return str(value)
    if name in _DATES:
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ListingError(f"{name}: an ISO date (YYYY-MM-DD), not {value!r}") from None
    if name == "extra":
        if not isinstance(value, dict):
            raise ListingError("extra: a JSON object")
        return value
    if not isinstance(value, str):
        raise ListingError(f"{name}: text, not {value!r}")
    return value


def parse_rules(text: str) -> ListingRules:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListingError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ListingError("not a JSON object")
    return rules_from_dict(value)


def load_rules(stored: dict[str, str]) -> tuple[dict[str, ListingRules], dict[str, str]]:
    """The stored rules (``Store.list_listing_rules``) parsed one by one: the good ones, and the
    problem of each unreadable one (its instrument is not opened; the venue still starts)."""
    good: dict[str, ListingRules] = {}
    bad: dict[str, str] = {}
    for symbol, text in stored.items():
        try:
            good[symbol] = parse_rules(text)
        except ListingError as exc:
            bad[symbol] = str(exc)
    return good, bad


def migrate_file(data_dir: Path, store: Store) -> list[str]:
    """Move ``data_dir/listings.json`` (older versions) into the database, once: rules of
    instruments already in the database are kept (the database wins), the file is renamed to
    ``listings.json.migrated``. Returns the symbols moved; an unreadable file is reported, left
    in place, and the venue starts on the database's rules."""
    path = data_dir / "listings.json"
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ListingError("not a JSON object")
        parsed = {symbol: rules_from_dict(values) for symbol, values in raw.items()}
    except (OSError, json.JSONDecodeError, ListingError, TypeError, AttributeError) as exc:
        log.error("cannot migrate %s into the database (left in place, ignored): %s", path, exc)
        return []
    have = store.list_listing_rules()
    known = {inst.symbol for inst in store.list_instruments()}
    moved = []
    for symbol, rules in sorted(parsed.items()):
        if symbol in have or symbol not in known:
            continue
        store.set_listing_rules(symbol, rules_to_dict(rules))
        moved.append(symbol)
    store.append_audit("venue", "listings.migrate", {"file": str(path), "symbols": moved})
    path.replace(path.with_name("listings.json.migrated"))
    log.info("moved the listing rules of %s from %s into the database", ", ".join(moved) or "no instrument", path)
    return moved
