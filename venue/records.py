"""Records of the running venue, for the ``gateway.records`` routes and the CLI: per-participant
trade confirmations (with the settlement transaction), the RTS 22 / RTS 24 exports
(``venue.exports``), the register of holders (``venue.holders``) and the audit anchors
(``venue.anchor``). Everything reads the store (and the chain for the register and the anchors);
the methods block and are called from a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from settlement.chain import Chain
from store import SettlementUpdate, Store, StoredTrade
from venue.anchor import AuditAnchorer, verify_anchors
from venue.exports import ExportOptions, Scale, day_window, export, utc
from venue.holders import build_register

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class Records:
    def __init__(self, store: Store, chain: Chain | None, *, sender: str | None = None,
                 options: ExportOptions | None = None) -> None:
        self._store = store
        self._chain = chain
        self._sender = sender
        self.options = options or ExportOptions()

    # ------------------------------------------------------------ confirmations

    def confirmations(self, participant: str, *, day: str | None = None, limit: int = 500) -> list[JSON]:
        """The participant's trade confirmations, newest first (of one UTC day with ``day``)."""
        since, until = day_window(day) if day else (None, None)
        trades = self._store.list_trades(participant=participant, since_ts=since, until_ts=until,
                                         newest_first=True, limit=limit)
        return self._confirm(participant, trades)

    def confirmation(self, participant: str, trade_id: int) -> JSON | None:
        trade = self._store.get_trade(trade_id)
        if trade is None or participant not in (trade.maker_participant, trade.taker_participant):
            return None  # someone else's trade: answered exactly like an unknown one
        return self._confirm(participant, [trade])[0]

    def _confirm(self, participant: str, trades: list[StoredTrade]) -> list[JSON]:
        instruments = {i.symbol: i for i in self._store.list_instruments()}
        wallets = [w.address for w in self._store.list_wallets(participant)]
        settlements = self._store.settlements_of([t.trade_id for t in trades])
        out = []
        for stored in trades:
            trade = stored.to_trade()
            side = trade.side_of(participant)
            assert side is not None
            inst = instruments.get(stored.symbol)
            scale = Scale.of(inst) if inst is not None else None
            settled: SettlementUpdate | None = settlements.get(stored.trade_id)
            ids = self.options.identifiers or {}
            out.append({
                "trade_id": stored.trade_id, "symbol": stored.symbol,
                "instrument_id": ids.get(stored.symbol) or (inst.token_address if inst else None),
                "instrument_name": inst.name if inst else None, "side": side.name.lower(),
                "order_id": trade.order_of(side), "liquidity": "taker" if trade.is_aggressor(side) else "maker",
                "price": scale.price(stored.price) if scale else str(stored.price),
                "qty": scale.qty(stored.qty) if scale else str(stored.qty),
                "consideration": scale.amount(stored.price, stored.qty) if scale else None,
                "currency": self.options.currency, "venue": self.options.mic,
                "trade_time": utc(stored.ts), "ts": stored.ts,
                "premium_bps": stored.premium_bps, "nav": stored.nav,
                "wallet": wallets[0] if wallets else None,
                "settlement": {
                    "status": (settled.status if settled else stored.settlement_status).value,
                    "tx_hash": settled.tx_hash if settled else None, "block": settled.block if settled else None,
                    "reason": settled.reason if settled else None,
                    "updated": utc(settled.updated_ts) if settled else None,
                },
            })
        return out

    # ------------------------------------------------------------ exports, register, anchors

    def export(self, kind: str, day: str, *, mic: str | None = None) -> str:
        options = self.options if mic is None else ExportOptions(
            mic=mic, executing_entity=self.options.executing_entity, currency=self.options.currency,
            identifiers=self.options.identifiers)
        return export(self._store, kind, day, options)

    def register(self, symbol: str) -> JSON:
        assert self._chain is not None
        return build_register(self._store, self._chain, symbol).to_json()

    def anchors(self) -> JSON:
        """The recorded anchors, each checked against the chain, after recomputing the audit chain."""
        assert self._chain is not None
        return verify_anchors(self._store, self._chain, sender=self._sender, limit=50).to_json()


def anchor_tasks(store: Store, chain: Chain, sender: str, interval_s: float | None,
                 stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The periodic audit anchor (``venue.anchor``), none when ``interval_s`` is None."""
    if interval_s is None:
        return []
    anchorer = AuditAnchorer(store, chain, sender, interval_s=interval_s)
    return [asyncio.create_task(anchorer.run(stop), name="audit-anchor")]


class _Reconciles(Protocol):
    async def run_reconciliation(self, *, operator: str, quiet_if_unchanged: bool = False) -> object: ...


def reconcile_tasks(operations: _Reconciles, interval_s: float | None,
                    stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Reconciliation with the chain on a schedule (first run at once), none when ``interval_s`` is None."""
    if interval_s is None:
        return []

    async def run() -> None:
        while not stop.is_set():
            try:
                await operations.run_reconciliation(operator="scheduler", quiet_if_unchanged=True)
            except Exception:  # a chain or database outage: the next run tries again
                log.warning("scheduled reconciliation failed; next run in %.0f s", interval_s, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    return [asyncio.create_task(run(), name="reconciliation")]


__all__ = ["Records", "anchor_tasks", "reconcile_tasks"]
