"""The token's own transfer predicate (``compliance.transferability``) in the gate.

At order entry (``entry_failure``, for new orders and amends that run the order checks, right after
eligibility): ``TOKEN_COMPLIANCE_REFUSED`` when the token's compliance refuses this wallet in this
direction against every tracked counterparty whose answer is known; unknown answers do not refuse
(the counterparty is not known yet).

Before settlement (``transfer_failure``, ``Gatekeeper.check_trade``) for the actual pair and amount.

Policy for answers the venue does not know yet (``check_transfer`` -> ``allowed is None``: a pair
never read, a token whose compliance is not followed): the trade goes to settlement and the chain
decides (the contract records the trade id as settled or failed once); the exact pair is asked
for on the watcher's next poll. A known refusal fails the trade before any transaction, with the
token's reason (``TOKEN_PAUSED``, ``WALLET_FROZEN``, ``IDENTITY_NOT_VERIFIED``,
``TOKEN_COMPLIANCE_REFUSED``).
"""

from __future__ import annotations

from compliance.cache import ChainStateCache
from compliance.codes import ReasonCode
from compliance.transferability import check_transfer
from engine import Side


def entry_failure(
    cache: ChainStateCache, token: str, wallet: str | None, side: Side, amount: int,
) -> tuple[ReasonCode, str] | None:
    """``check_wallet``'s token-compliance part, stopping at the first counterparty the token allows
    (O(1) in the usual case; a refused wallet costs one pass over the tracked wallets)."""
    if wallet is None or amount <= 0 or not cache.follows_transfers(token):
        return None
    w = wallet.lower()
    known = False
    for other in cache.iter_wallets():
        if other == w:
            continue
        sender, receiver = (w, other) if side is Side.SELL else (other, w)
        can = cache.can_transfer(token, sender, receiver, amount)
        if can:
            return None
        known = known or can is False
    if not known:
        return None  # nothing known yet: the pre-settlement check decides for the actual counterparty
    verb = "buy" if side is Side.BUY else "sell"
    return (ReasonCode.TOKEN_COMPLIANCE_REFUSED,
            f"the token's compliance would refuse to let {wallet} {verb} {amount} units with any known counterparty")


def transfer_failure(
    cache: ChainStateCache, token: str, seller_wallet: str, buyer_wallet: str, amount: int,
) -> tuple[str | None, ReasonCode, str] | None:
    """(wallet the refusal applies to or None for the token/pair, code, message), or None to proceed."""
    verdict = check_transfer(cache, token, seller_wallet, buyer_wallet, amount)
    if not verdict.refused or verdict.reason is None:
        return None
    code = ReasonCode(verdict.reason.value)
    return verdict.wallet, code, (f"the token would refuse moving {amount} units from {seller_wallet} to "
                                  f"{buyer_wallet}: {code.value}")
