"""The per-order and per-trade gate: eligibility, instrument rules and funding reservations.

Everything here is synchronous and in memory: a check reads the ``ChainStateCache`` (kept current by
the ``ChainWatcher``) and this object's reservation ledger, never the chain.

Reservation lifecycle (all amounts integer base units)::

    check_new_order ok -> provisional hold -> bind(hold, order_id)  (or release(hold) if the engine rejected)
    Fill            -> the filled part leaves the hold and becomes a pending-settlement obligation
    cancel / expiry -> the hold is released;  amend -> the hold follows the new price / remaining
    on_settled      -> obligation released once the cache has seen the settlement block
                       (block unknown: after two more completed watcher polls)
    on_settlement_failed -> obligation released at once (nothing moved on chain)

A buy reserves ``price * tick_size * remaining`` cash (against both balance and allowance to the
settlement contract) and counts ``remaining * lot_size`` notes towards the holding cap; a sell
reserves ``remaining * lot_size`` notes against ``balance - frozen tokens`` (and the note allowance).
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter as PromCounter

from compliance.cache import ChainStateCache
from compliance.codes import ReasonCode
from compliance.countries import ALPHA2_TO_NUMERIC, NUMERIC_TO_ALPHA2
from compliance.errors import ConfigError, InvariantError, UnknownHoldError
from compliance.model import (
    ACCEPTED,
    CheckKind,
    Decision,
    DecisionRecord,
    EligibilityView,
    Hold,
    InstrumentEligibility,
    InstrumentRules,
    Participant,
    ParticipantStatus,
    ParticipantSummary,
    normalize_address,
)
from engine import (
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderView,
    Side,
)
from engine import Result as EngineResult

REJECTIONS = PromCounter("venue_compliance_rejections", "Orders and trades refused by compliance", ["code"])

_Failure = tuple[ReasonCode, str]


def _key_qty(res: _Res) -> int:
    """The quantity an order hold was created for (its match key's qty)."""
    assert res.key is not None
    qty = res.key[3]
    assert isinstance(qty, int)
    return qty


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Res:
    """One reservation: an order's hold, an amend's extra, or a trade's pending obligation."""

    participant: str
    symbol: str
    side: Side
    wallet: str
    token: str
    cash_token: str
    cash: int = 0  # cash reserved (buys)
    notes: int = 0  # buys: notes coming in (holding cap); sells: notes going out
    # order holds only: the reservation is derived from these
    price: int = 0
    remaining: int = 0
    order_id: int | None = None
    key: tuple[object, ...] | None = None  # while unbound: the match key for auto-binding
    auto_bound: bool = False  # bound from an ``OrderAccepted`` match, not by ``bind``


class Gatekeeper:
    def __init__(
        self,
        cache: ChainStateCache,
        *,
        settlement_address: str,
        on_decision: Callable[[DecisionRecord], None] | None = None,
        record_acceptances: bool = False,
        max_chain_lag_ns: int | None = None,
        recent_limit: int = 1000,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """``on_decision`` receives every rejection (and every acceptance if ``record_acceptances``).
        ``max_chain_lag_ns``: refuse orders (``CHAIN_STATE_STALE``) when the cache's last successful
        sync is older than this relative to ``now_ts``; None disables the guard."""
        self.cache = cache
        self.settlement = normalize_address(settlement_address, what="settlement_address")
        cache.track_spender(self.settlement)
        self._on_decision = on_decision
        self._clock = clock  # only for operator views; checks use the sequencer's ``now_ts``
        self._record_acceptances = record_acceptances
        self._max_lag = max_chain_lag_ns
        self._participants: dict[str, Participant] = {}
        self._rules: dict[str, InstrumentRules] = {}
        self._counts: Counter[str] = Counter()
        self._recent: deque[DecisionRecord] = deque(maxlen=recent_limit)
        self._last_rejection: dict[str, DecisionRecord] = {}
        # ledger
        self._next_hold = 1
        self._holds: dict[int, _Res] = {}  # order holds and amend holds, by hold id
        self._by_order: dict[int, int] = {}  # order id -> hold id
        self._amends: dict[int, set[int]] = {}  # order id -> amend hold ids in flight
        self._unbound: dict[tuple[object, ...], deque[int]] = {}
        self._obligations: dict[tuple[int, Side], _Res] = {}
        self._settled_heap: list[tuple[int, int]] = []  # (block, trade id) waiting for the cache
        self._settled_syncs: list[tuple[int, int]] = []  # (cache.syncs needed, trade id)
        self._last_seq = 0
        # aggregates, kept incrementally (``validate`` recomputes them)
        self._cash_res: Counter[tuple[str, str]] = Counter()  # (wallet, cash token)
        self._notes_out: Counter[tuple[str, str]] = Counter()  # (wallet, token)
        self._notes_in: Counter[tuple[str, str]] = Counter()  # (wallet, token)
        self._buyers: dict[str, Counter[str]] = {}  # token -> wallet -> open buy reservations
        self.untracked_fills = 0  # fills whose participant/instrument we could not resolve

    # ------------------------------------------------------------ configuration

    def upsert_participant(self, participant: Participant) -> None:
        if not isinstance(participant, Participant):
            raise ConfigError(f"expected a Participant, got {type(participant).__name__}")
        self._participants[participant.id] = participant
        if participant.wallet is not None:
            self.cache.track_wallet(participant.wallet)

    def set_participant_status(self, participant: str, status: str) -> None:
        p = self._participants.get(participant)
        if p is None:
            raise ConfigError(f"no participant record for {participant!r}")
        try:
            new_status = ParticipantStatus(status)
        except ValueError as exc:
            raise ConfigError(f"status must be one of {[s.value for s in ParticipantStatus]}, got {status!r}") from exc
        self._participants[participant] = dataclasses.replace(p, status=new_status)

    def participants(self) -> list[Participant]:
        return [self._participants[k] for k in sorted(self._participants)]

    def participant(self, participant_id: str) -> Participant | None:
        return self._participants.get(participant_id)

    def set_rules(self, rules: InstrumentRules) -> None:
        if not isinstance(rules, InstrumentRules):
            raise ConfigError(f"expected InstrumentRules, got {type(rules).__name__}")
        old = self._rules.get(rules.symbol)
        if old is not None and (old.token, old.cash_token, old.lot_size, old.tick_size) != (
            rules.token, rules.cash_token, rules.lot_size, rules.tick_size,
        ) and self._has_reservations(rules.symbol):
            raise ConfigError(f"instrument {rules.symbol!r}: token/cash/units cannot change while orders are open")
        self._rules[rules.symbol] = rules
        self.cache.track_token(rules.token)
        self.cache.track_cash_token(rules.cash_token)

    def rules(self, symbol: str) -> InstrumentRules | None:
        return self._rules.get(symbol)

    def _has_reservations(self, symbol: str) -> bool:
        return any(r.symbol == symbol for r in self._holds.values()) or any(
            r.symbol == symbol for r in self._obligations.values()
        )

    # ------------------------------------------------------------ checks

    def check_new_order(
        self, *, participant: str, symbol: str, side: Side, qty: int, price: int | None, now_ts: int
    ) -> Decision:
        """Eligibility + instrument rules + funding. On success the returned ``Decision.hold`` already
        reserves the funds; ``bind`` it to the engine's order id, or ``release`` it if the engine refused."""
        self._purge_settled()
        failure = self._check_order(participant, symbol, side, qty, price, now_ts)
        if failure is not None:
            return self._reject(CheckKind.ORDER, participant, symbol, failure, now_ts, side=side, qty=qty, price=price)
        rules = self._rules[symbol]
        wallet = self._wallet(participant)
        res = _Res(
            participant=participant, symbol=symbol, side=side, wallet=wallet, token=rules.token,
            cash_token=rules.cash_token, price=price if (side is Side.BUY and price is not None) else 0,
            remaining=qty, key=(participant, symbol, side, qty, price),
        )
        hold = self._open(res)
        self._unbound.setdefault((participant, symbol, side, qty, price), deque()).append(hold.hold_id)
        return self._accept(CheckKind.ORDER, participant, symbol, now_ts, hold, side=side, qty=qty, price=price)

    def check_amend(
        self, *, participant: str, order: OrderView, new_price: int | None, new_qty: int | None, now_ts: int
    ) -> Decision:
        """``new_qty`` is the new TOTAL quantity (engine ``AmendOrder`` semantics). An amend that does
        not increase the reservation is always accepted (it reduces risk); otherwise the full order
        checks run on the new order and funding on the increase, reserved in the returned hold."""
        self._purge_settled()
        symbol = order.symbol
        filled = order.qty - order.remaining
        price = order.price if new_price is None else new_price
        total = order.qty if new_qty is None else new_qty
        remaining = total - filled
        if order.participant != participant:
            not_own = (ReasonCode.INVALID_ORDER, f"order {order.order_id} is not {participant}'s")
            return self._reject(CheckKind.AMEND, participant, symbol, not_own, now_ts, side=order.side,
                                qty=total, price=price, order_id=order.order_id)
        rules = self._rules.get(symbol)
        if rules is None or remaining <= 0 or price <= 0:
            # Nothing to reserve; the engine gives the precise rejection (AMEND_QTY_TOO_LOW, ...).
            if rules is None:
                return self._reject(CheckKind.AMEND, participant, symbol,
                                    (ReasonCode.UNKNOWN_INSTRUMENT, f"no rules for instrument {symbol!r}"),
                                    now_ts, side=order.side, qty=total, price=price, order_id=order.order_id)
            return ACCEPTED
        if order.side is Side.BUY:
            extra_cash = max(0, rules.cash_amount(price, remaining) - rules.cash_amount(order.price, order.remaining))
        else:
            extra_cash = 0
        extra_notes = max(0, rules.token_amount(remaining - order.remaining))
        if extra_cash == 0 and extra_notes == 0:
            return ACCEPTED
        failure = self._check_order(
            participant, symbol, order.side, total, price, now_ts,
            funding_qty=remaining - order.remaining, funding_cash=extra_cash, existing_buyer=True,
        )
        if failure is not None:
            return self._reject(CheckKind.AMEND, participant, symbol, failure, now_ts, side=order.side,
                                qty=total, price=price, order_id=order.order_id)
        res = _Res(
            participant=participant, symbol=symbol, side=order.side, wallet=self._wallet(participant),
            token=rules.token, cash_token=rules.cash_token, cash=extra_cash, notes=extra_notes,
            order_id=order.order_id,
        )
        hold = self._open(res, order_id=order.order_id, derived=False)
        self._amends.setdefault(order.order_id, set()).add(hold.hold_id)
        return self._accept(CheckKind.AMEND, participant, symbol, now_ts, hold, side=order.side, qty=total,
                            price=price, order_id=order.order_id)

    def check_trade(self, fill: Fill, *, now_ts: int) -> Decision:
        """Before settlement: both sides' eligibility again (not funding, not maturity: the trade
        was made before the cut-off). The refused side is in ``Decision.participant``."""
        for pid in (fill.maker_participant, fill.taker_participant):
            failure = self._eligibility(pid, fill.symbol, now_ts, maturity=False)
            if failure is not None:
                decision = self._reject(CheckKind.TRADE, pid, fill.symbol, failure, now_ts, qty=fill.qty,
                                        price=fill.price, trade_id=fill.trade_id)
                return Decision(ok=False, code=decision.code, message=decision.message, participant=pid)
        if self._record_acceptances:
            self._emit(DecisionRecord(ts=now_ts, kind=CheckKind.TRADE, participant=fill.taker_participant,
                                      symbol=fill.symbol, ok=True, code=None, message="accepted",
                                      qty=fill.qty, price=fill.price, trade_id=fill.trade_id))
        return ACCEPTED

    def eligibility(self, participant: str, symbol: str, now_ts: int) -> Decision:
        """Order-independent eligibility only (no rules, no funding, nothing recorded)."""
        failure = self._eligibility(participant, symbol, now_ts, maturity=True)
        if failure is None:
            return ACCEPTED
        return Decision(ok=False, code=failure[0], message=failure[1], participant=participant)

    # ------------------------------------------------------------ the rules, in precedence order

    def _check_order(
        self,
        participant: str,
        symbol: str,
        side: Side,
        qty: int,
        price: int | None,
        now_ts: int,
        *,
        funding_qty: int | None = None,
        funding_cash: int | None = None,
        existing_buyer: bool = False,
    ) -> _Failure | None:
        rules = self._rules.get(symbol)
        if rules is None:
            return ReasonCode.UNKNOWN_INSTRUMENT, f"no compliance rules for instrument {symbol!r}"
        if not isinstance(side, Side):
            return ReasonCode.INVALID_ORDER, f"side must be BUY or SELL, got {side!r}"
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            return ReasonCode.INVALID_ORDER, f"quantity must be a positive integer number of lots, got {qty!r}"
        if price is not None and (isinstance(price, bool) or not isinstance(price, int) or price <= 0):
            return ReasonCode.INVALID_ORDER, f"price must be a positive integer number of ticks, got {price!r}"
        failure = self._eligibility(participant, symbol, now_ts, maturity=True)
        if failure is not None:
            return failure
        p = self._participants[participant]
        assert p.wallet is not None  # _eligibility checked it
        wallet = p.wallet.lower()  # the ledger's keys are lower case
        cache = self.cache
        if side is Side.SELL and rules.lockup_until_ts is not None and now_ts < rules.lockup_until_ts:
            return ReasonCode.LOCKED_UP, f"{symbol} is locked up until {_iso(rules.lockup_until_ts)}: no sells before"
        if qty < rules.min_order_lots:
            return ReasonCode.ORDER_TOO_SMALL, f"{qty} lots is below the minimum of {rules.min_order_lots} for {symbol}"
        if rules.max_order_lots is not None and qty > rules.max_order_lots:
            return ReasonCode.ORDER_TOO_LARGE, f"{qty} lots is above the maximum of {rules.max_order_lots} for {symbol}"
        dq = qty if funding_qty is None else funding_qty  # lots the check must fund (amend: the increase)
        token, cash_token = rules.token, rules.cash_token
        if side is Side.BUY:
            if price is None:
                return (ReasonCode.PROTECTION_PRICE_REQUIRED,
                        "a market buy needs a protection price: the cash to reserve is computed from it")
            balance = cache.balance(token, wallet) or 0
            incoming = self._notes_in[(wallet, token)]
            add = rules.token_amount(max(dq, 0))
            if rules.holding_cap is not None and balance + incoming + add > rules.holding_cap:
                return (ReasonCode.HOLDING_CAP_EXCEEDED,
                        f"holding would reach {balance + incoming + add} token units (balance {balance} + open buys "
                        f"{incoming} + order {add}), cap is {rules.holding_cap}")
            if rules.max_holders is not None and not existing_buyer and not self._is_prospective_holder(token, wallet):
                count = self._prospective_holder_count(token)
                if count >= rules.max_holders:
                    return (ReasonCode.MAX_HOLDERS_REACHED,
                            f"{symbol} already has {count} holders (incl. pending buyers), the maximum is "
                            f"{rules.max_holders}; a wallet holding nothing cannot buy")
            need = rules.cash_amount(price, qty) if funding_cash is None else funding_cash
            reserved = self._cash_res[(wallet, cash_token)]
            cash = cache.balance(cash_token, wallet) or 0
            if need > cash - reserved:
                return (ReasonCode.INSUFFICIENT_CASH,
                        f"order needs {need} cash units; free balance is {cash - reserved} "
                        f"(balance {cash} - reserved {reserved})")
            allowance = cache.allowance(cash_token, wallet, self.settlement) or 0
            if need > allowance - reserved:
                return (ReasonCode.INSUFFICIENT_ALLOWANCE,
                        f"order needs {need} cash units; free allowance to the settlement contract is "
                        f"{allowance - reserved} (allowance {allowance} - reserved {reserved})")
        else:
            need = rules.token_amount(dq)
            balance = cache.balance(token, wallet) or 0
            frozen = cache.frozen_tokens(token, wallet) or 0
            reserved = self._notes_out[(wallet, token)]
            if need > balance - frozen - reserved:
                return (ReasonCode.INSUFFICIENT_NOTES,
                        f"order needs {need} token units; free balance is {balance - frozen - reserved} "
                        f"(balance {balance} - frozen {frozen} - open sells {reserved})")
            if rules.require_note_allowance:
                allowance = cache.allowance(token, wallet, self.settlement) or 0
                if need > allowance - reserved:
                    return (ReasonCode.INSUFFICIENT_NOTE_ALLOWANCE,
                            f"order needs {need} token units; free note allowance to the settlement contract is "
                            f"{allowance - reserved} (allowance {allowance} - open sells {reserved})")
        return None

    def _eligibility(self, participant: str, symbol: str, now_ts: int, *, maturity: bool) -> _Failure | None:
        rules = self._rules.get(symbol)
        if rules is None:
            return ReasonCode.UNKNOWN_INSTRUMENT, f"no compliance rules for instrument {symbol!r}"
        p = self._participants.get(participant)
        if p is None:
            return ReasonCode.PARTICIPANT_UNKNOWN, f"no participant record for {participant!r}"
        if p.status is not ParticipantStatus.ACTIVE:
            return ReasonCode.PARTICIPANT_SUSPENDED, f"participant {participant} is {p.status.value}"
        if p.wallet is None:
            return ReasonCode.NO_WALLET, f"participant {participant} has no settlement wallet on file"
        if p.kyc_expiry_ts is not None and now_ts >= p.kyc_expiry_ts:
            return ReasonCode.KYC_EXPIRED, f"KYC of {participant} expired at {_iso(p.kyc_expiry_ts)}"
        if p.category not in rules.allowed_categories:
            allowed = ", ".join(sorted(rules.allowed_categories)) or "none"
            return (ReasonCode.CATEGORY_NOT_ALLOWED,
                    f"{p.category.value} investors may not trade {symbol} (allowed: {allowed})")
        if p.jurisdiction in rules.blocked_jurisdictions:
            return ReasonCode.JURISDICTION_BLOCKED, f"jurisdiction {p.jurisdiction} is blocked for {symbol}"
        if rules.allowed_jurisdictions and p.jurisdiction not in rules.allowed_jurisdictions:
            return (ReasonCode.JURISDICTION_NOT_ALLOWED,
                    f"jurisdiction {p.jurisdiction} is not among those allowed for {symbol} "
                    f"({', '.join(sorted(rules.allowed_jurisdictions))})")
        if maturity and rules.trading_end_ts is not None and now_ts >= rules.trading_end_ts:
            return ReasonCode.INSTRUMENT_MATURED, f"trading in {symbol} ended at {_iso(rules.trading_end_ts)}"
        cache = self.cache
        if self._max_lag is not None and (cache.synced_at_ns is None or now_ts - cache.synced_at_ns > self._max_lag):
            age = "never synced" if cache.synced_at_ns is None else f"last synced {_iso(cache.synced_at_ns)}"
            return ReasonCode.CHAIN_STATE_STALE, f"on-chain state cache is stale ({age})"
        wallet = p.wallet
        token = rules.token
        paused = cache.paused(token)
        verified = cache.verified(token, wallet)
        frozen = cache.frozen(token, wallet)
        missing = [
            name for name, value in (
                ("token paused flag", paused),
                ("identity verification", verified),
                ("wallet freeze flag", frozen),
                ("token balance", cache.balance(token, wallet)),
                ("cash balance", cache.balance(rules.cash_token, wallet)),
            ) if value is None
        ]
        if missing:
            return (ReasonCode.CHAIN_STATE_UNKNOWN,
                    f"on-chain state of wallet {wallet} for {symbol} not synced yet ({', '.join(missing)})")
        if paused:
            return ReasonCode.TOKEN_PAUSED, f"token {token} of {symbol} is paused on chain"
        if not verified:
            return (ReasonCode.IDENTITY_NOT_VERIFIED,
                    f"wallet {wallet} is not verified in the identity registry of {symbol}")
        if rules.check_country:
            country = cache.country(token, wallet)
            expected = ALPHA2_TO_NUMERIC[p.jurisdiction]
            if country is not None and country != 0 and country != expected:
                on_chain = NUMERIC_TO_ALPHA2.get(country, str(country))
                return (ReasonCode.COUNTRY_MISMATCH,
                        f"identity registry country {on_chain} differs from the jurisdiction on file {p.jurisdiction}")
        if frozen:
            return ReasonCode.WALLET_FROZEN, f"wallet {wallet} is frozen on the {symbol} token"
        return None

    def _wallet(self, participant: str) -> str:
        wallet = self._participants[participant].wallet
        assert wallet is not None
        return wallet.lower()

    def _is_prospective_holder(self, token: str, wallet: str) -> bool:
        return self.cache.is_holder(token, wallet) or self._buyers.get(token, Counter())[wallet] > 0

    def _prospective_holder_count(self, token: str) -> int:
        buyers = self._buyers.get(token, Counter())
        return self.cache.holder_count(token) + sum(
            1 for w, n in buyers.items() if n > 0 and not self.cache.is_holder(token, w)
        )

    # ------------------------------------------------------------ decisions

    def _accept(
        self, kind: CheckKind, participant: str, symbol: str, now_ts: int, hold: Hold, **details: object
    ) -> Decision:
        if self._record_acceptances:
            self._emit(DecisionRecord(ts=now_ts, kind=kind, participant=participant, symbol=symbol, ok=True,
                                      code=None, message="accepted", **details))  # type: ignore[arg-type]
        return Decision(ok=True, code=None, message="accepted", hold=hold, participant=participant)

    def _reject(
        self, kind: CheckKind, participant: str, symbol: str, failure: _Failure, now_ts: int, **details: object
    ) -> Decision:
        code, message = failure
        record = DecisionRecord(ts=now_ts, kind=kind, participant=participant, symbol=symbol, ok=False,
                                code=code, message=message, **details)  # type: ignore[arg-type]
        self._counts[code.value] += 1
        REJECTIONS.labels(code=code.value).inc()
        self._recent.append(record)
        self._last_rejection[participant] = record
        self._emit(record)
        return Decision(ok=False, code=code, message=message, participant=participant)

    def _emit(self, record: DecisionRecord) -> None:
        if self._on_decision is not None:
            self._on_decision(record)

    def rejection_counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def recent_rejections(self, limit: int = 100) -> list[DecisionRecord]:
        """Newest first."""
        if limit <= 0:
            return []
        return list(reversed(self._recent))[:limit]

    # ------------------------------------------------------------ ledger

    def _contribute(self, res: _Res, sign: int) -> None:
        if res.side is Side.BUY:
            self._cash_res[(res.wallet, res.cash_token)] += sign * res.cash
            self._notes_in[(res.wallet, res.token)] += sign * res.notes
            self._buyers.setdefault(res.token, Counter())[res.wallet] += sign
        else:
            self._notes_out[(res.wallet, res.token)] += sign * res.notes

    def _reprice(self, res: _Res) -> None:
        """Recompute an order hold's amounts from its price and remaining quantity."""
        rules = self._rules[res.symbol]
        self._contribute(res, -1)
        res.notes = rules.token_amount(res.remaining)
        res.cash = rules.cash_amount(res.price, res.remaining) if res.side is Side.BUY else 0
        self._contribute(res, +1)

    def _open(self, res: _Res, order_id: int | None = None, *, derived: bool = True) -> Hold:
        """Register a reservation; ``derived``: an order hold whose amounts follow price/remaining."""
        hold_id = self._next_hold
        self._next_hold += 1
        if derived:
            rules = self._rules[res.symbol]
            res.notes = rules.token_amount(res.remaining)
            res.cash = rules.cash_amount(res.price, res.remaining) if res.side is Side.BUY else 0
        self._holds[hold_id] = res
        self._contribute(res, +1)
        return Hold(hold_id=hold_id, participant=res.participant, symbol=res.symbol, side=res.side, order_id=order_id)

    def _drop(self, hold_id: int) -> None:
        res = self._holds.pop(hold_id, None)
        if res is None:
            return
        self._contribute(res, -1)
        if res.key is not None:
            queue = self._unbound.get(res.key)
            if queue is not None and hold_id in queue:
                queue.remove(hold_id)
                if not queue:
                    del self._unbound[res.key]
        if res.order_id is not None:
            if self._by_order.get(res.order_id) == hold_id:
                del self._by_order[res.order_id]
            amends = self._amends.get(res.order_id)
            if amends is not None:
                amends.discard(hold_id)
                if not amends:
                    del self._amends[res.order_id]

    def bind(self, hold: Hold, order_id: int) -> None:
        """The engine accepted the order (or the amend): its reservation now follows the order's events.

        Idempotent, and a no-op for a hold already closed by the order's own events (e.g. fully
        filled and auto-bound from ``OrderAccepted``). For an amend hold this drops the provisional
        extra: the ``OrderAmended`` event re-derives the order's reservation from its new price/qty."""
        if not 0 < hold.hold_id < self._next_hold:
            raise UnknownHoldError(f"hold {hold.hold_id} was never issued by this gatekeeper")
        res = self._holds.get(hold.hold_id)
        if res is None:
            return
        if hold.order_id is not None:
            if hold.order_id != order_id:
                raise UnknownHoldError(f"amend hold {hold.hold_id} is for order {hold.order_id}, not {order_id}")
            self._drop(hold.hold_id)
            return
        if res.order_id == order_id:
            res.auto_bound = False  # confirmed by the caller
            return
        twin_id = self._by_order.get(order_id)
        if res.order_id is None and twin_id is not None and res.key is not None:
            twin = self._holds[twin_id]
            if twin.auto_bound and twin.key == res.key and twin.remaining == _key_qty(twin):
                # ``OrderAccepted`` auto-bound an identical, untouched hold to this order: swap them
                del self._by_order[order_id]
                twin.order_id = None
                twin.auto_bound = False
                self._unbound.setdefault(res.key, deque()).appendleft(twin_id)
        if res.order_id is not None or order_id in self._by_order:
            raise UnknownHoldError(f"hold {hold.hold_id} / order {order_id}: already bound")
        self._bind(hold.hold_id, res, order_id)

    def _bind(self, hold_id: int, res: _Res, order_id: int) -> None:
        if res.key is not None:
            queue = self._unbound.get(res.key)
            if queue is not None and hold_id in queue:
                queue.remove(hold_id)
                if not queue:
                    del self._unbound[res.key]
        res.order_id = order_id
        self._by_order[order_id] = hold_id

    def release(self, hold: Hold) -> None:
        """Give the reservation back (the engine rejected the order or the amend). Idempotent."""
        self._drop(hold.hold_id)

    def after_new_order(self, hold: Hold, result: EngineResult) -> None:
        """Convenience: bind or release ``hold`` from the engine's result, then apply its events."""
        accepted = result.order_id is not None and any(
            isinstance(e, OrderAccepted) and e.order_id == result.order_id for e in result.events
        )
        if accepted and result.order_id is not None and hold.hold_id in self._holds:
            res = self._holds[hold.hold_id]
            if res.order_id is None and result.order_id not in self._by_order:
                self._bind(hold.hold_id, res, result.order_id)
        elif not accepted:
            self.release(hold)
        self.on_engine_events(result.events)

    def adopt_order(self, order: OrderView) -> None:
        """Rebuild the hold of an order resting in the engine (after a restart), without checks."""
        rules = self._rules.get(order.symbol)
        p = self._participants.get(order.participant)
        if rules is None or p is None or p.wallet is None:
            raise ConfigError(f"order {order.order_id}: unknown instrument or participant without wallet")
        if order.order_id in self._by_order or order.remaining <= 0:
            return
        res = _Res(participant=order.participant, symbol=order.symbol, side=order.side, wallet=p.wallet.lower(),
                   token=rules.token, cash_token=rules.cash_token,
                   price=order.price if order.side is Side.BUY else 0, remaining=order.remaining)
        hold = self._open(res)
        self._bind(hold.hold_id, res, order.order_id)

    def on_engine_events(self, events: Iterable[Event]) -> None:
        """Apply engine events in ``seq`` order; events already seen (by ``seq``) are skipped, so the
        same result may be fed twice (e.g. ``after_new_order`` and an event subscription)."""
        for event in events:
            if event.seq <= self._last_seq:
                continue
            self._last_seq = event.seq
            if isinstance(event, OrderAccepted):
                self._auto_bind(event)
            elif isinstance(event, Fill):
                self._on_fill(event)
            elif isinstance(event, OrderCancelled | OrderExpired):
                self._close_order(event.order_id)
            elif isinstance(event, OrderAmended):
                self._on_amended(event)
            elif isinstance(event, OrderRejected) and event.order_id is not None:
                for hold_id in list(self._amends.get(event.order_id, ())):
                    self._drop(hold_id)

    def _auto_bind(self, event: OrderAccepted) -> None:
        if event.order_id in self._by_order:
            return
        key = (event.participant, event.symbol, event.side, event.qty, event.price)
        queue = self._unbound.get(key)
        if queue:
            hold_id = queue[0]
            self._bind(hold_id, self._holds[hold_id], event.order_id)
            self._holds[hold_id].auto_bound = True

    def _close_order(self, order_id: int) -> None:
        for amend_id in list(self._amends.get(order_id, ())):
            self._drop(amend_id)
        hold_id = self._by_order.get(order_id)
        if hold_id is not None:
            self._drop(hold_id)

    def _on_amended(self, event: OrderAmended) -> None:
        for amend_id in list(self._amends.get(event.order_id, ())):
            self._drop(amend_id)
        hold_id = self._by_order.get(event.order_id)
        if hold_id is None:
            return
        res = self._holds[hold_id]
        if res.side is Side.BUY:
            res.price = event.price
        res.remaining = event.remaining
        if res.remaining <= 0:
            self._drop(hold_id)
        else:
            self._reprice(res)

    def _on_fill(self, fill: Fill) -> None:
        maker_side = fill.aggressor.opposite
        for order_id, pid, side, remaining in (
            (fill.maker_order_id, fill.maker_participant, maker_side, fill.maker_remaining),
            (fill.taker_order_id, fill.taker_participant, fill.aggressor, fill.taker_remaining),
        ):
            hold_id = self._by_order.get(order_id)
            if hold_id is not None:
                res = self._holds[hold_id]
                res.remaining = remaining
                if remaining <= 0:
                    self._close_order(order_id)
                else:
                    self._reprice(res)
            self._add_obligation(fill.trade_id, fill.symbol, pid, side, fill.price, fill.qty)

    def _add_obligation(self, trade_id: int, symbol: str, pid: str, side: Side, price: int, qty: int) -> None:
        rules = self._rules.get(symbol)
        p = self._participants.get(pid)
        if rules is None or p is None or p.wallet is None or (trade_id, side) in self._obligations:
            self.untracked_fills += (trade_id, side) not in self._obligations
            return
        res = _Res(participant=pid, symbol=symbol, side=side, wallet=p.wallet.lower(), token=rules.token,
                   cash_token=rules.cash_token, notes=rules.token_amount(qty),
                   cash=rules.cash_amount(price, qty) if side is Side.BUY else 0)
        self._obligations[(trade_id, side)] = res
        self._contribute(res, +1)

    def adopt_trade(self, *, trade_id: int, symbol: str, price: int, qty: int, buyer: str, seller: str) -> None:
        """Rebuild the pending-settlement obligations of an unsettled trade (after a restart)."""
        self._add_obligation(trade_id, symbol, buyer, Side.BUY, price, qty)
        self._add_obligation(trade_id, symbol, seller, Side.SELL, price, qty)

    def on_settled(self, trade_id: int, *, block: int | None = None) -> None:
        """Settlement confirmed. The obligations stay reserved until the cache shows the transfers:
        with ``block``, until the cache has applied that block; without it, until two more watcher
        polls have completed (a poll already in flight may have read the chain before the transfer)."""
        if block is not None:
            if block <= self.cache.block:
                self._release_trade(trade_id)
            else:
                heapq.heappush(self._settled_heap, (block, trade_id))
        else:
            heapq.heappush(self._settled_syncs, (self.cache.syncs + 2, trade_id))

    def on_settlement_failed(self, trade_id: int) -> None:
        """Nothing moved on chain: the obligations are released at once."""
        self._release_trade(trade_id)

    def on_trade_finished(self, trade_id: int, *, block: int | None = None, failed: bool = False) -> None:
        """Settlement reached a terminal state. ``failed``: released at once; confirmed: see
        ``on_settled`` (pass the confirmation ``block`` when known for the earliest exact release)."""
        if failed:
            self.on_settlement_failed(trade_id)
        else:
            self.on_settled(trade_id, block=block)

    def _release_trade(self, trade_id: int) -> None:
        for side in (Side.BUY, Side.SELL):
            res = self._obligations.pop((trade_id, side), None)
            if res is not None:
                self._contribute(res, -1)

    def _purge_settled(self) -> None:
        heap = self._settled_heap
        while heap and heap[0][0] <= self.cache.block:
            _, trade_id = heapq.heappop(heap)
            self._release_trade(trade_id)
        heap = self._settled_syncs
        while heap and heap[0][0] <= self.cache.syncs:
            _, trade_id = heapq.heappop(heap)
            self._release_trade(trade_id)

    # ------------------------------------------------------------ introspection

    def open_holds(self) -> int:
        return len(self._holds)

    def pending_obligations(self) -> int:
        return len(self._obligations)

    def reserved_cash(self, wallet: str, cash_token: str) -> int:
        self._purge_settled()
        return self._cash_res[(wallet.lower(), cash_token.lower())]

    def reserved_notes(self, wallet: str, token: str) -> int:
        """Notes reserved by open sells and unsettled sell trades."""
        self._purge_settled()
        return self._notes_out[(wallet.lower(), token.lower())]

    def incoming_notes(self, wallet: str, token: str) -> int:
        self._purge_settled()
        return self._notes_in[(wallet.lower(), token.lower())]

    def validate(self) -> None:
        """Recompute every aggregate from the individual reservations; raise on any difference."""
        cash: Counter[tuple[str, str]] = Counter()
        out: Counter[tuple[str, str]] = Counter()
        inc: Counter[tuple[str, str]] = Counter()
        buyers: dict[str, Counter[str]] = {}
        for res in [*self._holds.values(), *self._obligations.values()]:
            if res.cash < 0 or res.notes < 0 or res.remaining < 0:
                raise InvariantError(f"negative reservation {res}")
            if res.side is Side.BUY:
                cash[(res.wallet, res.cash_token)] += res.cash
                inc[(res.wallet, res.token)] += res.notes
                buyers.setdefault(res.token, Counter())[res.wallet] += 1
            else:
                out[(res.wallet, res.token)] += res.notes
        for name, want, have in (("cash", cash, self._cash_res), ("notes out", out, self._notes_out),
                                 ("notes in", inc, self._notes_in)):
            if +want != +have or any(v < 0 for v in have.values()):
                raise InvariantError(f"{name} aggregate {dict(+have)} != recomputed {dict(+want)}")
        for token in set(buyers) | set(self._buyers):
            if +buyers.get(token, Counter()) != +self._buyers.get(token, Counter()):
                raise InvariantError(f"buyer counts of {token} differ")
        for order_id, hold_id in self._by_order.items():
            if self._holds[hold_id].order_id != order_id:
                raise InvariantError(f"order {order_id} -> hold {hold_id} mapping broken")

    def state_of(self, participant: str, now_ts: int | None = None) -> EligibilityView:
        self._purge_settled()
        if now_ts is None:
            now_ts = self._clock()
        p = self._participants.get(participant)
        if p is None:
            return EligibilityView(participant=participant, known=False, status=None, category=None,
                                   jurisdiction=None, kyc_expiry_ts=None, wallet=None,
                                   last_rejection=self._last_rejection.get(participant))
        items: list[InstrumentEligibility] = []
        for symbol in sorted(self._rules):
            rules = self._rules[symbol]
            failure = self._eligibility(participant, symbol, now_ts, maturity=True)
            w = p.wallet
            c = self.cache
            t, ct = rules.token, rules.cash_token
            own = [r for r in self._holds.values() if r.participant == participant and r.symbol == symbol]
            obl = [r for r in self._obligations.values() if r.participant == participant and r.symbol == symbol]
            items.append(InstrumentEligibility(
                symbol=symbol,
                eligible=failure is None,
                reason=None if failure is None else failure[0],
                verified=None if w is None else c.verified(t, w),
                country=None if w is None else c.country(t, w),
                frozen=None if w is None else c.frozen(t, w),
                paused=c.paused(t),
                note_balance=0 if w is None else c.balance(t, w) or 0,
                frozen_notes=0 if w is None else c.frozen_tokens(t, w) or 0,
                note_allowance=0 if w is None else c.allowance(t, w, self.settlement) or 0,
                cash_balance=0 if w is None else c.balance(ct, w) or 0,
                cash_allowance=0 if w is None else c.allowance(ct, w, self.settlement) or 0,
                open_buy_cash=sum(r.cash for r in own if r.side is Side.BUY),
                open_buy_notes=sum(r.notes for r in own if r.side is Side.BUY),
                open_sell_notes=sum(r.notes for r in own if r.side is Side.SELL),
                pending_cash=sum(r.cash for r in obl if r.side is Side.BUY),
                pending_notes_in=sum(r.notes for r in obl if r.side is Side.BUY),
                pending_notes_out=sum(r.notes for r in obl if r.side is Side.SELL),
            ))
        return EligibilityView(participant=participant, known=True, status=p.status, category=p.category,
                               jurisdiction=p.jurisdiction, kyc_expiry_ts=p.kyc_expiry_ts, wallet=p.wallet,
                               instruments=tuple(items), last_rejection=self._last_rejection.get(participant))

    def views(self, now_ts: int | None = None) -> list[EligibilityView]:
        return [self.state_of(pid, now_ts) for pid in sorted(self._participants)]

    def participant_views(self, symbol: str | None = None, now_ts: int | None = None) -> list[ParticipantSummary]:
        """One flat row per participant for one instrument (default: the first symbol in sort order);
        the fields match ``gateway.ports.ParticipantView``."""
        if symbol is None:
            symbol = min(self._rules) if self._rules else None
        rows: list[ParticipantSummary] = []
        for view in self.views(now_ts):
            inst = next((i for i in view.instruments if i.symbol == symbol), None)
            assert view.status is not None and view.category is not None and view.jurisdiction is not None
            rows.append(ParticipantSummary(
                participant=view.participant, name=view.participant, status=view.status.value,
                category=view.category.value, jurisdiction=view.jurisdiction, kyc_expiry_ts=view.kyc_expiry_ts,
                wallet=view.wallet,
                verified=bool(inst and inst.verified), frozen=bool(inst and inst.frozen),
                note_balance=inst.note_balance if inst else 0, cash_balance=inst.cash_balance if inst else 0,
                open_buy_reserved=(inst.open_buy_cash + inst.pending_cash) if inst else 0,
                open_sell_reserved=(inst.open_sell_notes + inst.pending_notes_out) if inst else 0,
                eligible=bool(inst and inst.eligible),
                reason=(inst.reason.value if inst and inst.reason else None) if inst else "UNKNOWN_INSTRUMENT",
            ))
        return rows
