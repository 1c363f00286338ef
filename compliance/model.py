"""Participant records, instrument rules, decisions and operator views. All immutable."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum, unique

from compliance.codes import ReasonCode
from compliance.countries import is_alpha2
from compliance.errors import ConfigError
from engine import InstrumentSpec, Side
from market.model import ParticipantStatus as ParticipantStatus
from market.model import ParticipantView

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def normalize_address(address: str, *, what: str = "address") -> str:
    """Lower-case hex address; every cache key uses this form."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ConfigError(f"{what} must be a 0x-prefixed 20-byte hex address, got {address!r}")
    return address.lower()


@unique
class InvestorCategory(StrEnum):
    MIFID_PROFESSIONAL = "MIFID_PROFESSIONAL"
    ELIGIBLE_COUNTERPARTY = "ELIGIBLE_COUNTERPARTY"
    US_ACCREDITED = "US_ACCREDITED"
    US_QIB = "US_QIB"
    RETAIL = "RETAIL"

    @classmethod
    def from_label(cls, label: str) -> InvestorCategory:
        """Accepts the member name (any case) or the short labels other components use
        ("professional", "eligible_counterparty", "accredited", "qib", "retail")."""
        key = label.strip().upper().replace("-", "_").replace(" ", "_")
        member = _CATEGORY_ALIASES.get(key) or cls.__members__.get(key)
        if member is None:
            raise ConfigError(f"unknown investor category {label!r}; expected one of {[m.value for m in cls]}")
        return member


