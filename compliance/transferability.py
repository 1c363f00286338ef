"""Would the security token itself let this transfer through? A synchronous, in-memory predicate.

Reads only ``ChainStateCache`` (no I/O, no clock), which ``ChainWatcher`` keeps current for tokens
opted in with ``cache.track_transferability(token, probe_amounts)``. It mirrors what the reference
ERC-3643 token checks in ``transferFrom`` before moving notes:

1. ``paused()`` is false,
2. neither side ``isFrozen``,
3. both sides ``identityRegistry().isVerified`` (T-REX requires it of the receiver; the venue of both),
4. ``compliance().canTransfer(from, to, amount)`` (the token's modules: country restrictions, max
   balance, transfer limits, ...), as last read by the watcher.

Free-balance (frozen tokens, holdings) is the gatekeeper's own reservation check, not repeated here.

The gate calls ``check_transfer`` with the exact (seller, buyer, quantity) of a fill before the trade
prints / is settled, and ``check_wallet`` at order entry for the ordering participant alone (the
counterparty is not known yet). An unknown answer is ``TransferVerdict.allowed is None`` with
``TransferRefusal.CHAIN_STATE_UNKNOWN``; ``check_transfer`` then asks the watcher to read the exact
pair on its next poll (``request=True``), so the answer is known one poll later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from compliance.cache import ChainStateCache
from engine import Side


class TransferRefusal(StrEnum):
    """Why the token would refuse (value == name)."""

    TOKEN_PAUSED = "TOKEN_PAUSED"
    WALLET_FROZEN = "WALLET_FROZEN"
    IDENTITY_NOT_VERIFIED = "IDENTITY_NOT_VERIFIED"
    TOKEN_COMPLIANCE_REFUSED = "TOKEN_COMPLIANCE_REFUSED"  # compliance().canTransfer is false
    CHAIN_STATE_UNKNOWN = "CHAIN_STATE_UNKNOWN"  # not read yet: allowed is None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferVerdict:
    allowed: bool | None  # None: not known (see reason CHAIN_STATE_UNKNOWN)
    reason: TransferRefusal | None = None
    wallet: str | None = None  # the side the reason applies to (None: the token or the pair)

    @property
    def refused(self) -> bool:
        return self.allowed is False


ALLOWED = TransferVerdict(allowed=True)


def _unknown(wallet: str | None = None) -> TransferVerdict:
    return TransferVerdict(allowed=None, reason=TransferRefusal.CHAIN_STATE_UNKNOWN, wallet=wallet)


def _wallet_state(cache: ChainStateCache, token: str, wallet: str) -> TransferVerdict:
    w = wallet.lower()
    frozen = cache.frozen(token, w)
    verified = cache.verified(token, w)
    if frozen is True:
        return TransferVerdict(allowed=False, reason=TransferRefusal.WALLET_FROZEN, wallet=w)
    if verified is False:
        return TransferVerdict(allowed=False, reason=TransferRefusal.IDENTITY_NOT_VERIFIED, wallet=w)
    if frozen is None or verified is None:
        return _unknown(w)
    return ALLOWED


def check_transfer(
    cache: ChainStateCache, token: str, sender: str, receiver: str, amount: int, *, request: bool = True
) -> TransferVerdict:
    """Would ``token`` move ``amount`` from ``sender`` to ``receiver`` now? Refusals take precedence
    over unknowns (a known reason to refuse is reported even when something else is not known)."""
    paused = cache.paused(token)
    if paused is True:
        return TransferVerdict(allowed=False, reason=TransferRefusal.TOKEN_PAUSED)
    sides = [_wallet_state(cache, token, sender), _wallet_state(cache, token, receiver)]
    for v in sides:
        if v.refused:
            return v
    can = cache.can_transfer(token, sender, receiver, amount)
    if can is False:
        return TransferVerdict(allowed=False, reason=TransferRefusal.TOKEN_COMPLIANCE_REFUSED)
    if can is None and request:
        cache.request_transfer_check(token, sender, receiver, amount)
    if paused is None or can is None:
        return _unknown()
    for v in sides:
        if v.allowed is None:
            return v
    return ALLOWED


def check_wallet(cache: ChainStateCache, token: str, wallet: str, side: Side, amount: int) -> TransferVerdict:
    """Order entry, counterparty unknown: the token's state and the wallet's own state, and the token
    compliance against the tracked counterparties: refused when every tracked wallet whose answer is
    known refuses ``amount`` in this direction (and at least one answer is known). Unknown answers do
    not refuse at entry; ``check_transfer`` decides for the actual counterparty."""
    paused = cache.paused(token)
    if paused is True:
        return TransferVerdict(allowed=False, reason=TransferRefusal.TOKEN_PAUSED)
    own = _wallet_state(cache, token, wallet)
    if own.refused:
        return own
    w = wallet.lower()
    answers: list[bool] = []
    for other in sorted(cache.wallets - {w}):
        sender, receiver = (w, other) if side is Side.SELL else (other, w)
        can = cache.can_transfer(token, sender, receiver, amount)
        if can is not None:
            answers.append(can)
    if answers and not any(answers):
        return TransferVerdict(allowed=False, reason=TransferRefusal.TOKEN_COMPLIANCE_REFUSED, wallet=w)
    if paused is None:
        return _unknown()
    return own
