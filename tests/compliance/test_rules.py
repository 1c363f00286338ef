"""Every reason code, alone and in combination, against a fully eligible baseline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance import PRECEDENCE, CheckKind, Decision, ReasonCode
from engine import Side
from tests.compliance.perturb import PERTURBATIONS, Order, Perturbation
from tests.compliance.world import SYMBOL, World


def _run(world: World, side: Side, chosen: list[Perturbation]) -> tuple[Decision, list[object], object]:
    order = Order(symbol=SYMBOL, qty=world.qty, price=world.price)
    # qty/symbol last: the other knobs are computed from the original order
    for p in sorted(chosen, key=lambda p: p.group in ("qty", "symbol")):
        p.apply(world, order)
    gk, records = world.build(trader="buyer" if side is Side.BUY else "seller")
    decision = gk.check_new_order(participant="buyer" if side is Side.BUY else "seller", symbol=order.symbol,
                                  side=side, qty=order.qty, price=order.price, now_ts=order.now_ts)
    gk.validate()
    return decision, list(records), gk


def test_every_reason_code_has_a_perturbation() -> None:
    assert set(PERTURBATIONS) == set(ReasonCode)
    assert tuple(ReasonCode) == PRECEDENCE


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_baseline_is_accepted_and_reserves(side: Side) -> None:
    decision, records, _ = _run(World(), side, [])
    assert decision.ok and decision.code is None and decision.hold is not None
    assert decision.hold.side is side
    assert records == []


@pytest.mark.parametrize(
    ("code", "side"),
    [(p.code, side) for p in PERTURBATIONS.values() for side in sorted(p.sides)],
    ids=lambda v: str(v.name if isinstance(v, Side) else v),
)
def test_each_condition_alone_yields_its_code(code: ReasonCode, side: Side) -> None:
    decision, records, gk = _run(World(), side, [PERTURBATIONS[code]])
    assert not decision.ok
    assert decision.code is code
    assert decision.hold is None
    assert decision.message and decision.message != code.value
    assert len(records) == 1
    record = records[0]
    assert record.code is code and record.kind is CheckKind.ORDER and not record.ok  # type: ignore[attr-defined]
    assert gk.rejection_counts() == {code.value: 1}  # type: ignore[attr-defined]
    assert gk.open_holds() == 0  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    qty=st.integers(2, 1000),
    price=st.integers(1, 10**6),
    lot=st.integers(1, 10**9),
    tick=st.integers(1, 10**9),
    data=st.data(),
)
def test_any_combination_reports_the_first_failing_code(
    side: Side, qty: int, price: int, lot: int, tick: int, data: st.DataObject
) -> None:
    applicable = [p for p in PERTURBATIONS.values() if side in p.sides]
    chosen = data.draw(st.lists(st.sampled_from(applicable), unique_by=lambda p: p.group, max_size=6))
    world = World(qty=qty, price=price, lot=lot, tick=tick)
    decision, records, _ = _run(world, side, chosen)
    if not chosen:
        assert decision.ok
        return
    expected = min((p.code for p in chosen), key=PRECEDENCE.index)
    assert decision.code is expected
    assert len(records) == 1


def test_rejection_counts_accumulate_per_reason() -> None:
    world = World(paused=True)
    gk, records = world.build()
    for _ in range(3):
        gk.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=1, price=1, now_ts=0)
    gk.check_new_order(participant="ghost", symbol=SYMBOL, side=Side.BUY, qty=1, price=1, now_ts=0)
    assert gk.rejection_counts() == {"PARTICIPANT_UNKNOWN": 1, "TOKEN_PAUSED": 3}
    recent = gk.recent_rejections(2)
    assert [r.participant for r in recent] == ["ghost", "buyer"]
    assert len(records) == 4
    view = gk.state_of("buyer", now_ts=0)
    assert view.last_rejection is not None and view.last_rejection.code is ReasonCode.TOKEN_PAUSED
    assert view.instruments[0].reason is ReasonCode.TOKEN_PAUSED and not view.instruments[0].eligible


def test_reason_codes_are_strings_equal_to_their_names() -> None:
    for code in ReasonCode:
        assert code.value == code.name == str(code)


@pytest.mark.parametrize(
    ("label", "expected"),
    [("professional", "MIFID_PROFESSIONAL"), ("eligible_counterparty", "ELIGIBLE_COUNTERPARTY"),
     ("accredited", "US_ACCREDITED"), ("QIB", "US_QIB"), ("us_qib", "US_QIB"), ("Retail", "RETAIL")],
)
def test_investor_category_labels(label: str, expected: str) -> None:
    from compliance import InvestorCategory

    assert InvestorCategory.from_label(label).value == expected


def test_bad_records_raise_config_errors() -> None:
    from compliance import ConfigError, InstrumentRules, InvestorCategory, Participant

    with pytest.raises(ConfigError, match="unknown investor category"):
        InvestorCategory.from_label("whale")
    with pytest.raises(ConfigError, match="alpha-2"):
        Participant(id="p", status="active", category="RETAIL", jurisdiction="Germany",  # type: ignore[arg-type]
                    kyc_expiry_ts=None, wallet=None)
    with pytest.raises(ConfigError, match="wallet"):
        Participant(id="p", status="active", category="RETAIL", jurisdiction="DE",  # type: ignore[arg-type]
                    kyc_expiry_ts=None, wallet="0x1234")
    with pytest.raises(ConfigError, match="status"):
        Participant(id="p", status="sleeping", category="RETAIL", jurisdiction="DE",  # type: ignore[arg-type]
                    kyc_expiry_ts=None, wallet=None)
    base = {"symbol": "X", "token": "0x" + "11" * 20, "cash_token": "0x" + "22" * 20, "lot_size": 1,
            "tick_size": 1, "allowed_categories": frozenset({InvestorCategory.RETAIL})}
    for bad, match in ([{"lot_size": 0}, "positive"], [{"token": "nope"}, "token"],
                       [{"blocked_jurisdictions": frozenset({"XX"})}, "alpha-2"],
                       [{"min_order_lots": 5, "max_order_lots": 2}, "max_order_lots"]):
        with pytest.raises(ConfigError, match=match):
            InstrumentRules(**{**base, **bad})  # type: ignore[arg-type]


def test_decision_record_code_name() -> None:
    world = World(frozen=True)
    gk, records = world.build()
    gk.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=1, price=1, now_ts=0)
    assert records[0].code_name == "WALLET_FROZEN"


def test_participant_status_change_and_views() -> None:
    from compliance import ConfigError

    gk, _ = World().build()
    gk.set_participant_status("buyer", "suspended")
    d = gk.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=1, price=1, now_ts=0)
    assert d.code is ReasonCode.PARTICIPANT_SUSPENDED
    with pytest.raises(ConfigError):
        gk.set_participant_status("buyer", "gone")
    with pytest.raises(ConfigError):
        gk.set_participant_status("nobody", "active")
    rows = {r.participant: r for r in gk.participant_views(now_ts=0)}
    assert rows["buyer"].status == "suspended" and not rows["buyer"].eligible
    assert rows["buyer"].reason == "PARTICIPANT_SUSPENDED"
    assert rows["seller"].eligible and rows["seller"].verified and not rows["seller"].frozen
    assert rows["seller"].note_balance > 0


def test_acceptances_are_recorded_when_asked() -> None:
    from compliance import ChainStateCache, Gatekeeper

    gk, _ = World().build()
    records: list[object] = []
    # same state, new gatekeeper that records acceptances too
    cache: ChainStateCache = gk.cache
    gk2 = Gatekeeper(cache, settlement_address="0x" + "33" * 20, on_decision=records.append,
                     record_acceptances=True)
    rules = gk.rules(SYMBOL)
    assert rules is not None
    gk2.set_rules(rules)
    for p in gk.participants():
        gk2.upsert_participant(p)
    d = gk2.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=1, price=1, now_ts=0)
    assert d.ok
    assert len(records) == 1
    assert records[0].ok and records[0].code_name == "OK"  # type: ignore[attr-defined]
    assert gk2.rejection_counts() == {}
    assert gk2.eligibility("buyer", SYMBOL, 0).ok
    assert gk2.eligibility("nobody", SYMBOL, 0).code is ReasonCode.PARTICIPANT_UNKNOWN
