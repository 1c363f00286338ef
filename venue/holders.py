"""Register of holders of a note series: positions from the venue's settled trades, reconciled with
the chain, differences flagged. The fallback ownership record a registrar keeps beside the token.

For each wallet the venue knows (participants' wallets and the parties of its trades):

    opening   = the token balance at the baseline block (the block before the series' first settled
                trade, or ``since_block``), read from the chain
    settled   = the net notes the venue's settled trades (confirmed or final, settled after the
                baseline) moved to the wallet: bought minus sold
    expected  = opening + settled                      (the register's position)
    chain     = the token balance now (``balanceOf`` at the head block)
    difference = chain - expected; non-zero is flagged: a movement outside the venue (a transfer,
                mint or burn), a settlement the venue did not record, or one it recorded that the
                chain does not show.

Wallets that received notes after the baseline (the token's ``Transfer`` events) are listed too,
without a participant: a holder the venue never saw shows up flagged. Reading a balance at a past
block needs a node that keeps that state (anvil and the in-process EVM do; on a public chain an
archive node or a recent ``since_block``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from settlement import artifacts
from settlement.chain import Chain
from store import Instrument, SettlementStatus, Store

_SETTLED = (SettlementStatus.CONFIRMED, SettlementStatus.FINAL)


class RegisterError(Exception):
    """The register cannot be built; ``code`` is a stable code of ``market.codes``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    wallet: str
    participant: str | None
    opening: int  # token base units
    settled: int
    chain: int

    @property
    def expected(self) -> int:
        return self.opening + self.settled

    @property
    def difference(self) -> int:
        return self.chain - self.expected


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    symbol: str
    token: str
    token_decimals: int
    baseline_block: int
    head_block: int
    holdings: tuple[Holding, ...]
    discovery: str = ""  # how holders the venue never saw were looked for

    @property
    def flagged(self) -> list[Holding]:
        return [h for h in self.holdings if h.difference != 0]

    def notes(self, units: int) -> str:
        return format(Decimal(units).scaleb(-self.token_decimals).normalize(), "f")

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "token": self.token, "baseline_block": self.baseline_block,
            "head_block": self.head_block, "reconciled": not self.flagged, "flagged": len(self.flagged),
            "discovery": self.discovery,
            "total_expected": self.notes(sum(h.expected for h in self.holdings)),
            "total_chain": self.notes(sum(h.chain for h in self.holdings)),
            "holders": [{
                "wallet": h.wallet, "participant": h.participant, "opening": self.notes(h.opening),
                "settled": self.notes(h.settled), "expected": self.notes(h.expected), "chain": self.notes(h.chain),
                "difference": self.notes(h.difference), "flagged": h.difference != 0,
            } for h in self.holdings],
        }


def build_register(store: Store, chain: Chain, symbol: str, *, since_block: int | None = None) -> Register:
    inst = store.get_instrument(symbol)
    if inst is None:
        raise RegisterError("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
    trades = store.list_trades(symbol=symbol)
    settlements = store.settlements_of([t.trade_id for t in trades])
    settled = [(t, s) for t in trades if (s := settlements.get(t.trade_id)) is not None
               and s.status in _SETTLED and s.block is not None]
    try:
        head = int(chain.w3.eth.block_number)
        if since_block is None:
            since_block = min((s.block for _, s in settled if s.block is not None), default=head + 1) - 1
        baseline = max(0, min(since_block, head))
        wallets = _wallets(store)
        net: dict[str, int] = {}
        for t, s in settled:
            if s.block is not None and s.block > baseline:
                trade = t.to_trade()
                units = t.qty * inst.lot_size
                net[trade.buyer] = net.get(trade.buyer, 0) + units
                net[trade.seller] = net.get(trade.seller, 0) - units
        owners: dict[str, str | None] = {w: p for p, w in wallets.items()}
        for participant in net:
            if participant not in wallets:
                owners.setdefault(f"(no wallet: {participant})", participant)
        discovered, discovery = _recipients(chain, inst, baseline, head)
        for wallet in discovered:
            owners.setdefault(wallet, None)  # received notes outside the venue's knowledge
        holdings = [_holding(chain, inst, wallet, owner, baseline, head,
                             net.get(owner, 0) if owner is not None else 0) for wallet, owner in sorted(owners.items())]
    except RegisterError:
        raise
    except Exception as exc:  # web3 / RPC errors: translated at this boundary
        raise RegisterError("REGISTER_CHAIN_ERROR", f"cannot read {symbol} balances on the chain: {exc}") from exc
    return Register(symbol=symbol, token=inst.token_address, token_decimals=inst.token_decimals,
                    baseline_block=baseline, head_block=head, holdings=tuple(holdings), discovery=discovery)


MAX_SCAN_BLOCKS = 100_000
_ZERO = "0x" + "00" * 20


def _recipients(chain: Chain, inst: Instrument, baseline: int, head: int) -> tuple[list[str], str]:
    """Wallets that received notes after the baseline (the token's ``Transfer`` events), so a holder
    the venue never saw is listed too; skipped (and said so) over a range a node would refuse."""
    if head - baseline > MAX_SCAN_BLOCKS:
        return [], f"not scanned: {head - baseline} blocks since the baseline (at most {MAX_SCAN_BLOCKS})"
    token = chain.contract(inst.token_address, _erc20_abi())
    try:
        logs = token.events.Transfer.get_logs(from_block=baseline + 1, to_block=head)
    except Exception as exc:  # a node that limits log queries: the register still stands without it
        return [], f"not scanned: {exc}"
    found = {str(log["args"]["to"]).lower() for log in logs} - {_ZERO}
    return sorted(found), f"Transfer events of blocks {baseline + 1}..{head} scanned"


def _wallets(store: Store) -> dict[str, str]:
    """participant -> its first wallet (lowercase), in the store's order."""
    out: dict[str, str] = {}
    for w in store.list_wallets():
        out.setdefault(w.participant_id, w.address.lower())
    return out


def _holding(chain: Chain, inst: Instrument, wallet: str, owner: str | None, baseline: int, head: int,
             settled: int) -> Holding:
    if not wallet.startswith("0x"):  # a party without a wallet on file: nothing to read on chain
        return Holding(wallet=wallet, participant=owner, opening=0, settled=settled, chain=0)
    token = chain.contract(inst.token_address, _erc20_abi())
    address = chain.w3.to_checksum_address(wallet)
    opening = int(token.functions.balanceOf(address).call(block_identifier=baseline))
    now = int(token.functions.balanceOf(address).call(block_identifier=head))
    return Holding(wallet=wallet, participant=owner, opening=opening, settled=settled, chain=now)


def _erc20_abi() -> list[dict[str, Any]]:
    return artifacts.load("DemoStablecoin").abi  # any ERC-20 ABI serves for balanceOf


def registers(store: Store, chain: Chain, symbols: Iterable[str] | None = None) -> list[Register]:
    names = list(symbols) if symbols is not None else [i.symbol for i in store.list_instruments()]
    return [build_register(store, chain, s) for s in names]


__all__ = ["Holding", "Register", "RegisterError", "build_register", "registers"]
