"""The gate's rules: eligibility, instrument rules and funding checks, in precedence order.

Everything here is synchronous and in memory: a check reads the ``ChainStateCache`` (kept current by
the ``ChainWatcher``) and the reservation ledger (``compliance.ledger``), never the chain. A check
that passes reserves the funds in the ledger under the command seq the sequencer will give the
command; see ``compliance.ledger`` for the reservation lifecycle.

Precedence: the first failing condition is reported, in the order of ``compliance.codes.PRECEDENCE``
(request shape, participant record, on-chain state, instrument rules, funding). A new rule goes into
``_eligibility`` (who may trade) or ``_check_order`` (this order), with its code in ``market.codes``.

A buy reserves ``price * tick_size * remaining`` cash (against both balance and allowance to the
settlement contract) and counts ``remaining * lot_size`` notes towards the holding cap; a sell
reserves ``remaining * lot_size`` notes against ``balance - frozen tokens`` (and the note allowance).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from compliance import views
from compliance.cache import ChainStateCache
from compliance.codes import ReasonCode
from compliance.countries import ALPHA2_TO_NUMERIC, NUMERIC_TO_ALPHA2
from compliance.decisions import DecisionLog
from compliance.errors import ConfigError
from compliance.ledger import CashPool, Ledger, LedgerAccess, Reservation
from compliance.model import (
    ACCEPTED,
    CheckKind,
    Decision,
    DecisionRecord,
    EligibilityView,
    InstrumentRules,
    Participant,
    ParticipantStatus,
    normalize_address,
)
from compliance.pretrade import entry_failure, transfer_failure
from engine import (
    Fill,
    OrderView,
    Side,
)
from market.model import ParticipantView

_Failure = tuple[ReasonCode, str]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Gatekeeper(LedgerAccess):
    """The gate: checks (this module), reservations (``self.ledger``; its entry points via ``LedgerAccess``)."""

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
        self._log = DecisionLog(on_decision, record_acceptances=record_acceptances, recent_limit=recent_limit)
        self._clock = clock  # only for operator views; checks use the sequencer's ``now_ts``
        self._max_lag = max_chain_lag_ns
        self._participants: dict[str, Participant] = {}
        self._rules: dict[str, InstrumentRules] = {}
        self.ledger = Ledger(cache, self._rules, self._participants)
        self.pool: CashPool | None = None  # cash held by other shards (a sharded venue: venue.funding)

    def share_cash(self, pool: CashPool | None) -> None:
        """Reserve buyers' cash in ``pool`` too (before accepting) and publish every change to it."""
        self.pool = pool
        self.ledger.on_cash = None if pool is None else (
            lambda wallet, token, total, settled: pool.publish(wallet, token, total, settled=settled))

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
        return self.ledger.has_reservations(symbol)

    # ------------------------------------------------------------ checks

    def check_new_order(
        self, *, participant: str, symbol: str, side: Side, qty: int, price: int | None, now_ts: int,
        seq: int | None = None,
    ) -> Decision:
        """Eligibility + instrument rules + funding. On success the returned ``Decision.hold`` already
        reserves the funds under ``seq``, the command seq the sequencer will give the order (None: a
        fresh private id, for callers without a sequencer); ``on_command(seq, events)`` settles it
        from that command's events (``release`` it if the command never reached the sequencer)."""
        self.ledger.purge_settled()
        failure = self._check_order(participant, symbol, side, qty, price, now_ts)
        if failure is not None:
            return self._log.reject(CheckKind.ORDER, participant, symbol, failure, now_ts, side=side, qty=qty,
                                    price=price)
        rules = self._rules[symbol]
        if self.pool is not None and side is Side.BUY and price is not None:
            failure = self._pooled(participant, rules, rules.cash_amount(price, qty))
            if failure is not None:
                return self._log.reject(CheckKind.ORDER, participant, symbol, failure, now_ts, side=side, qty=qty,
                                        price=price)
        wallet = self._wallet(participant)
        hold = self.ledger.reserve_order(self.ledger.private_id() if seq is None else seq, Reservation(
            participant=participant, symbol=symbol, side=side, wallet=wallet, token=rules.token,
            cash_token=rules.cash_token, price=price if (side is Side.BUY and price is not None) else 0,
            remaining=qty,
        ))
        return self._log.accept(CheckKind.ORDER, participant, symbol, now_ts, hold, side=side, qty=qty, price=price)

    def check_amend(
        self, *, participant: str, order: OrderView, new_price: int | None, new_qty: int | None, now_ts: int,
        seq: int | None = None,
    ) -> Decision:
        """``new_qty`` is the new TOTAL quantity (engine ``AmendOrder`` semantics). An amend that does
        not increase the reservation is always accepted (it reduces risk); otherwise the full order
        checks run on the new order and funding on the increase, reserved in the returned hold."""
        self.ledger.purge_settled()
        symbol = order.symbol
        filled = order.qty - order.remaining
        price = order.price if new_price is None else new_price
        total = order.qty if new_qty is None else new_qty
        remaining = total - filled
        if order.participant != participant:
            not_own = (ReasonCode.INVALID_ORDER, f"order {order.order_id} is not {participant}'s")
            return self._log.reject(CheckKind.AMEND, participant, symbol, not_own, now_ts, side=order.side,
                                qty=total, price=price, order_id=order.order_id)
        rules = self._rules.get(symbol)
        if rules is None or remaining <= 0 or price <= 0:
            # Nothing to reserve; the engine gives the precise rejection (AMEND_QTY_TOO_LOW, ...).
            if rules is None:
                return self._log.reject(CheckKind.AMEND, participant, symbol,
                                    (ReasonCode.UNKNOWN_INSTRUMENT, f"no rules for instrument {symbol!r}"),
                                    now_ts, side=order.side, qty=total, price=price, order_id=order.order_id)
            return ACCEPTED
        if order.side is Side.BUY:
            extra_cash = max(0, rules.cash_amount(price, remaining) - rules.cash_amount(order.price, order.remaining))
        else:
            extra_cash = 0
        extra_notes = max(0, rules.token_amount(remaining - order.remaining))
        if extra_cash == 0 and extra_notes == 0:
            if price == order.price:
                return ACCEPTED  # only a reduction: always allowed, it lowers risk
            # a re-priced order is a new order at the new price: eligibility, maturity and rules, no funding
            failure = self._check_order(participant, symbol, order.side, total, price, now_ts,
                                        funding_qty=0, funding_cash=0, existing_buyer=True)
            if failure is not None:
                return self._log.reject(CheckKind.AMEND, participant, symbol, failure, now_ts, side=order.side,
                                        qty=total, price=price, order_id=order.order_id)
            return ACCEPTED
        failure = self._check_order(
            participant, symbol, order.side, total, price, now_ts,
            funding_qty=remaining - order.remaining, funding_cash=extra_cash, existing_buyer=True,
        )
        if failure is None and self.pool is not None and extra_cash > 0:
            failure = self._pooled(participant, rules, extra_cash)
        if failure is not None:
            return self._log.reject(CheckKind.AMEND, participant, symbol, failure, now_ts, side=order.side,
                                qty=total, price=price, order_id=order.order_id)
        hold = self.ledger.reserve_amend(self.ledger.private_id() if seq is None else seq, Reservation(
            participant=participant, symbol=symbol, side=order.side, wallet=self._wallet(participant),
            token=rules.token, cash_token=rules.cash_token, cash=extra_cash, notes=extra_notes,
            order_id=order.order_id,
        ))
        return self._log.accept(CheckKind.AMEND, participant, symbol, now_ts, hold, side=order.side, qty=total,
                            price=price, order_id=order.order_id)

    def check_trade(self, fill: Fill, *, now_ts: int) -> Decision:
        """Before settlement: both sides' eligibility again, maturity included (not funding). The
        refused side is in ``Decision.participant``."""
        for pid in (fill.maker_participant, fill.taker_participant):
            failure = self._eligibility(pid, fill.symbol, now_ts, maturity=True)
            if failure is not None:
                decision = self._log.reject(CheckKind.TRADE, pid, fill.symbol, failure, now_ts, qty=fill.qty,
                                        price=fill.price, trade_id=fill.trade_id)
                return Decision(ok=False, code=decision.code, message=decision.message, participant=pid)
        refused = self._token_refusal(fill)  # the token's own canTransfer (compliance.pretrade)
        if refused is not None:
            decision = self._log.reject(CheckKind.TRADE, refused[0], fill.symbol, refused[1], now_ts, qty=fill.qty,
                                        price=fill.price, trade_id=fill.trade_id)
            return Decision(ok=False, code=decision.code, message=decision.message, participant=refused[0])
        if self._log.record_acceptances:
            self._log.emit(DecisionRecord(ts=now_ts, kind=CheckKind.TRADE, participant=fill.taker_participant,
                                      symbol=fill.symbol, ok=True, code=None, message="accepted",
                                      qty=fill.qty, price=fill.price, trade_id=fill.trade_id))
        return ACCEPTED

    def _token_refusal(self, fill: Fill) -> tuple[str, _Failure] | None:
        rules = self._rules[fill.symbol]
        maker_buys = fill.aggressor is Side.SELL
        buyer, seller = ((fill.maker_participant, fill.taker_participant) if maker_buys
                         else (fill.taker_participant, fill.maker_participant))
        bw, sw = self._wallet(buyer), self._wallet(seller)
        found = transfer_failure(self.cache, rules.token, sw, bw, rules.token_amount(fill.qty))
        if found is None:
            return None
        return (seller if found[0] == sw else buyer), (found[1], found[2])

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
        failure = self._eligibility(participant, symbol, now_ts, maturity=True) or entry_failure(
            self.cache, rules.token, self._participants[participant].wallet, side, rules.token_amount(qty))
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
            incoming = self.ledger.notes_in[(wallet, token)]
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
            reserved = self.ledger.cash_reserved[(wallet, cash_token)]
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
            reserved = self.ledger.notes_out[(wallet, token)]
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

    def _pooled(self, participant: str, rules: InstrumentRules, need: int) -> _Failure | None:
        """A sharded venue: reserve this shard's new cash total in the shared pool, which refuses when
        every shard's holds together would exceed the wallet's balance (or allowance)."""
        assert self.pool is not None
        wallet, token = self._wallet(participant), rules.cash_token
        limit = min(self.cache.balance(token, wallet) or 0, self.cache.allowance(token, wallet, self.settlement) or 0)
        mine = self.ledger.cash_reserved[(wallet, token)]
        try:
            others = self.pool.reserve(wallet, token, mine + need, limit)
        except Exception as exc:
            return ReasonCode.FUNDING_UNAVAILABLE, f"the shared cash ledger did not answer ({exc})"
        if others is None:
            return None
        return (ReasonCode.INSUFFICIENT_CASH,
                f"order needs {need} cash units; free balance is {limit - mine - others} (balance/allowance "
                f"{limit} - reserved here {mine} - reserved on other shards {others})")

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
        return self.cache.is_holder(token, wallet) or self.ledger.buyers.get(token, Counter())[wallet] > 0

    def _prospective_holder_count(self, token: str) -> int:
        buyers = self.ledger.buyers.get(token, Counter())
        return self.cache.holder_count(token) + sum(
            1 for w, n in buyers.items() if n > 0 and not self.cache.is_holder(token, w)
        )

    # ------------------------------------------------------------ decisions (compliance/decisions.py)

    def rejection_counts(self) -> dict[str, int]:
        return self._log.counts()

    def recent_rejections(self, limit: int = 100) -> list[DecisionRecord]:
        """Newest first."""
        return self._log.recent(limit)

    # ------------------------------------------------------------ for the operator views

    def eligibility_failure(self, participant: str, symbol: str, now_ts: int) -> tuple[ReasonCode, str] | None:
        """The first failing order-independent condition (maturity included), or None."""
        return self._eligibility(participant, symbol, now_ts, maturity=True)

    def last_rejection(self, participant: str) -> DecisionRecord | None:
        return self._log.last_rejection(participant)

    def symbols(self) -> list[str]:
        return sorted(self._rules)

    def now(self) -> int:
        return self._clock()

    # ------------------------------------------------------------ operator views (compliance/views.py)

    def state_of(self, participant: str, now_ts: int | None = None) -> EligibilityView:
        return views.state_of(self, participant, now_ts)

    def views(self, now_ts: int | None = None) -> list[EligibilityView]:
        return [views.state_of(self, p.id, now_ts) for p in self.participants()]

    def participant_views(self, symbol: str | None = None, now_ts: int | None = None) -> list[ParticipantView]:
        return views.participant_rows(self, symbol, now_ts)
