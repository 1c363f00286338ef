"""The demo production model, checked against hand-computed figures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from attestation import (
    InvalidStatementError,
    Kind,
    ProductionModel,
    block_reward_btc,
    demo_statements,
    mined_sats_per_note,
    nav_per_note_e6,
    network_ph_s,
    realised_ph_s_e3,
)
from attestation.model import DAY_S, HALVING_INTERVAL_S

EPOCH = 1_760_000_000


def model(**kw: object) -> ProductionModel:
    base: dict[str, object] = dict(ph_s_per_note=Decimal(1), network_ph_s=Decimal(1_000), epoch=EPOCH,
                                   halving_at=EPOCH + 100 * DAY_S, drift_per_day=Decimal(0), uptime_bps=10_000,
                                   expense_ratio_bps=0)
    return ProductionModel(**(base | kw))  # type: ignore[arg-type]


def test_a_day_at_constant_difficulty_earns_the_hashrate_share_of_all_rewards() -> None:
    # 1 PH/s of 1000 PH/s, 144 blocks x 3.125 BTC = 0.45 BTC/day
    assert mined_sats_per_note(model(), EPOCH, EPOCH + DAY_S) == 45_000_000
    assert mined_sats_per_note(model(uptime_bps=9_000), EPOCH, EPOCH + DAY_S) == 40_500_000
    assert mined_sats_per_note(model(), EPOCH, EPOCH + 90) == 46_875  # partial step: 90 s of a day
    assert mined_sats_per_note(model(), EPOCH, EPOCH) == 0


def test_halving_halves_the_reward_then_every_210000_blocks() -> None:
    m = model()
    assert block_reward_btc(m, m.halving_at - 1) == Decimal("3.125")
    assert block_reward_btc(m, m.halving_at) == Decimal("1.5625")
    assert block_reward_btc(m, m.halving_at + HALVING_INTERVAL_S) == Decimal("0.78125")
    assert mined_sats_per_note(m, m.halving_at, m.halving_at + DAY_S) == 22_500_000


def test_difficulty_drift_shrinks_the_share() -> None:
    m = model(drift_per_day=Decimal("0.01"))
    assert network_ph_s(m, EPOCH) == Decimal(1_000)
    expected_network = Decimal(1_000) * Decimal(1).exp()
    assert network_ph_s(m, EPOCH + 100 * DAY_S) == pytest.approx(expected_network, rel=Decimal("1e-12"))
    drifted = mined_sats_per_note(m, EPOCH + 10 * DAY_S, EPOCH + 11 * DAY_S)
    # exact: 0.45 BTC x integral of exp(-0.01 d) from day 10 to 11 = 0.45 x (e^-0.1 - e^-0.11) / 0.01
    exact = Decimal(45_000_000) * ((Decimal("-0.1").exp() - Decimal("-0.11").exp()) / Decimal("0.01"))
    assert abs(drifted - exact) <= 2  # hour steps, midpoint rule
    assert drifted < mined_sats_per_note(m, EPOCH, EPOCH + DAY_S)


def test_realised_hashrate_and_nav() -> None:
    m = model(ph_s_per_note=Decimal("0.1"), uptime_bps=9_800)
    assert realised_ph_s_e3(m, 1_000) == 98_000  # 100 PH/s x 98 %
    flat = model()
    # nothing left to mine at maturity: NAV is the accrued BTC at the price
    assert nav_per_note_e6(flat, accrued_sats=50_000_000, t=EPOCH, maturity=EPOCH, btc_price=Decimal(90_000)) \
        == 45_000 * 10**6
    # one day to go: + 0.45 BTC expected
    assert nav_per_note_e6(flat, accrued_sats=0, t=EPOCH, maturity=EPOCH + DAY_S, btc_price=Decimal(100)) \
        == 45 * 10**6
    costly = model(expense_ratio_bps=10_000)  # 100 %/year over 1 day: 1/365 of the expected part
    assert nav_per_note_e6(costly, accrued_sats=0, t=EPOCH, maturity=EPOCH + DAY_S, btc_price=Decimal(100)) \
        == int(Decimal(45) * (1 - Decimal(1) / 365) * 10**6)


def test_demo_statements_are_consistent() -> None:
    m = model()
    s = demo_statements(m, notes=10, issued_at=EPOCH, maturity=EPOCH + 365 * DAY_S, t=EPOCH + DAY_S,
                        period_s=3_600, btc_price=Decimal(100_000), custody_coverage_bps=9_000)
    assert s.accrual.accrued_sats_per_note == 45_000_000
    assert s.custody.btc_balance_sats == 45_000_000 * 10 * 9 // 10
    assert s.hashrate.period_end == s.custody.as_of == s.nav.as_of == EPOCH + DAY_S
    assert s.hashrate.kind is Kind.HASHRATE and s.nav.currency == "USD"
    assert s.nav.nav_per_note_e6 > 45_000 * 10**6  # accrued 0.45 BTC at 100k plus what is still to come


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(InvalidStatementError):
        model(network_ph_s=Decimal(0))
    with pytest.raises(InvalidStatementError):
        model(uptime_bps=10_001)
    with pytest.raises(InvalidStatementError):
        mined_sats_per_note(model(), EPOCH + 1, EPOCH)
