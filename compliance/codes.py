"""Stable rejection reason codes.

The value equals the name and both are API: they are persisted, counted, shown to operators and
returned to clients. Never rename a member; add new ones.
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class ReasonCode(StrEnum):
    # request / configuration
    INSTRUMENT_UNKNOWN = "INSTRUMENT_UNKNOWN"
    INVALID_ORDER = "INVALID_ORDER"
    # participant record (off-chain)
    PARTICIPANT_UNKNOWN = "PARTICIPANT_UNKNOWN"
    PARTICIPANT_SUSPENDED = "PARTICIPANT_SUSPENDED"
    NO_WALLET = "NO_WALLET"
    KYC_EXPIRED = "KYC_EXPIRED"
    CATEGORY_NOT_ALLOWED = "CATEGORY_NOT_ALLOWED"
    JURISDICTION_BLOCKED = "JURISDICTION_BLOCKED"
    JURISDICTION_NOT_ALLOWED = "JURISDICTION_NOT_ALLOWED"
    INSTRUMENT_MATURED = "INSTRUMENT_MATURED"
    # on-chain ERC-3643 state (from the cache)
    CHAIN_STATE_STALE = "CHAIN_STATE_STALE"
    CHAIN_STATE_UNKNOWN = "CHAIN_STATE_UNKNOWN"
    TOKEN_PAUSED = "TOKEN_PAUSED"
    IDENTITY_NOT_VERIFIED = "IDENTITY_NOT_VERIFIED"
    COUNTRY_MISMATCH = "COUNTRY_MISMATCH"
    WALLET_FROZEN = "WALLET_FROZEN"
    # instrument rules
    LOCKED_UP = "LOCKED_UP"
    ORDER_TOO_SMALL = "ORDER_TOO_SMALL"
    ORDER_TOO_LARGE = "ORDER_TOO_LARGE"
    PROTECTION_PRICE_REQUIRED = "PROTECTION_PRICE_REQUIRED"
    HOLDING_CAP_EXCEEDED = "HOLDING_CAP_EXCEEDED"
    MAX_HOLDERS_REACHED = "MAX_HOLDERS_REACHED"
    # funding
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    INSUFFICIENT_ALLOWANCE = "INSUFFICIENT_ALLOWANCE"
    INSUFFICIENT_NOTES = "INSUFFICIENT_NOTES"
    INSUFFICIENT_NOTE_ALLOWANCE = "INSUFFICIENT_NOTE_ALLOWANCE"


# Order of evaluation: when several conditions fail, the earliest in this tuple is reported.
PRECEDENCE: tuple[ReasonCode, ...] = tuple(ReasonCode)

# Reasons that depend only on who the participant is (not on the order): used by ``check_trade``
# and by the operator view's ``eligible`` flag.
ELIGIBILITY_CODES: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.PARTICIPANT_UNKNOWN,
        ReasonCode.PARTICIPANT_SUSPENDED,
        ReasonCode.NO_WALLET,
        ReasonCode.KYC_EXPIRED,
        ReasonCode.CATEGORY_NOT_ALLOWED,
        ReasonCode.JURISDICTION_BLOCKED,
        ReasonCode.JURISDICTION_NOT_ALLOWED,
        ReasonCode.INSTRUMENT_MATURED,
        ReasonCode.CHAIN_STATE_UNKNOWN,
        ReasonCode.CHAIN_STATE_STALE,
        ReasonCode.TOKEN_PAUSED,
        ReasonCode.IDENTITY_NOT_VERIFIED,
        ReasonCode.COUNTRY_MISMATCH,
        ReasonCode.WALLET_FROZEN,
    }
)