_CATEGORY_ALIASES: dict[str, InvestorCategory] = {
    "PROFESSIONAL": InvestorCategory.MIFID_PROFESSIONAL,
    "MIFID_PRO": InvestorCategory.MIFID_PROFESSIONAL,
    "ECP": InvestorCategory.ELIGIBLE_COUNTERPARTY,
    "ACCREDITED": InvestorCategory.US_ACCREDITED,
    "QIB": InvestorCategory.US_QIB,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    id: str
    status: ParticipantStatus
    category: InvestorCategory
    jurisdiction: str  # ISO 3166-1 alpha-2
    kyc_expiry_ts: int | None  # ns; trading is refused from this instant on; None = no expiry on file
    wallet: str | None  # the participant's settlement wallet
    signed_orders: bool = False  # signed mode: every order carries the wallet's EIP-712 signed order

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError("participant id must not be empty")
        try:
            object.__setattr__(self, "status", ParticipantStatus(self.status))
        except ValueError as exc:
            raise ConfigError(f"participant {self.id!r}: unknown status {self.status!r}") from exc
        try:
            object.__setattr__(self, "category", InvestorCategory(self.category))
        except ValueError as exc:
            raise ConfigError(f"participant {self.id!r}: unknown investor category {self.category!r}") from exc
        if not is_alpha2(self.jurisdiction):
            raise ConfigError(f"participant {self.id!r}: jurisdiction {self.jurisdiction!r} is not ISO 3166-1 alpha-2")
        if self.wallet is not None:
            normalize_address(self.wallet, what=f"participant {self.id!r} wallet")


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentRules:
    """Eligibility and trading rules of one instrument. Amounts in integer base units.

    ``holding_cap`` and the token balances are note-token base units; ``lot_size``/``tick_size`` have
    the meaning of ``engine.InstrumentSpec`` (cash for a buy = price * tick_size * qty).
    """

    symbol: str
    token: str
    cash_token: str
    lot_size: int
    tick_size: int
    allowed_categories: frozenset[InvestorCategory]
    allowed_jurisdictions: frozenset[str] = frozenset()  # empty = every jurisdiction not blocked
    blocked_jurisdictions: frozenset[str] = frozenset()
    min_order_lots: int = 1
    max_order_lots: int | None = None
    holding_cap: int | None = None  # token units per investor wallet, incl. open buys
    max_holders: int | None = None
    lockup_until_ts: int | None = None  # sells refused while now_ts < this
    trading_end_ts: int | None = None  # maturity cut-off: every order refused from this instant
    require_note_allowance: bool = True  # sellers must have approved the settlement contract
    check_country: bool = True  # compare the registry's investorCountry with the jurisdiction

    def __post_init__(self) -> None:
        where = f"instrument {self.symbol!r}"
        if not self.symbol:
            raise ConfigError("instrument symbol must not be empty")
        object.__setattr__(self, "token", normalize_address(self.token, what=f"{where} token"))
        object.__setattr__(self, "cash_token", normalize_address(self.cash_token, what=f"{where} cash_token"))
        if self.lot_size <= 0 or self.tick_size <= 0:
            raise ConfigError(f"{where}: lot_size and tick_size must be positive")
        try:
            cats = frozenset(InvestorCategory(c) for c in self.allowed_categories)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        object.__setattr__(self, "allowed_categories", cats)
        for name in ("allowed_jurisdictions", "blocked_jurisdictions"):
            codes = frozenset(getattr(self, name))
            bad = sorted(c for c in codes if not is_alpha2(c))
            if bad:
                raise ConfigError(f"{where}: {name} has non ISO 3166-1 alpha-2 codes {bad}")
            object.__setattr__(self, name, codes)
        if self.min_order_lots < 1:
            raise ConfigError(f"{where}: min_order_lots must be >= 1")
        if self.max_order_lots is not None and self.max_order_lots < self.min_order_lots:
            raise ConfigError(f"{where}: max_order_lots < min_order_lots")
        if self.holding_cap is not None and self.holding_cap < 0:
            raise ConfigError(f"{where}: holding_cap must be >= 0")
        if self.max_holders is not None and self.max_holders < 0:
            raise ConfigError(f"{where}: max_holders must be >= 0")

    @classmethod
    def from_spec(
        cls,
        spec: InstrumentSpec,
        *,
        token: str,
        cash_token: str,
        allowed_categories: frozenset[InvestorCategory],
        **rules: object,
    ) -> InstrumentRules:
        """Rules whose units and order-size limits come from the engine's instrument spec."""
        rules.setdefault("min_order_lots", spec.min_qty)
        rules.setdefault("max_order_lots", spec.max_qty)
        return cls(
            symbol=spec.symbol,
            token=token,
            cash_token=cash_token,
            lot_size=spec.lot_size,
            tick_size=spec.tick_size,
            allowed_categories=allowed_categories,
            **rules,  # type: ignore[arg-type]
        )

    def cash_amount(self, price: int, qty: int) -> int:
        return price * self.tick_size * qty

    def token_amount(self, qty: int) -> int:
        return qty * self.lot_size


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """Handle of a funding reservation made by an accepted check; pass it back to ``bind``/``release``."""

    hold_id: int
    participant: str
    symbol: str
    side: Side
    order_id: int | None = None  # set for amend holds (the order being amended)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    ok: bool
    code: ReasonCode | None
    message: str
    hold: Hold | None = None
    participant: str | None = None  # for trade checks: the side that failed


ACCEPTED = Decision(ok=True, code=None, message="accepted")


@unique
class CheckKind(StrEnum):
    ORDER = "order"
    AMEND = "amend"
    TRADE = "trade"


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """What the ``on_decision`` sink receives (for persistence / audit)."""

    ts: int
    kind: CheckKind
    participant: str
    symbol: str
    ok: bool
    code: ReasonCode | None
    message: str
    side: Side | None = None
    qty: int | None = None
    price: int | None = None
    order_id: int | None = None
    trade_id: int | None = None

    @property
    def code_name(self) -> str:
        """The code as persisted: the reason code, or "OK" for an acceptance."""
        return "OK" if self.code is None else self.code.value


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentEligibility:
    symbol: str
    eligible: bool
    reason: ReasonCode | None  # first failing eligibility reason (order-independent checks only)
    verified: bool | None  # None = not synced yet
    country: int | None
    frozen: bool | None
    paused: bool | None
    note_balance: int
    frozen_notes: int
    note_allowance: int
    cash_balance: int
    cash_allowance: int
    open_buy_cash: int  # cash reserved by open buys (this instrument)
    open_buy_notes: int  # token units those open buys would bring in
    open_sell_notes: int  # token units reserved by open sells
    pending_cash: int  # cash owed on trades not yet settled on chain
    pending_notes_in: int
    pending_notes_out: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EligibilityView:
    """A participant's eligibility state, for operators."""

    participant: str
    known: bool
    status: ParticipantStatus | None
    category: InvestorCategory | None
    jurisdiction: str | None
    kyc_expiry_ts: int | None
    wallet: str | None
    instruments: tuple[InstrumentEligibility, ...] = field(default=())
    last_rejection: DecisionRecord | None = None


# The operator's per-instrument row is the venue-wide ``market.ParticipantView``.
ParticipantSummary = ParticipantView
