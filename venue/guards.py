"""Venue-wide entry guards that run before the compliance gate (``venue.pipeline`` step 1):

    CHAIN_STATE_STALE    the chain watcher's last successful poll is older than ``max_chain_lag_s``
                         (an RPC outage): freezes, identity and claim changes may be unseen, so no
                         new risk is taken on (cancels always pass)
    SETTLEMENT_BACKLOG   the notional of trades not yet settled (PENDING / SUBMITTED) is at or above
                         the venue-wide cap, or the participant's own share (as buyer or seller) is at
                         or above the per-participant cap

They apply to new orders and to amends that change the price or raise the quantity; cancels only
reduce risk. Each guard that starts refusing raises one operator alert (an audit entry
``alert.<code>`` and the count in the rejection counts / ``venue_rejections`` metric), and one
``alert.<code>.cleared`` entry when it stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from engine import AmendOrder, NewOrder, OrderView
from market.codes import message
from market.model import Listing, Rejection, SettlementNotice, SettlementState, Trade

STALE = "CHAIN_STATE_STALE"
BACKLOG = "SETTLEMENT_BACKLOG"


class Staleness(Protocol):
    """``compliance.ChainWatcher`` as the guard uses it."""

    def is_stale(self, max_seconds: float, max_blocks: int | None = None) -> bool: ...


class Alerts(Protocol):
    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None: ...


class Parties(Protocol):
    def listing(self, symbol: str) -> Listing | None: ...

    def wallet_of(self, participant: str) -> str | None: ...


# no longer unsettled (a reorg's PENDING after CONFIRMED counts the trade again)
_DONE = frozenset({SettlementState.CONFIRMED, SettlementState.FINAL, SettlementState.FAILED})


class UnsettledNotional:
    """Cash notional (whole cash-token units, rounded up per trade) of the trades not settled yet, venue-wide and per
    participant. A trade counts from the moment it prints (``printed``: its PENDING notice is told
    only once the store has it), and stops counting at its terminal settlement notice (``observe``);
    ``restore`` adds trades put back after a restart (they publish no notice)."""

    def __init__(self, parties: Parties) -> None:
        self._parties = parties
        self._open: dict[int, tuple[int, str, str]] = {}  # trade id -> (notional, buyer, seller)
        self._per: dict[str, int] = {}
        self.total = 0

    def of(self, participant: str) -> int:
        return self._per.get(participant, 0)

    def printed(self, trade: Trade) -> None:
        if trade.trade_id not in self._open:
            self._add(trade)

    def observe(self, notice: SettlementNotice, trade: Trade | None) -> None:
        if notice.state in _DONE:
            self._remove(notice.trade_id)
        elif trade is not None and notice.trade_id not in self._open:
            self._add(trade)

    def restore(self, trades: Iterable[Trade]) -> None:
        for trade in trades:
            if trade.settlement not in _DONE and trade.trade_id not in self._open:
                self._add(trade)

    def _add(self, trade: Trade) -> None:
        listing = self._parties.listing(trade.symbol)
        cash = listing.cash_amount(trade.price, trade.qty) if listing is not None else 0
        notional = -(-cash // 10**listing.cash_decimals) if listing is not None else 0
        self._open[trade.trade_id] = (notional, trade.buyer, trade.seller)
        self.total += notional
        for p in {trade.buyer, trade.seller}:
            self._per[p] = self._per.get(p, 0) + notional

    def _remove(self, trade_id: int) -> None:
        entry = self._open.pop(trade_id, None)
        if entry is None:
            return
        notional, buyer, seller = entry
        self.total -= notional
        for p in {buyer, seller}:
            left = self._per.get(p, 0) - notional
            if left > 0:
                self._per[p] = left
            else:
                self._per.pop(p, None)


class EntryGuard:
    """The pipeline's ``guard``: ``refuse(cmd, order)`` -> a ``Rejection`` or None (see module doc)."""

    def __init__(
        self,
        *,
        parties: Parties,
        backlog: UnsettledNotional,
        watcher: Staleness | None = None,
        max_chain_lag_s: float | None = 10.0,
        max_unsettled: int | None = None,
        max_unsettled_participant: int | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self._parties = parties
        self._backlog = backlog
        self._watcher = watcher
        self._max_lag = max_chain_lag_s
        self._max_total = max_unsettled
        self._max_each = max_unsettled_participant
        self._alerts = alerts
        self._alerting: set[str] = set()

    def refuse(self, cmd: NewOrder | AmendOrder, order: OrderView | None) -> Rejection | None:
        if isinstance(cmd, AmendOrder) and (order is None or not _adds_risk(cmd, order)):
            return None
        stale = self._stale()
        if stale is not None:
            return stale
        return self._over_backlog(cmd.participant)

    def _stale(self) -> Rejection | None:
        if self._watcher is None or self._max_lag is None:
            return None
        if not self._watcher.is_stale(self._max_lag):
            self._clear(STALE)
            return None
        self._alert(STALE, {"max_lag_s": self._max_lag})
        return Rejection(code=STALE, message=f"the venue's view of the chain is older than {self._max_lag:g} s "
                         "(chain node unreachable?); new orders are refused until it catches up")

    def _over_backlog(self, participant: str) -> Rejection | None:
        total, own = self._backlog.total, self._backlog.of(participant)
        if self._max_total is not None and total >= self._max_total:
            self._alert(BACKLOG, {"scope": "venue", "unsettled": total, "cap": self._max_total})
            return Rejection(code=BACKLOG, message=f"unsettled notional {total} is at the venue's cap "
                             f"{self._max_total}; new orders are refused until trades settle")
        if self._max_each is not None and own >= self._max_each:
            self._alert(BACKLOG, {"scope": "participant", "participant": participant, "unsettled": own,
                                  "cap": self._max_each})
            return Rejection(code=BACKLOG, message=f"your unsettled notional {own} is at the per-participant cap "
                             f"{self._max_each}; new orders are refused until your trades settle")
        if self._max_total is None or total < self._max_total:
            self._clear(BACKLOG)
        return None

    def _alert(self, code: str, details: dict[str, object]) -> None:
        if code in self._alerting:
            return
        self._alerting.add(code)
        if self._alerts is not None:
            self._alerts.audit("venue", f"alert.{code}", {"code": code, "message": message(code), **details})

    def _clear(self, code: str) -> None:
        if code in self._alerting:
            self._alerting.discard(code)
            if self._alerts is not None:
                self._alerts.audit("venue", f"alert.{code}.cleared", {"code": code})

    @property
    def alerts(self) -> frozenset[str]:
        """Codes currently alerting (for the operator console / health)."""
        return frozenset(self._alerting)


def _adds_risk(cmd: AmendOrder, order: OrderView) -> bool:
    return (cmd.price is not None and cmd.price != order.price) or (cmd.qty is not None and cmd.qty > order.qty)

