"""Operator views of the gate: each participant's eligibility and reservations per instrument."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compliance.model import EligibilityView, InstrumentEligibility
from engine import Side
from market.model import ParticipantView

if TYPE_CHECKING:
    from compliance.rules import Gatekeeper


def state_of(gk: Gatekeeper, participant: str, now_ts: int | None = None) -> EligibilityView:
    """A participant's eligibility and reservations per instrument."""
    gk.ledger.purge_settled()
    if now_ts is None:
        now_ts = gk.now()
    p = gk.participant(participant)
    if p is None:
        return EligibilityView(participant=participant, known=False, status=None, category=None,
                               jurisdiction=None, kyc_expiry_ts=None, wallet=None,
                               last_rejection=gk.last_rejection(participant))
    items: list[InstrumentEligibility] = []
    for symbol in gk.symbols():
        rules = gk.rules(symbol)
        assert rules is not None
        failure = gk.eligibility_failure(participant, symbol, now_ts)
        w = p.wallet
        c = gk.cache
        t, ct = rules.token, rules.cash_token
        own = gk.ledger.holds_of(participant, symbol)
        obl = gk.ledger.obligations_of(participant, symbol)
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
            note_allowance=0 if w is None else c.allowance(t, w, gk.settlement) or 0,
            cash_balance=0 if w is None else c.balance(ct, w) or 0,
            cash_allowance=0 if w is None else c.allowance(ct, w, gk.settlement) or 0,
            open_buy_cash=sum(r.cash for r in own if r.side is Side.BUY),
            open_buy_notes=sum(r.notes for r in own if r.side is Side.BUY),
            open_sell_notes=sum(r.notes for r in own if r.side is Side.SELL),
            pending_cash=sum(r.cash for r in obl if r.side is Side.BUY),
            pending_notes_in=sum(r.notes for r in obl if r.side is Side.BUY),
            pending_notes_out=sum(r.notes for r in obl if r.side is Side.SELL),
        ))
    return EligibilityView(participant=participant, known=True, status=p.status, category=p.category,
                           jurisdiction=p.jurisdiction, kyc_expiry_ts=p.kyc_expiry_ts, wallet=p.wallet,
                           instruments=tuple(items), last_rejection=gk.last_rejection(participant))

def participant_rows(gk: Gatekeeper, symbol: str | None = None, now_ts: int | None = None) -> list[ParticipantView]:
    """One flat row per participant for one instrument (default: the first symbol in sort order);
    ``market.ParticipantView``."""
    if symbol is None:
        symbols = gk.symbols()
        symbol = symbols[0] if symbols else None
    rows: list[ParticipantView] = []
    for view in (state_of(gk, p.id, now_ts) for p in gk.participants()):
        inst = next((i for i in view.instruments if i.symbol == symbol), None)
        assert view.status is not None and view.category is not None and view.jurisdiction is not None
        rows.append(ParticipantView(
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
