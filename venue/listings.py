"""Per-instrument eligibility rules, kept beside the data directory as ``listings.json``.

The store holds the instrument's trading parameters; these are the compliance rules the
gatekeeper enforces (allowed investor categories and jurisdictions, holding cap, holders, lock-up).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFESSIONAL_CATEGORIES = ("MIFID_PROFESSIONAL", "ELIGIBLE_COUNTERPARTY", "US_ACCREDITED", "US_QIB")


class ListingError(ValueError):
    """listings.json is unreadable or holds an unknown field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingRules:
    allowed_categories: tuple[str, ...] = PROFESSIONAL_CATEGORIES
    allowed_jurisdictions: tuple[str, ...] = ()
    blocked_jurisdictions: tuple[str, ...] = ()
    holding_cap: int | None = None
    max_holders: int | None = None
    lockup_until_ts: int | None = None
    trading_end_ts: int | None = None
    # reference price (issue 14): NAV collar in percent of the NAV in force ("20" = NAV - 20 %), the
    # maximum age of the latest NAV / custody attestation before the instrument halts
    nav_collar_below_pct: str | None = None
    nav_collar_above_pct: str | None = None
    attestation_max_age_s: int | None = None
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
    extra: dict[str, Any] = field(default_factory=dict)


def _path(data_dir: Path) -> Path:
    return data_dir / "listings.json"


def load_rules(data_dir: Path) -> dict[str, ListingRules]:
    path = _path(data_dir)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        names = {f.name for f in dataclasses.fields(ListingRules)}
        out: dict[str, ListingRules] = {}
        for symbol, values in raw.items():
            unknown = set(values) - names
            if unknown:
                raise ListingError(f"{path}: {symbol}: unknown fields {sorted(unknown)}")
            fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            out[symbol] = ListingRules(**fixed)
        return out
    except (OSError, json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise ListingError(f"cannot read {path}: {exc}") from exc


def save_rules(data_dir: Path, symbol: str, rules: ListingRules) -> None:
    current = load_rules(data_dir)
    current[symbol] = rules
    path = _path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({s: dataclasses.asdict(r) for s, r in sorted(current.items())}, indent=2))
    tmp.replace(path)
