"""Statement kinds, attestor roles and the four EAS schemas (one per kind), with exact ABI encoding.

Units are integers on chain, chosen so no statement needs a float:

======== ============================================================ =====================================
Kind     EAS schema (data of an attestation whose recipient is the     Python statement
         series' token address)
======== ============================================================ =====================================
Hashrate ``uint64 period_start,uint64 period_end,                     ``HashrateStatement`` (``as_of`` is
         uint64 realised_ph_s_e3,uint16 uptime_bps``                  ``period_end``; PH/s x 1000)
Custody  ``uint64 as_of,uint64 btc_balance_sats``                     ``CustodyStatement``
Accrual  ``uint64 as_of,uint64 accrued_sats_per_note``                ``AccrualStatement``
Nav      ``uint64 as_of,uint256 nav_per_note_e6,string currency``     ``NavStatement`` (currency units x 1e6)
======== ============================================================ =====================================

Times are Unix seconds. The schema strings are constants of the resolver contract, which registers
them itself; ``SCHEMAS`` must equal them (a test checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum, IntFlag

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from attestation.errors import InvalidStatementError

SATS_PER_BTC = 100_000_000
NAV_SCALE = 1_000_000
HASHRATE_SCALE = 1_000
_U64 = 2**64 - 1


class Kind(IntEnum):
    HASHRATE = 0
    CUSTODY = 1
    ACCRUAL = 2
    NAV = 3


class Role(IntFlag):
    CUSTODIAN = 1
    ADMINISTRATOR = 2
    AUDITOR = 4
    FACILITY = 8


#: Roles the resolver admits per kind (mirrors ``NoteAttestationResolver.allowedRoles``).
ALLOWED_ROLES: dict[Kind, Role] = {
    Kind.HASHRATE: Role.FACILITY | Role.AUDITOR,
    Kind.CUSTODY: Role.CUSTODIAN | Role.AUDITOR,
    Kind.ACCRUAL: Role.ADMINISTRATOR | Role.AUDITOR,
    Kind.NAV: Role.ADMINISTRATOR | Role.AUDITOR,
}

SCHEMAS: dict[Kind, str] = {
    Kind.HASHRATE: "uint64 period_start,uint64 period_end,uint64 realised_ph_s_e3,uint16 uptime_bps",
    Kind.CUSTODY: "uint64 as_of,uint64 btc_balance_sats",
    Kind.ACCRUAL: "uint64 as_of,uint64 accrued_sats_per_note",
    Kind.NAV: "uint64 as_of,uint256 nav_per_note_e6,string currency",
}
_TYPES: dict[Kind, list[str]] = {k: [f.split()[0] for f in s.split(",")] for k, s in SCHEMAS.items()}


def _u64(name: str, value: int) -> int:
    if not 0 <= value <= _U64:
        raise InvalidStatementError(f"{name} must be in 0..2^64-1, got {value}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class HashrateStatement:
    """Realised hashrate of the contracted facilities over a period (facility or auditor)."""

    period_start: int
    period_end: int
    realised_ph_s_e3: int  # PH/s x 1000
    uptime_bps: int

    kind = Kind.HASHRATE

    @property
    def as_of(self) -> int:
        return self.period_end

    @property
    def realised_ph_s(self) -> Decimal:
        return Decimal(self.realised_ph_s_e3) / HASHRATE_SCALE

    def values(self) -> list[object]:
        _u64("period_start", self.period_start)
        _u64("period_end", self.period_end)
        _u64("realised_ph_s_e3", self.realised_ph_s_e3)
        if self.period_start >= self.period_end:
            raise InvalidStatementError("period_start must be before period_end")
        if not 0 <= self.uptime_bps <= 10_000:
            raise InvalidStatementError(f"uptime_bps must be in 0..10000, got {self.uptime_bps}")
        return [self.period_start, self.period_end, self.realised_ph_s_e3, self.uptime_bps]


@dataclass(frozen=True, slots=True, kw_only=True)
class CustodyStatement:
    """BTC held by the custodian for the series (custodian or auditor)."""

    as_of: int
    btc_balance_sats: int

    kind = Kind.CUSTODY

    def values(self) -> list[object]:
        return [_u64("as_of", self.as_of), _u64("btc_balance_sats", self.btc_balance_sats)]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccrualStatement:
    """BTC accrued per note and not yet distributed (administrator or auditor)."""

    as_of: int
    accrued_sats_per_note: int

    kind = Kind.ACCRUAL

    def values(self) -> list[object]:
        return [_u64("as_of", self.as_of), _u64("accrued_sats_per_note", self.accrued_sats_per_note)]


@dataclass(frozen=True, slots=True, kw_only=True)
class NavStatement:
    """Net asset value per note in ``currency`` (administrator or auditor)."""

    as_of: int
    nav_per_note_e6: int  # currency units x 1e6
    currency: str

    kind = Kind.NAV

    @property
    def nav_per_note(self) -> Decimal:
        return Decimal(self.nav_per_note_e6) / NAV_SCALE

    def values(self) -> list[object]:
        if not self.currency or not self.currency.isascii() or len(self.currency) > 16:
            raise InvalidStatementError(f"currency must be 1-16 ASCII characters, got {self.currency!r}")
        if self.nav_per_note_e6 < 0 or self.nav_per_note_e6 >= 2**256:
            raise InvalidStatementError(f"nav_per_note_e6 must be a uint256, got {self.nav_per_note_e6}")
        return [_u64("as_of", self.as_of), self.nav_per_note_e6, self.currency]


Statement = HashrateStatement | CustodyStatement | AccrualStatement | NavStatement


def encode_statement(statement: Statement) -> bytes:
    """The EAS ``data`` of a statement (ABI encoding of its schema's fields)."""
    return abi_encode(_TYPES[statement.kind], statement.values())


def decode_statement(kind: Kind, data: bytes) -> Statement:
    try:
        v = abi_decode(_TYPES[kind], data)
    except (DecodingError, ValueError, TypeError) as exc:
        raise InvalidStatementError(f"{kind.name} data does not decode: {exc}") from exc
    if kind is Kind.HASHRATE:
        return HashrateStatement(period_start=v[0], period_end=v[1], realised_ph_s_e3=v[2], uptime_bps=v[3])
    if kind is Kind.CUSTODY:
        return CustodyStatement(as_of=v[0], btc_balance_sats=v[1])
    if kind is Kind.ACCRUAL:
        return AccrualStatement(as_of=v[0], accrued_sats_per_note=v[1])
    return NavStatement(as_of=v[0], nav_per_note_e6=v[1], currency=v[2])


_FIELDS: dict[Kind, tuple[str, ...]] = {k: tuple(f.split()[1] for f in s.split(",")) for k, s in SCHEMAS.items()}


def statement_from_fields(kind: Kind, fields: dict[str, str], *, now: int) -> Statement:
    """Build a statement from ``name=value`` text (a CLI); ``as_of`` / ``period_end`` default to ``now``.

    Raises ``InvalidStatementError`` naming the unknown, missing or malformed field."""
    names = _FIELDS[kind]
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise InvalidStatementError(f"{kind.name} has no field {', '.join(unknown)} (fields: {', '.join(names)})")
    values: dict[str, str] = {"as_of": str(now), "period_end": str(now)} | fields
    missing = [n for n in names if n not in values]
    if missing:
        raise InvalidStatementError(f"{kind.name} needs {', '.join(missing)}")
    parsed: dict[str, int | str] = {}
    for name in names:
        if name == "currency":
            parsed[name] = values[name]
            continue
        try:
            parsed[name] = int(values[name])
        except ValueError as exc:
            raise InvalidStatementError(f"{name} must be an integer, got {values[name]!r}") from exc
    statement: Statement
    if kind is Kind.HASHRATE:
        statement = HashrateStatement(**parsed)  # type: ignore[arg-type]
    elif kind is Kind.CUSTODY:
        statement = CustodyStatement(**parsed)  # type: ignore[arg-type]
    elif kind is Kind.ACCRUAL:
        statement = AccrualStatement(**parsed)  # type: ignore[arg-type]
    else:
        statement = NavStatement(**parsed)  # type: ignore[arg-type]
    statement.values()  # range checks
    return statement
