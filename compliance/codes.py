"""Compliance's policy over the gate codes: their precedence and which of them are eligibility.

The codes themselves (value equals name; persisted, counted, shown to operators and returned to
clients) are ``market.codes.GateCode``; never rename a member, add new ones there.
"""

from __future__ import annotations

from market.codes import GateCode

# The gate's codes live in the venue-wide registry (``market.codes``, gate band) with their messages.
ReasonCode = GateCode

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
