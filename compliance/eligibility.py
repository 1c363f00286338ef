"""Typed events the chain watcher emits when a tracked wallet stops being able to trade a token.

The watcher calls every listener (``ChainWatcher.add_eligibility_listener``) after a poll's facts are
applied to the cache, on the thread that applies them (the event loop in production), once per
(wallet, token, reason) transition into the ineligible state. The first observation of a wallet
counts as a transition: after a restart, a wallet frozen while the venue was down is reported on the
first poll, so resting orders rebuilt from the journal can be cancelled. The venue cancels the
wallet's resting orders and releases its holds; the watcher itself cancels nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class EligibilityLoss(StrEnum):
    """Why a wallet lost eligibility (value == name, stable for logs, journals and clients)."""

    WALLET_FROZEN = "WALLET_FROZEN"  # token.isFrozen(wallet) became true
    TOKEN_PAUSED = "TOKEN_PAUSED"  # token.paused() became true (one event per tracked wallet)
    IDENTITY_REMOVED = "IDENTITY_REMOVED"  # the registry no longer has an identity for the wallet
    CLAIM_REVOKED = "CLAIM_REVOKED"  # isVerified turned false after a claim event (revoked, removed,
    # changed, issuer key removed, trusted issuer / claim topic change)
    IDENTITY_NOT_VERIFIED = "IDENTITY_NOT_VERIFIED"  # isVerified turned false for another reason


@dataclass(frozen=True, slots=True, kw_only=True)
class EligibilityLost:
    wallet: str  # lower-case hex
    token: str  # lower-case hex: the security token the wallet can no longer trade
    reason: EligibilityLoss
    block: int  # the polled block at which the new state was read


EligibilityListener = Callable[[EligibilityLost], None]
