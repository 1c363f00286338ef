"""NAV collar, premium/discount, automatic halts and maturity (``venue.refprice``) over a real engine
and sequencer; the attestation figures come from a scripted source (the watcher is tested in
tests/attestation, the whole chain path in tests/venue/test_attestation_venue.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation import Kind, SeriesReference
from engine import (
    AddInstrument,
    CancelReason,
    Engine,
    Fill,
    InstrumentSpec,
    InstrumentStatus,
    NewOrder,
    OrderCancelled,
    Side,
)
from journal import Sequencer
from market.codes import code_info
from market.model import Listing
from venue.core import VenueCore
from venue.listings import ListingRules
from venue.refprice import ReferenceMonitor, bps_to_nav, collar_of, nav_ticks

SYMBOL = "OMN-T"
TOKEN = "0x" + "11" * 20
CASH = "0x" + "22" * 20
NOW = 1_800_000_000
# price = ticks x 0.01 cash per note; NAV 100.00 = 10_000 ticks
SPEC = InstrumentSpec(symbol=SYMBOL, tick_size=10_000, lot_size=1, band_low=100, band_high=1_000_000)
LISTING = Listing(spec=SPEC, name="t", token_address=TOKEN, cash_token_address=CASH, token_decimals=0,
                  cash_decimals=6)
RULES = ListingRules(nav_collar_below_pct="20", nav_collar_above_pct="10", attestation_max_age_s=3_600)


@dataclass
class Source:
    """Scripted reference figures (what ``AttestationWatcher.reference`` returns)."""

    nav: Decimal | None = Decimal("100")
    age_s: int = 60
    coverage: Decimal | None = Decimal("1.0")
    evidence: int = 1  # changes when "new attestations" arrive
    tracked: set[str] = field(default_factory=set)

    def track(self, series: str) -> None:
        self.tracked.add(series)

    def reference(self, series: str, *, now: float | None = None) -> SeriesReference:
        latest = {k: _record(k, self.evidence) for k in (Kind.NAV, Kind.CUSTODY)}
        return SeriesReference(
            series=series, head=1, notes_outstanding=Decimal(1000), latest=latest,  # type: ignore[arg-type]
            ages_s=dict.fromkeys(latest, self.age_s), accrued_btc_per_note=Decimal("0.01"),
            custody_btc=None if self.coverage is None else self.coverage * 10, custody_coverage=self.coverage,
            nav_per_note=self.nav, nav_currency="USD", realised_ph_s=None, uptime_bps=None,
        )


@dataclass(frozen=True)
class _FakeRecord:
    uid: bytes


def _record(kind: Kind, evidence: int) -> _FakeRecord:
    return _FakeRecord(uid=bytes([int(kind), evidence % 256]) * 16)


@dataclass
class World:
    core: VenueCore
    engine: Engine
    sequencer: Sequencer
    source: Source
    monitor: ReferenceMonitor
    audit: list[tuple[str, str, dict[str, object]]]
    clock: list[float]

    def fills(self) -> list[Fill]:
        return [e for e in self.events if isinstance(e, Fill)]

    events: list[object] = field(default_factory=list)


async def _world(rules: ListingRules = RULES, source: Source | None = None) -> World:
    engine = Engine()
    sequencer = Sequencer(engine, None, clock=lambda: NOW * 10**9)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=SPEC))
    core = VenueCore(engine=engine, sequencer=sequencer, listings=[LISTING], clock=lambda: NOW * 10**9)
    audit: list[tuple[str, str, dict[str, object]]] = []
    clock = [float(NOW)]

    def record(actor: str, action: str, details: Mapping[str, object]) -> None:
        audit.append((actor, action, dict(details)))

    src = source or Source()
    monitor = ReferenceMonitor(src, venue=core, orders=engine, sequencer=sequencer, audit=record,
                               clock=lambda: clock[0])
    core.pipeline.price_check = monitor.check
    core.pipeline.events.add(monitor.on_event)
    monitor.set_rules(SYMBOL, rules)
    world = World(core=core, engine=engine, sequencer=sequencer, source=src, monitor=monitor, audit=audit,
                  clock=clock)
    core.pipeline.events.add(world.events.append)
    return world


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = await _world()
    try:
        yield w
    finally:
        await w.sequencer.stop()


def _order(who: str, side: Side, price: int | None, qty: int = 1) -> NewOrder:
    return NewOrder(ts=0, participant=who, symbol=SYMBOL, side=side, qty=qty, price=price)


def test_the_collar_code_is_registered_in_the_gate_band() -> None:
    info = code_info("PRICE_OUTSIDE_NAV_COLLAR")
    assert info is not None and info.stage == "gate" and 1000 <= info.number < 2000
    for name in ("ATTESTATION_STALE", "CUSTODY_SHORTFALL", "UNREGISTERED_SIGNER"):
        assert code_info(name) is not None


def test_nav_in_ticks_and_collar_bounds() -> None:
    nav = nav_ticks(Decimal("100"), LISTING)
    assert nav == 10_000
    collar = collar_of(nav, RULES)
    assert collar is not None and (collar.low, collar.high) == (8_000, 11_000)
    assert collar_of(nav, ListingRules()) is None
    assert collar_of(Fraction(10_001, 3), RULES) is not None


async def test_an_order_outside_the_collar_is_refused_and_the_message_states_the_collar(world: World) -> None:
    await world.monitor.evaluate()
    high = await world.core.submit("a", _order("a", Side.BUY, 11_001))
    assert high.ack is not None and high.ack.rejection is not None
    assert high.ack.rejection.code == "PRICE_OUTSIDE_NAV_COLLAR"
    assert "80.00 - 110.00" in high.ack.rejection.message and "-20%" in high.ack.rejection.message
    low = await world.core.submit("a", _order("a", Side.SELL, 7_999))
    assert low.ack is not None and low.ack.rejection is not None
    edge = await world.core.submit("a", _order("a", Side.SELL, 8_000))
    assert edge.ack is not None and edge.ack.rejection is None and edge.result is not None
    # the static band stays the outer limit: the engine still refuses outside it
    assert world.core.rejection_counts() == {"PRICE_OUTSIDE_NAV_COLLAR": 2}


async def test_without_a_nav_the_collar_does_not_apply_and_the_band_does(world: World) -> None:
    world.source.nav = None
    await world.monitor.evaluate()
    out = await world.core.submit("a", _order("a", Side.BUY, 50_000))
    assert out.ack is not None and out.ack.rejection is None


async def test_trades_carry_their_premium_to_the_nav_in_force(world: World) -> None:
    await world.monitor.evaluate()
    await world.core.submit("s", _order("s", Side.SELL, 10_250))
    await world.core.submit("b", _order("b", Side.BUY, 10_250))
    (fill,) = world.fills()
    assert world.monitor.premium(fill.trade_id) == Decimal("0.025")
    await world.core.submit("s", _order("s", Side.SELL, 9_900))
    await world.core.submit("b", _order("b", Side.BUY, 9_700))
    assert world.monitor.mid_premium(SYMBOL) == Decimal("-0.02")


async def test_a_new_nav_cancels_resting_orders_outside_the_new_collar(world: World) -> None:
    await world.monitor.evaluate()
    await world.core.submit("s", _order("s", Side.SELL, 10_900))
    await world.core.submit("b", _order("b", Side.BUY, 9_000))
    world.source.nav = Decimal("85")  # collar 68.00 - 93.50: the ask at 109 is outside
    assert world.monitor.refresh_prices() == 1
    await world.sequencer.submit(AddInstrument(ts=0, spec=SPEC))  # a barrier: the cancel ran before it
    cancelled = [e for e in world.events if isinstance(e, OrderCancelled)]
    assert [c.participant for c in cancelled] == ["s"]
    bought = await world.core.submit("b2", _order("b2", Side.BUY, 9_300))
    assert bought.ack is not None and bought.ack.rejection is None and not world.fills()


async def test_a_stale_attestation_halts_and_a_fresh_one_resumes(world: World) -> None:
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN
    world.source.age_s = 3_601
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED
    assert world.monitor.auto_halts[SYMBOL].code == "ATTESTATION_STALE"
    assert "3601 s old" in world.monitor.auto_halts[SYMBOL].message
    assert ("attestation-monitor", "instrument.halt") in [(a, b) for a, b, _ in world.audit]
    assert world.monitor.recent_alerts(SYMBOL)[0].code == "ATTESTATION_STALE"
    refused = await world.core.submit("a", _order("a", Side.BUY, 10_000))
    assert refused.result is not None and refused.result.code.name == "INSTRUMENT_HALTED"
    world.source.age_s, world.source.evidence = 10, 2
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN
    resumes = [d for a, b, d in world.audit if b == "instrument.resume"]
    assert resumes and resumes[-1]["after"] == "ATTESTATION_STALE"


async def test_a_custody_shortfall_halts_until_custody_covers_again(world: World) -> None:
    world.source.coverage = Decimal("0.9999")
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED
    assert world.monitor.auto_halts[SYMBOL].code == "CUSTODY_SHORTFALL"
    world.source.coverage, world.source.evidence = Decimal("1.02"), 2
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN


async def test_an_operator_resume_needs_a_reason_and_holds_until_new_evidence(world: World) -> None:
    world.source.age_s = 10_000
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED
    assert await world.monitor.resume(SYMBOL, operator="op", reason="  ") is None
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED
    assert await world.monitor.resume(SYMBOL, operator="op", reason="administrator confirmed by phone")
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN
    assert any(a == "op" and b == "instrument.resume" and d["reason"] == "administrator confirmed by phone"
               for a, b, d in world.audit)
    await world.monitor.evaluate()  # same evidence: the operator's decision stands
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN
    world.source.evidence = 3  # a new (still stale) attestation: the rule applies again
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED


async def test_at_the_trading_end_the_instrument_closes_and_resting_orders_are_cancelled() -> None:
    w = await _world(ListingRules(trading_end_ts=(NOW + 100) * 10**9))
    try:
        await w.monitor.evaluate()
        await w.core.submit("s", _order("s", Side.SELL, 10_000))
        w.clock[0] = NOW + 100
        await w.monitor.evaluate()
        assert w.core.l2(SYMBOL, 0).status is InstrumentStatus.CLOSED
        # resting orders are cancelled with the reason the issue names (the owner sees "instrument_matured")
        assert [(e.participant, e.reason) for e in w.events if isinstance(e, OrderCancelled)] == [
            ("s", CancelReason.INSTRUMENT_MATURED)]
        assert SYMBOL in w.monitor.matured
        assert any(b == "instrument.matured" and d["reason"] == "INSTRUMENT_MATURED" for _, b, d in w.audit)
    finally:
        await w.sequencer.stop()


_PRICES = st.integers(min_value=6_000, max_value=14_000)
_STEP = st.one_of(
    st.tuples(st.just("nav"), st.decimals(min_value=Decimal("70"), max_value=Decimal("130"), places=2)),
    st.tuples(st.sampled_from(["buy", "sell"]), _PRICES, st.integers(min_value=1, max_value=5)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_STEP, min_size=1, max_size=40))
def test_no_trade_ever_prints_outside_the_collar_in_force(steps: list[tuple[object, ...]]) -> None:
    async def run() -> None:
        w = await _world()
        try:
            await w.monitor.evaluate()
            for i, step in enumerate(steps):
                if step[0] == "nav":
                    w.source.nav = Decimal(str(step[1]))
                    w.monitor.refresh_prices()
                    continue
                side = Side.BUY if step[0] == "buy" else Side.SELL
                collar = w.monitor.collar(SYMBOL)
                assert collar is not None
                before = len(w.fills())
                price, qty = step[1], step[2]
                assert isinstance(price, int) and isinstance(qty, int)
                await w.core.submit(f"p{i % 3}", _order(f"p{i % 3}", side, price, qty))
                for fill in w.fills()[before:]:
                    assert collar.low <= fill.price <= collar.high, (fill.price, collar)
        finally:
            await w.sequencer.stop()

    asyncio.run(run())


async def test_after_a_restart_the_monitors_own_halt_is_restored_and_fresh_attestations_reopen(world: World) -> None:
    import json

    from market.model import AuditEntry

    world.source.age_s = 9_999
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED
    entries = [AuditEntry(id=i + 1, ts=0, actor=a, action=b, details=json.dumps(d), hash="")
               for i, (a, b, d) in enumerate(world.audit)]
    restarted = ReferenceMonitor(world.source, venue=world.core, orders=world.engine, sequencer=world.sequencer,
                                 audit=lambda *_: None, clock=lambda: world.clock[0])
    restarted.set_rules(SYMBOL, RULES)
    assert restarted.restore(entries) == [SYMBOL]
    world.source.age_s, world.source.evidence = 5, 9
    await restarted.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN
    # an operator's own halt is not the monitor's: it is never reopened automatically
    operator_halt = AuditEntry(id=99, ts=0, actor="op", action="instrument.halt",
                               details=json.dumps({"symbol": SYMBOL, "reason": "manual"}), hash="")
    other = ReferenceMonitor(world.source, venue=world.core, orders=world.engine, sequencer=world.sequencer,
                             audit=lambda *_: None)
    assert other.restore([*entries, operator_halt]) == []


async def test_resumes_go_through_a_call_auction_and_a_call_can_be_halted(world: World) -> None:
    world.monitor.resume_status = InstrumentStatus.CALL  # as the venue runtime sets it (venue.auctions)
    world.source.age_s = 3_601
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED
    world.source.age_s, world.source.evidence = 10, 2
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.CALL  # fresh evidence: reopens through a call
    world.source.age_s = 3_601
    await world.monitor.evaluate()
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED  # stale again during the call: halted
    assert await world.monitor.resume(SYMBOL, operator="op", reason="administrator confirmed by phone")
    assert world.core.l2(SYMBOL, 0).status is InstrumentStatus.CALL


@given(price=st.integers(1, 10**9), num=st.integers(1, 10**12), den=st.integers(1, 10**6))
def test_premium_in_bps_is_the_exact_premium_rounded_half_even(price: int, num: int, den: int) -> None:
    nav = Fraction(num, den)
    exact = (Fraction(price) / nav - 1) * 10_000
    assert bps_to_nav(price, nav) == round(exact)  # Fraction.__round__ rounds half to even


def test_premium_in_bps_examples() -> None:
    assert bps_to_nav(10_125, Fraction(10_000)) == 125 and bps_to_nav(9_875, Fraction(10_000)) == -125
    assert bps_to_nav(200_001, Fraction(400_000, 2)) == 0  # 0.05 bps
    assert bps_to_nav(100_005, Fraction(100_000)) == 0 and bps_to_nav(100_015, Fraction(100_000)) == 2  # half-even
