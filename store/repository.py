"""The store's repository API: reference data, settlements, eligibility decisions, the audit log,
and reads of the orders/trades projection (written by ``StoreWriter``)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import Command, Result
from store import audit
from store.apply import PROJECTION, project_items
from store.db import DEFAULT_URL, create_db_engine, translate_errors
from store.errors import AuditChainError, DuplicateError, InvalidRecordError, NotFoundError
from store.migrate import upgrade
from store.models import (
    ApiKeyRow,
    AuditAnchorRow,
    AuditRow,
    EligibilityDecisionRow,
    InstrumentRow,
    ListingRulesRow,
    OrderRow,
    ParticipantRow,
    ProjectionStateRow,
    SettlementRow,
    TradePremiumRow,
    TradeRow,
    WalletRow,
)
from store.records import (
    ApiKeyRecord,
    AuditAnchor,
    AuditEntry,
    AuditVerification,
    EligibilityDecision,
    Instrument,
    InstrumentState,
    KeyRole,
    OrderStatus,
    Outcome,
    Participant,
    ParticipantStatus,
    SettlementStatus,
    SettlementUpdate,
    StoredOrder,
    StoredTrade,
    TradePremium,
    Wallet,
)

SETTLEMENT_FINAL = "settlement_final"  # a projection_state row: chain block of the last recorded decision

T = TypeVar("T")
E = TypeVar("E")

_AUDIT_RETRIES = 5


def _enum(cls: type[E], value: Any, what: str) -> E:
    try:
        return cls(value)  # type: ignore[call-arg]
    except ValueError:
        allowed = ", ".join(str(m) for m in cls)  # type: ignore[attr-defined]
        raise InvalidRecordError(f"{what}: {value!r} is not one of {allowed}") from None


def _address(value: str) -> str:
    v = value.lower()
    if len(v) != 42 or not v.startswith("0x") or any(c not in "0123456789abcdef" for c in v[2:]):
        raise InvalidRecordError(f"not a 0x-prefixed 20-byte hex address: {value!r}")
    return v


class Store:
    """Synchronous repository over one SQLAlchemy engine (call from threads, not the event loop,
    when latency matters; ``StoreWriter`` does this for the event stream)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._audit_lock = threading.Lock()

    @classmethod
    def open(cls, url: str | sa.URL = DEFAULT_URL, *, migrate: bool = True) -> Store:
        """Connect to ``url`` (SQLite file by default, PostgreSQL by URL), upgrading the schema first."""
        engine = create_db_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _run(self, what: str, fn: Callable[[Session], T]) -> T:
        with translate_errors(what), self._sessions.begin() as session:
            return fn(session)

    # ------------------------------------------------------------ participants & wallets

    def add_participant(self, p: Participant) -> Participant:
        status = _enum(ParticipantStatus, p.status, "participant status")
        ts = p.created_ts or time.time_ns()
        row = ParticipantRow(
            id=p.id,
            name=p.name,
            status=status.value,
            investor_category=p.investor_category,
            jurisdiction=p.jurisdiction.upper(),
            kyc_expiry=p.kyc_expiry,
            created_ts=ts,
            signed_orders=p.signed_orders,
        )
        self._run(f"add participant {p.id}", lambda s: s.add(row))
        return _participant(row)

    def onboard_participant(self, p: Participant, wallet: str | None = None) -> Participant:
        """The participant and its wallet in one transaction: a refused wallet leaves nothing behind."""
        status = _enum(ParticipantStatus, p.status, "participant status")
        addr = None if wallet is None else _address(wallet)
        row = ParticipantRow(id=p.id, name=p.name, status=status.value, investor_category=p.investor_category,
                             jurisdiction=p.jurisdiction.upper(), kyc_expiry=p.kyc_expiry,
                             created_ts=p.created_ts or time.time_ns())

        def add(s: Session) -> None:
            if s.get(ParticipantRow, p.id) is not None:
                raise DuplicateError(f"participant {p.id!r} exists")
            if addr is not None:
                owner = s.get(WalletRow, addr)
                if owner is not None:
                    raise DuplicateError(f"wallet {addr} already belongs to participant {owner.participant_id!r}")
            s.add(row)
            s.flush()
            if addr is not None:
                s.add(WalletRow(address=addr, participant_id=p.id, created_ts=row.created_ts))

        self._run(f"onboard participant {p.id}", add)
        return _participant(row)

    def offboard_participant(self, participant_id: str, *, ts: int | None = None) -> list[str]:
        """Status ``closed`` and every active API key of the participant revoked, in one transaction;
        returns the revoked key ids."""
        stamp = ts or time.time_ns()

        def close(s: Session) -> list[str]:
            row = s.get(ParticipantRow, participant_id)
            if row is None:
                raise NotFoundError(f"unknown participant {participant_id!r}")
            row.status = ParticipantStatus.CLOSED.value
            keys = s.scalars(sa.select(ApiKeyRow).where(ApiKeyRow.participant == participant_id,
                                                        ApiKeyRow.revoked_ts.is_(None))).all()
            for key in keys:
                key.revoked_ts = stamp
            return sorted(k.key_id for k in keys)

        return self._run(f"offboard participant {participant_id}", close)

    def get_participant(self, participant_id: str) -> Participant | None:
        row = self._run("get participant", lambda s: s.get(ParticipantRow, participant_id))
        return None if row is None else _participant(row)

    def list_participants(self) -> list[Participant]:
        rows = self._run(
            "list participants", lambda s: s.scalars(sa.select(ParticipantRow).order_by(ParticipantRow.id)).all()
        )
        return [_participant(r) for r in rows]

    def update_participant(
        self,
        participant_id: str,
        *,
        status: ParticipantStatus | str | None = None,
        investor_category: str | None = None,
        jurisdiction: str | None = None,
        kyc_expiry: dt.date | None = None,
        signed_orders: bool | None = None,
    ) -> Participant:
        new_status = None if status is None else _enum(ParticipantStatus, status, "participant status")

        def update(s: Session) -> ParticipantRow:
            row = s.get(ParticipantRow, participant_id)
            if row is None:
                raise NotFoundError(f"unknown participant {participant_id!r}")
            if new_status is not None:
                row.status = new_status.value
            if investor_category is not None:
                row.investor_category = investor_category
            if jurisdiction is not None:
                row.jurisdiction = jurisdiction.upper()
            if kyc_expiry is not None:
                row.kyc_expiry = kyc_expiry
            if signed_orders is not None:
                row.signed_orders = signed_orders
            return row

        return _participant(self._run(f"update participant {participant_id}", update))

    def add_wallet(self, participant_id: str, address: str, *, created_ts: int | None = None) -> Wallet:
        addr = _address(address)

        def add(s: Session) -> WalletRow:
            if s.get(ParticipantRow, participant_id) is None:
                raise NotFoundError(f"unknown participant {participant_id!r}")
            row = WalletRow(address=addr, participant_id=participant_id, created_ts=created_ts or time.time_ns())
            s.add(row)
            return row

        return _wallet(self._run(f"add wallet {addr}", add))

    def list_wallets(self, participant_id: str | None = None) -> list[Wallet]:
        q = sa.select(WalletRow).order_by(WalletRow.participant_id, WalletRow.address)
        if participant_id is not None:
            q = q.where(WalletRow.participant_id == participant_id)
        return [_wallet(r) for r in self._run("list wallets", lambda s: s.scalars(q).all())]

    def wallet_owner(self, address: str) -> str | None:
        row = self._run("wallet owner", lambda s: s.get(WalletRow, _address(address)))
        return None if row is None else row.participant_id

    # ------------------------------------------------------------ API keys

    def add_api_key(self, key: ApiKeyRecord) -> ApiKeyRecord:
        role = _enum(KeyRole, key.role, "key role")
        if len(key.public_key) != 32:
            raise InvalidRecordError(f"Ed25519 public key must be 32 bytes, got {len(key.public_key)}")
        row = ApiKeyRow(
            key_id=key.key_id,
            participant=key.participant,
            role=role.value,
            public_key=bytes(key.public_key),
            created_ts=key.created_ts or time.time_ns(),
            revoked_ts=key.revoked_ts,
        )
        self._run(f"add api key {key.key_id}", lambda s: s.add(row))
        return _api_key(row)

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._run("get api key", lambda s: s.get(ApiKeyRow, key_id))
        return None if row is None else _api_key(row)

    def list_api_keys(self, participant: str | None = None, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        q = sa.select(ApiKeyRow).order_by(ApiKeyRow.key_id)
        if participant is not None:
            q = q.where(ApiKeyRow.participant == participant)
        if not include_revoked:
            q = q.where(ApiKeyRow.revoked_ts.is_(None))
        return [_api_key(r) for r in self._run("list api keys", lambda s: s.scalars(q).all())]

    def revoke_api_key(self, key_id: str, *, ts: int | None = None) -> ApiKeyRecord:
        def revoke(s: Session) -> ApiKeyRow:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"unknown api key {key_id!r}")
            if row.revoked_ts is None:
                row.revoked_ts = ts or time.time_ns()
            return row

        return _api_key(self._run(f"revoke api key {key_id}", revoke))

    # ------------------------------------------------------------ instruments

    def add_instrument(self, inst: Instrument, rules: dict[str, Any] | None = None) -> Instrument:
        """The instrument and, when given, its listing rules in one transaction."""
        status = _enum(InstrumentState, inst.status, "instrument status")
        row = InstrumentRow(
            symbol=inst.symbol,
            name=inst.name,
            token_address=_address(inst.token_address),
            cash_token_address=_address(inst.cash_token_address),
            token_decimals=inst.token_decimals,
            cash_decimals=inst.cash_decimals,
            tick_size=inst.tick_size,
            lot_size=inst.lot_size,
            min_qty=inst.min_qty,
            max_qty=inst.max_qty,
            band_low=inst.band_low,
            band_high=inst.band_high,
            status=status.value,
            maturity_ts=inst.maturity_ts,
        )
        rules_row = None if rules is None else ListingRulesRow(
            symbol=inst.symbol, rules=_canonical(rules), updated_ts=time.time_ns())

        def add(s: Session) -> None:
            s.add(row)
            if rules_row is not None:
                s.flush()
                s.add(rules_row)

        self._run(f"add instrument {inst.symbol}", add)
        return _instrument(row)

    def set_listing_rules(self, symbol: str, rules: dict[str, Any]) -> None:
        """Replace the listing rules of an instrument (a JSON object of rule name -> value)."""
        text = _canonical(rules)

        def put(s: Session) -> None:
            if s.get(InstrumentRow, symbol) is None:
                raise NotFoundError(f"unknown instrument {symbol!r}")
            row = s.get(ListingRulesRow, symbol)
            if row is None:
                s.add(ListingRulesRow(symbol=symbol, rules=text, updated_ts=time.time_ns()))
            else:
                row.rules, row.updated_ts = text, time.time_ns()

        self._run(f"set listing rules of {symbol}", put)

    def list_listing_rules(self) -> dict[str, str]:
        """Every instrument's stored listing rules as their JSON text (instruments without rules are
        absent); the venue parses each one on its own, so one bad record never hides the others."""
        rows = self._run("list listing rules", lambda s: s.scalars(sa.select(ListingRulesRow)).all())
        return {r.symbol: r.rules for r in rows}

    def get_instrument(self, symbol: str) -> Instrument | None:
        row = self._run("get instrument", lambda s: s.get(InstrumentRow, symbol))
        return None if row is None else _instrument(row)

    def list_instruments(self) -> list[Instrument]:
        rows = self._run(
            "list instruments", lambda s: s.scalars(sa.select(InstrumentRow).order_by(InstrumentRow.symbol)).all()
        )
        return [_instrument(r) for r in rows]

    def set_instrument_status(self, symbol: str, status: InstrumentState | str) -> Instrument:
        new = _enum(InstrumentState, status, "instrument status")

        def update(s: Session) -> InstrumentRow:
            row = s.get(InstrumentRow, symbol)
            if row is None:
                raise NotFoundError(f"unknown instrument {symbol!r}")
            row.status = new.value
            return row

        return _instrument(self._run(f"set status of {symbol}", update))

    # ------------------------------------------------------------ orders & trades (projection reads)

    def get_order(self, order_id: int) -> StoredOrder | None:
        row = self._run("get order", lambda s: s.get(OrderRow, order_id))
        return None if row is None else _order(row)

    def find_order(self, participant: str, client_order_id: str) -> StoredOrder | None:
        """The participant's latest order with this client order id (a retry after a failover)."""
        q = (sa.select(OrderRow).where(OrderRow.participant == participant,
                                       OrderRow.client_order_id == client_order_id)
             .order_by(OrderRow.order_id.desc()).limit(1))
        row = self._run("find order", lambda s: s.scalars(q).first())
        return None if row is None else _order(row)

    def list_orders(
        self,
        *,
        participant: str | None = None,
        symbol: str | None = None,
        status: Iterable[OrderStatus | str] | None = None,
        limit: int | None = None,
        active_since_ts: int | None = None,
        active_until_ts: int | None = None,
    ) -> list[StoredOrder]:
        """``active_since_ts`` / ``active_until_ts``: only orders accepted before the window's end and
        still open or last updated at or after its start (every order that was live in the window)."""
        q = sa.select(OrderRow).order_by(OrderRow.order_id)
        if active_since_ts is not None:
            still_open = OrderRow.status.in_([OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value])
            q = q.where(sa.or_(OrderRow.updated_ts >= active_since_ts, still_open))
        if active_until_ts is not None:
            q = q.where(OrderRow.accepted_ts < active_until_ts)
        if participant is not None:
            q = q.where(OrderRow.participant == participant)
        if symbol is not None:
            q = q.where(OrderRow.symbol == symbol)
        if status is not None:
            q = q.where(OrderRow.status.in_([_enum(OrderStatus, st, "order status").value for st in status]))
        if limit is not None:
            q = q.limit(limit)
        return [_order(r) for r in self._run("list orders", lambda s: s.scalars(q).all())]

    def get_trade(self, trade_id: int) -> StoredTrade | None:
        def read(s: Session) -> list[StoredTrade]:
            row = s.get(TradeRow, trade_id)
            return [] if row is None else _with_premiums(s, [row])

        found = self._run("get trade", read)
        return found[0] if found else None

    def list_trades(
        self,
        *,
        symbol: str | None = None,
        participant: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        since_ts: int | None = None,
        until_ts: int | None = None,
    ) -> list[StoredTrade]:
        q = sa.select(TradeRow).order_by(TradeRow.trade_id.desc() if newest_first else TradeRow.trade_id)
        if since_ts is not None:
            q = q.where(TradeRow.ts >= since_ts)
        if until_ts is not None:
            q = q.where(TradeRow.ts < until_ts)
        if symbol is not None:
            q = q.where(TradeRow.symbol == symbol)
        if participant is not None:
            q = q.where(sa.or_(TradeRow.maker_participant == participant, TradeRow.taker_participant == participant))
        if limit is not None:
            q = q.limit(limit)
        return self._run("list trades", lambda s: _with_premiums(s, s.scalars(q).all()))

    def trade_page(
        self,
        *,
        symbol: str | None = None,
        participant: str | None = None,
        since_ts: int | None = None,
        until_ts: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> tuple[int, list[StoredTrade]]:
        """Up to ``limit`` trades newest first (``trade_id`` descending) with ``since_ts <= ts <
        until_ts`` and ``trade_id < before_id``, of one instrument and/or one participant (either
        side). Also returns the highest trade id the store held when the read began (0: none); the
        page holds nothing above it, so a caller can add the not yet projected trades above it
        without duplicates or gaps."""

        def read(s: Session) -> tuple[int, list[StoredTrade]]:
            horizon = s.scalar(sa.select(sa.func.max(TradeRow.trade_id))) or 0
            q = sa.select(TradeRow).where(TradeRow.trade_id <= horizon)
            if before_id is not None:
                q = q.where(TradeRow.trade_id < before_id)
            if symbol is not None:
                q = q.where(TradeRow.symbol == symbol)
            if since_ts is not None:
                q = q.where(TradeRow.ts >= since_ts)
            if until_ts is not None:
                q = q.where(TradeRow.ts < until_ts)
            q = q.order_by(TradeRow.trade_id.desc()).limit(limit)
            if participant is None:
                return horizon, _with_premiums(s, s.scalars(q).all())
            # one index range scan per side ((maker|taker)_participant, trade_id) instead of an OR
            sides = [
                *s.scalars(q.where(TradeRow.maker_participant == participant)).all(),
                *s.scalars(q.where(TradeRow.taker_participant == participant)).all(),
            ]
            unique = {row.trade_id: row for row in sides}
            return horizon, _with_premiums(s, [unique[i] for i in sorted(unique, reverse=True)[:limit]])

        return self._run("trade page", read)

    # ------------------------------------------------------------ premium/discount to NAV

    def record_trade_premiums(self, premiums: Sequence[TradePremium]) -> None:
        """Idempotent: a premium already recorded for a trade is kept (a retry writes nothing twice)."""
        if not premiums:
            return

        def add(s: Session) -> None:
            ids = [p.trade_id for p in premiums]
            known = set(s.scalars(sa.select(TradePremiumRow.trade_id).where(TradePremiumRow.trade_id.in_(ids))))
            for p in premiums:
                if p.trade_id not in known:
                    known.add(p.trade_id)
                    s.add(TradePremiumRow(trade_id=p.trade_id, nav=p.nav, premium_bps=p.premium_bps))

        self._run("record trade premiums", add)

    # ------------------------------------------------------------ audit anchors

    def add_audit_anchor(self, anchor: AuditAnchor) -> AuditAnchor:
        def add(s: Session) -> AuditAnchorRow:
            row = AuditAnchorRow(audit_id=anchor.audit_id, head_hash=anchor.head_hash, tx_hash=anchor.tx_hash,
                                 block=anchor.block, chain_id=anchor.chain_id, ts=anchor.ts)
            s.add(row)
            s.flush()
            return row

        return _anchor(self._run("add audit anchor", add))

    def list_audit_anchors(self, *, limit: int = 100) -> list[AuditAnchor]:
        """Newest first."""
        q = sa.select(AuditAnchorRow).order_by(AuditAnchorRow.id.desc()).limit(limit)
        return [_anchor(r) for r in self._run("list audit anchors", lambda s: s.scalars(q).all())]

    def get_audit_entry(self, audit_id: int) -> AuditEntry | None:
        row = self._run("get audit entry", lambda s: s.get(AuditRow, audit_id))
        return None if row is None else _audit_entry(row)

    def audit_head(self) -> AuditEntry | None:
        found = self.list_audit(limit=1)
        return found[0] if found else None

    def project(self, items: Sequence[tuple[int, Command, Result]]) -> int:
        """Apply sequencer output to orders/trades in one transaction (see ``store.projection``)."""
        return self._run("project orders/trades", lambda s: project_items(s, items))

    def clear_projection(self) -> None:
        """Delete the orders/trades projection (``rebuild_from_journal`` refills it)."""

        def clear(s: Session) -> None:
            s.execute(sa.delete(TradeRow))
            s.execute(sa.delete(OrderRow))
            s.execute(sa.delete(ProjectionStateRow).where(ProjectionStateRow.name == PROJECTION))

        self._run("clear projection", clear)

    def last_projected_seq(self) -> int:
        """Journal command seq the orders/trades projection has consumed up to (0: nothing)."""
        row = self._run("projection state", lambda s: s.get(ProjectionStateRow, PROJECTION))
        return 0 if row is None else row.last_seq

    # ------------------------------------------------------------ settlements

    def record_settlement(self, update: SettlementUpdate) -> None:
        """Upsert the latest settlement state of a trade and mirror it onto the trade row."""
        self.record_settlements([update])

    def record_settlements(self, updates: Sequence[SettlementUpdate], *, final_through: int | None = None) -> None:
        """Upsert settlement states in order, in one transaction, and (optionally) the block through
        which every chain decision has been recorded (``settlement_final_through``)."""
        checked = [(u, _enum(SettlementStatus, u.status, "settlement status")) for u in updates]

        def upsert(s: Session) -> None:
            for update, status in checked:
                _upsert_settlement(s, update, status)
            if final_through is not None:
                row = s.get(ProjectionStateRow, SETTLEMENT_FINAL)
                if row is None:
                    s.add(ProjectionStateRow(name=SETTLEMENT_FINAL, last_seq=final_through))
                else:
                    row.last_seq = max(row.last_seq, final_through)

        first = checked[0][0].trade_id if checked else None
        self._run(f"record {len(checked)} settlement states (first trade {first})", upsert)

    def settlement_final_through(self) -> int | None:
        """The chain block through which every settlement decision is in this store (None: none yet);
        recovery reads chain events from the block after it."""
        row = self._run("settlement position", lambda s: s.get(ProjectionStateRow, SETTLEMENT_FINAL))
        return None if row is None else row.last_seq

    def get_settlement(self, trade_id: int) -> SettlementUpdate | None:
        row = self._run("get settlement", lambda s: s.get(SettlementRow, trade_id))
        return None if row is None else _settlement(row)

    def settlements_of(self, trade_ids: Sequence[int]) -> dict[int, SettlementUpdate]:
        """The latest settlement state of each of ``trade_ids`` that has one."""
        ids = list(trade_ids)

        def read(s: Session) -> dict[int, SettlementUpdate]:
            out: dict[int, SettlementUpdate] = {}
            for start in range(0, len(ids), 500):
                q = sa.select(SettlementRow).where(SettlementRow.trade_id.in_(ids[start:start + 500]))
                out.update({r.trade_id: _settlement(r) for r in s.scalars(q)})
            return out

        return self._run("settlements of trades", read)

    def list_settlements(
        self, *, status: SettlementStatus | str | None = None, limit: int | None = None
    ) -> list[SettlementUpdate]:
        q = sa.select(SettlementRow).order_by(SettlementRow.trade_id)
        if status is not None:
            q = q.where(SettlementRow.status == _enum(SettlementStatus, status, "settlement status").value)
        if limit is not None:
            q = q.limit(limit)
        return [_settlement(r) for r in self._run("list settlements", lambda s: s.scalars(q).all())]

    # ------------------------------------------------------------ eligibility decisions

    def record_eligibility_decisions(self, decisions: Sequence[EligibilityDecision]) -> None:
        rows = [
            EligibilityDecisionRow(
                ts=d.ts,
                participant=d.participant,
                symbol=d.symbol,
                outcome=_enum(Outcome, d.outcome, "outcome").value,
                code=d.code,
                message=d.message,
            )
            for d in decisions
        ]
        self._run("record eligibility decisions", lambda s: s.add_all(rows))

    def record_eligibility_decision(self, decision: EligibilityDecision) -> None:
        self.record_eligibility_decisions([decision])

    def list_eligibility_decisions(
        self, *, participant: str | None = None, outcome: Outcome | str | None = None, limit: int = 100
    ) -> list[EligibilityDecision]:
        """Newest first."""
        q = sa.select(EligibilityDecisionRow).order_by(EligibilityDecisionRow.id.desc()).limit(limit)
        if participant is not None:
            q = q.where(EligibilityDecisionRow.participant == participant)
        if outcome is not None:
            q = q.where(EligibilityDecisionRow.outcome == _enum(Outcome, outcome, "outcome").value)
        rows = self._run("list eligibility decisions", lambda s: s.scalars(q).all())
        return [
            EligibilityDecision(
                id=r.id,
                ts=r.ts,
                participant=r.participant,
                symbol=r.symbol,
                outcome=Outcome(r.outcome),
                code=r.code,
                message=r.message,
            )
            for r in rows
        ]

    def rejection_counts(self) -> dict[str, int]:
        q = (
            sa.select(EligibilityDecisionRow.code, sa.func.count())
            .where(EligibilityDecisionRow.outcome == Outcome.REJECTED.value)
            .group_by(EligibilityDecisionRow.code)
        )
        return {code: int(n) for code, n in self._run("rejection counts", lambda s: s.execute(q).all())}

    # ------------------------------------------------------------ audit log (append-only)

    def append_audit(self, actor: str, action: str, details: dict[str, Any], *, ts: int | None = None) -> AuditEntry:
        """Append one hash-chained entry. Safe across threads and processes: ``prev_hash`` is unique,
        so a writer that lost a race gets an integrity error and retries on the new head."""
        text = audit.canonical_details(details)
        stamp = ts if ts is not None else time.time_ns()
        with self._audit_lock:
            for _attempt in range(_AUDIT_RETRIES):
                try:
                    with translate_errors("append audit"), self._sessions.begin() as s:
                        self._lock_audit_head(s)
                        head = s.execute(
                            sa.select(AuditRow.id, AuditRow.hash).order_by(AuditRow.id.desc()).limit(1)
                        ).first()
                        prev_id, prev_hash = (0, audit.GENESIS) if head is None else (head[0], head[1])
                        new_id = prev_id + 1
                        digest = audit.entry_hash(
                            prev_hash, id=new_id, ts=stamp, actor=actor, action=action, details=text
                        )
                        row = AuditRow(
                            id=new_id,
                            ts=stamp,
                            actor=actor,
                            action=action,
                            details=text,
                            prev_hash=prev_hash,
                            hash=digest,
                        )
                        s.add(row)
                    return _audit_entry(row)
                except DuplicateError:
                    continue  # another writer appended first: retry on the new head
        raise AuditChainError(f"audit append kept colliding with other writers ({_AUDIT_RETRIES} attempts)")

    def _lock_audit_head(self, s: Session) -> None:
        """Serialise appenders across processes before reading the head (the unique ``prev_hash``
        stays as the last line of defence)."""
        if self.dialect == "postgresql":
            s.execute(sa.text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
        elif self.dialect == "sqlite":
            # A write statement takes SQLite's write lock (waiting up to the busy timeout); it
            # matches no row, so the append-only trigger does not fire.
            s.execute(sa.text("UPDATE audit_log SET id = id WHERE 0 = 1"))

    def list_audit(self, *, limit: int = 200, newest_first: bool = True) -> list[AuditEntry]:
        q = sa.select(AuditRow).order_by(AuditRow.id.desc() if newest_first else AuditRow.id).limit(limit)
        return [_audit_entry(r) for r in self._run("list audit", lambda s: s.scalars(q).all())]

    def verify_audit_chain(self) -> AuditVerification:
        """Recompute every hash and link from the genesis; report the first entry that does not fit."""
        checked = 0
        prev_hash = audit.GENESIS
        with translate_errors("verify audit chain"), self._sessions() as s:
            rows = s.execute(sa.select(AuditRow).order_by(AuditRow.id).execution_options(yield_per=1000)).scalars()
            for row in rows:
                expected_id = checked + 1
                if row.id != expected_id:
                    return AuditVerification(
                        ok=False, checked=checked, first_bad_id=row.id, reason=f"entry {expected_id} is missing"
                    )
                if row.prev_hash != prev_hash:
                    return AuditVerification(
                        ok=False,
                        checked=checked,
                        first_bad_id=row.id,
                        reason="prev_hash does not link to the previous entry",
                    )
                digest = audit.entry_hash(
                    prev_hash, id=row.id, ts=row.ts, actor=row.actor, action=row.action, details=row.details
                )
                if digest != row.hash:
                    return AuditVerification(
                        ok=False, checked=checked, first_bad_id=row.id, reason="hash does not match the entry's content"
                    )
                prev_hash = row.hash
                checked += 1
        return AuditVerification(ok=True, checked=checked)


# ---------------------------------------------------------------- row -> record


def _canonical(rules: dict[str, Any]) -> str:
    try:
        return json.dumps(rules, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"listing rules are not JSON-serialisable: {exc}") from exc


def _upsert_settlement(s: Session, update: SettlementUpdate, status: SettlementStatus) -> None:
    ts = update.updated_ts or time.time_ns()
    row = s.get(SettlementRow, update.trade_id)
    if row is None:
        row = SettlementRow(trade_id=update.trade_id, status=status.value, updated_ts=ts)
        s.add(row)
    row.status = status.value
    row.updated_ts = ts
    # Later updates may omit what earlier ones said (e.g. confirmed after submitted).
    row.tx_hash = update.tx_hash or row.tx_hash
    row.block = update.block if update.block is not None else row.block
    row.gas_used = update.gas_used if update.gas_used is not None else row.gas_used
    row.reason = update.reason if update.reason is not None else row.reason
    s.execute(sa.update(TradeRow).where(TradeRow.trade_id == update.trade_id).values(settlement_status=status.value))


def _participant(r: ParticipantRow) -> Participant:
    return Participant(
        id=r.id,
        name=r.name,
        status=ParticipantStatus(r.status),
        investor_category=r.investor_category,
        jurisdiction=r.jurisdiction,
        kyc_expiry=r.kyc_expiry,
        created_ts=r.created_ts,
        signed_orders=bool(r.signed_orders),
    )


def _wallet(r: WalletRow) -> Wallet:
    return Wallet(address=r.address, participant_id=r.participant_id, created_ts=r.created_ts)


def _api_key(r: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=r.key_id,
        participant=r.participant,
        role=KeyRole(r.role),
        public_key=bytes(r.public_key),
        created_ts=r.created_ts,
        revoked_ts=r.revoked_ts,
    )


def _instrument(r: InstrumentRow) -> Instrument:
    return Instrument(
        symbol=r.symbol,
        name=r.name,
        token_address=r.token_address,
        cash_token_address=r.cash_token_address,
        token_decimals=r.token_decimals,
        cash_decimals=r.cash_decimals,
        tick_size=r.tick_size,
        lot_size=r.lot_size,
        min_qty=r.min_qty,
        max_qty=r.max_qty,
        band_low=r.band_low,
        band_high=r.band_high,
        status=InstrumentState(r.status),
        maturity_ts=r.maturity_ts,
    )


def _order(r: OrderRow) -> StoredOrder:
    return StoredOrder(
        order_id=r.order_id,
        client_order_id=r.client_order_id,
        participant=r.participant,
        session=r.session,
        symbol=r.symbol,
        side=r.side,
        order_type=r.order_type,
        tif=r.tif,
        price=r.price,
        qty=r.qty,
        remaining=r.remaining,
        filled=r.filled,
        status=OrderStatus(r.status),
        expire_ts=r.expire_ts,
        accepted_ts=r.accepted_ts,
        updated_ts=r.updated_ts,
        cmd_seq=r.cmd_seq,
        reason=r.reason,
        signed_order=r.signed_order,
    )


def _with_premiums(s: Session, rows: Sequence[TradeRow]) -> list[StoredTrade]:
    ids = [r.trade_id for r in rows]
    premiums = {p.trade_id: p for p in s.scalars(sa.select(TradePremiumRow).where(TradePremiumRow.trade_id.in_(ids)))
                } if ids else {}
    return [_trade(r, premiums.get(r.trade_id)) for r in rows]


def _anchor(r: AuditAnchorRow) -> AuditAnchor:
    return AuditAnchor(id=r.id, audit_id=r.audit_id, head_hash=r.head_hash, tx_hash=r.tx_hash, block=r.block,
                       chain_id=r.chain_id, ts=r.ts)


def _trade(r: TradeRow, premium: TradePremiumRow | None = None) -> StoredTrade:
    return StoredTrade(
        trade_id=r.trade_id,
        symbol=r.symbol,
        price=r.price,
        qty=r.qty,
        aggressor=r.aggressor,
        maker_order_id=r.maker_order_id,
        maker_participant=r.maker_participant,
        taker_order_id=r.taker_order_id,
        taker_participant=r.taker_participant,
        ts=r.ts,
        settlement_status=SettlementStatus(r.settlement_status),
        cmd_seq=r.cmd_seq,
        origin=r.origin,
        premium_bps=None if premium is None else premium.premium_bps,
        nav=None if premium is None else premium.nav,
    )


def _settlement(r: SettlementRow) -> SettlementUpdate:
    return SettlementUpdate(
        trade_id=r.trade_id,
        status=SettlementStatus(r.status),
        tx_hash=r.tx_hash,
        block=r.block,
        gas_used=r.gas_used,
        reason=r.reason,
        updated_ts=r.updated_ts,
    )


def _audit_entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=r.id, ts=r.ts, actor=r.actor, action=r.action, details=r.details, prev_hash=r.prev_hash, hash=r.hash
    )
