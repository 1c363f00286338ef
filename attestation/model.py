"""Demo attestor: a simple, documented production model of a hashrate-backed note (pure functions).

A note entitles its holder to the BTC mined by ``ph_s_per_note`` PH/s of contracted hashrate. Over a
time step the note earns its share of all block rewards::

    btc per day per note = ph_s_per_note / network_ph_s(t) x blocks_per_day x block_reward(t) x uptime

* network hashrate drifts continuously: ``network_ph_s(t) = network_ph_s_at_epoch x exp(drift x days)``
  (difficulty follows hashrate; a positive drift means a shrinking share);
* the block reward halves at ``halving_at`` and every 210,000 blocks (~4 years at 10 minutes) after it;
* accrual is integrated hour by hour (exact for a piecewise-constant rate, deterministic, no floats);
* NAV per note = (accrued BTC + BTC still expected until maturity at the current rate) x BTC price,
  less the expense ratio on the expected part: a deliberately naive value, for demonstrations only.

Every function takes time explicitly (Unix seconds), so tests can pin it; results are integers in the
units of the attestation schemas (sats, PH/s x 1000, currency x 1e6).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from attestation.errors import InvalidStatementError
from attestation.schemas import (
    HASHRATE_SCALE,
    NAV_SCALE,
    SATS_PER_BTC,
    AccrualStatement,
    CustodyStatement,
    HashrateStatement,
    NavStatement,
)

DAY_S = 86_400
STEP_S = 3_600
HALVING_INTERVAL_S = 210_000 * 600


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductionModel:
    ph_s_per_note: Decimal  # contracted hashrate per note, PH/s
    network_ph_s: Decimal  # network hashrate at ``epoch``, PH/s (1 EH/s = 1000 PH/s)
    epoch: int  # Unix seconds: when ``network_ph_s`` and ``block_reward_btc`` hold
    halving_at: int  # Unix seconds of the next halving after ``epoch``
    drift_per_day: Decimal = Decimal("0.001")  # continuous network-hashrate growth per day
    blocks_per_day: int = 144
    block_reward_btc: Decimal = Decimal("3.125")
    uptime_bps: int = 9_800
    expense_ratio_bps: int = 200  # per year, charged on the expected (not yet mined) production

    def __post_init__(self) -> None:
        if self.ph_s_per_note <= 0 or self.network_ph_s <= 0 or self.blocks_per_day <= 0:
            raise InvalidStatementError("hashrate per note, network hashrate and blocks per day must be positive")
        if not 0 <= self.uptime_bps <= 10_000 or not 0 <= self.expense_ratio_bps <= 10_000:
            raise InvalidStatementError("uptime_bps and expense_ratio_bps must be in 0..10000")


def network_ph_s(model: ProductionModel, t: int) -> Decimal:
    """Network hashrate at ``t`` (PH/s), drifting continuously from the epoch."""
    days = Decimal(t - model.epoch) / DAY_S
    growth: Decimal = (model.drift_per_day * days).exp()
    return model.network_ph_s * growth


def block_reward_btc(model: ProductionModel, t: int) -> Decimal:
    """The subsidy at ``t``: halved at ``halving_at`` and every 210,000 blocks after it."""
    if t < model.halving_at:
        return model.block_reward_btc
    halvings = 1 + (t - model.halving_at) // HALVING_INTERVAL_S
    return model.block_reward_btc / Decimal(2**halvings)


def btc_per_note_per_day(model: ProductionModel, t: int) -> Decimal:
    share = model.ph_s_per_note / network_ph_s(model, t)
    return share * model.blocks_per_day * block_reward_btc(model, t) * model.uptime_bps / 10_000


def mined_sats_per_note(model: ProductionModel, start: int, end: int) -> int:
    """BTC (sats, floored) one note earns between ``start`` and ``end``, integrated hour by hour."""
    if end < start:
        raise InvalidStatementError("end must not be before start")
    total = Decimal(0)
    t = start
    while t < end:
        step = min(STEP_S, end - t)
        total += btc_per_note_per_day(model, t + step // 2) * step / DAY_S
        t += step
    return int((total * SATS_PER_BTC).to_integral_value(rounding=ROUND_FLOOR))


def realised_ph_s_e3(model: ProductionModel, notes: int) -> int:
    """Realised hashrate of the facilities behind ``notes`` notes (PH/s x 1000, after uptime)."""
    return int((model.ph_s_per_note * notes * model.uptime_bps / 10_000 * HASHRATE_SCALE)
               .to_integral_value(rounding=ROUND_FLOOR))


def nav_per_note_e6(
    model: ProductionModel, *, accrued_sats: int, t: int, maturity: int, btc_price: Decimal
) -> int:
    """NAV per note (currency x 1e6): accrued BTC plus expected production until maturity net of the
    expense ratio, at ``btc_price``."""
    expected = mined_sats_per_note(model, t, max(t, maturity))
    years_left = Decimal(max(0, maturity - t)) / (365 * DAY_S)
    net_expected = Decimal(expected) * (1 - Decimal(model.expense_ratio_bps) / 10_000 * years_left)
    value = (Decimal(accrued_sats) + max(Decimal(0), net_expected)) / SATS_PER_BTC * btc_price
    return int((value * NAV_SCALE).to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoStatements:
    hashrate: HashrateStatement
    custody: CustodyStatement
    accrual: AccrualStatement
    nav: NavStatement


def demo_statements(
    model: ProductionModel,
    *,
    notes: int,
    issued_at: int,
    maturity: int,
    t: int,
    period_s: int,
    btc_price: Decimal,
    currency: str = "USD",
    custody_coverage_bps: int = 10_000,
) -> DemoStatements:
    """The four statements a demo attestor publishes at ``t`` for ``notes`` outstanding notes; the
    custodian holds ``custody_coverage_bps`` of what has accrued (10000 = fully covered)."""
    accrued = mined_sats_per_note(model, issued_at, min(t, maturity))
    return DemoStatements(
        hashrate=HashrateStatement(period_start=t - period_s, period_end=t,
                                   realised_ph_s_e3=realised_ph_s_e3(model, notes), uptime_bps=model.uptime_bps),
        custody=CustodyStatement(as_of=t, btc_balance_sats=accrued * notes * custody_coverage_bps // 10_000),
        accrual=AccrualStatement(as_of=t, accrued_sats_per_note=accrued),
        nav=NavStatement(as_of=t, currency=currency, nav_per_note_e6=nav_per_note_e6(
            model, accrued_sats=accrued, t=t, maturity=maturity, btc_price=btc_price)),
    )
