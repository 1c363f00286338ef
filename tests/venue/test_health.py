"""``venue.health``: the readiness checks (chain watcher lag included) and their gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from compliance.watcher import ChainLag
from engine import Side
from market.model import SettlementState, Trade
from venue.health import HealthLimits, HealthProbe, HealthSources

NOW = 1_000 * 10**9


class _World:
    def __init__(self) -> None:
        self.stopping = False
        self.failure: str | None = None
        self.backlog = 0
        self.lag = ChainLag(blocks=0, seconds=0.5, synced=True)
        self.trades: list[Trade] = []

    def probe(self, limits: HealthLimits | None = None) -> HealthProbe:
        return HealthProbe(HealthSources(stopping=lambda: self.stopping, journal_failure=lambda: self.failure,
                                         store_backlog=lambda: self.backlog, watcher_lag=lambda: self.lag,
                                         trades=lambda: self.trades), limits or HealthLimits(), clock=lambda: NOW)


def _trade(trade_id: int, ts: int, state: SettlementState) -> Trade:
    return Trade(trade_id=trade_id, symbol="S", price=1, qty=1, aggressor=Side.BUY, ts=ts, buyer="b", seller="s",
                 buy_order_id=1, sell_order_id=2, settlement=state)


def test_every_check_passes_on_a_healthy_venue() -> None:
    probe = _World().probe()
    assert set(probe.checks()) == {"stopping", "journal", "store_backlog", "chain_watcher"}
    assert probe.failing() == {}


def test_a_lagging_chain_watcher_makes_the_venue_not_ready() -> None:
    world = _World()
    probe = world.probe(HealthLimits(watcher_max_seconds=10.0, watcher_max_blocks=5))
    world.lag = ChainLag(blocks=0, seconds=10.5, synced=True)
    assert "10.5 s" in probe.failing()["chain_watcher"]
    world.lag = ChainLag(blocks=6, seconds=1.0, synced=True)
    assert "6 blocks" in probe.failing()["chain_watcher"]
    world.lag = ChainLag(blocks=5, seconds=1.0, synced=True)
    assert probe.failing() == {}


def test_journal_store_and_stopping_each_name_their_reason() -> None:
    world = _World()
    probe = world.probe(HealthLimits(store_backlog=10))
    world.failure, world.backlog, world.stopping = "OSError(28)", 11, True
    assert probe.failing() == {"journal": "journal cannot write: OSError(28)", "stopping": "venue is stopping",
                               "store_backlog": "store backlog 11 commands (bound 10)"}


def test_gauges_show_lag_backlogs_and_the_oldest_unsettled_trade() -> None:
    world = _World()
    world.lag = ChainLag(blocks=None, seconds=42.0, synced=True)
    world.backlog = 7
    world.trades = [_trade(1, NOW - 90 * 10**9, SettlementState.CONFIRMED),
                    _trade(2, NOW - 30 * 10**9, SettlementState.SUBMITTED),
                    _trade(3, NOW - 5 * 10**9, SettlementState.PENDING)]
    world.failure = "boom"
    registry = CollectorRegistry(auto_describe=False)
    registry.register(world.probe())
    text = generate_latest(registry).decode()
    for line in ("venue_ready 0.0", 'venue_check_failing{check="chain_watcher"} 1.0',
                 'venue_check_failing{check="store_backlog"} 0.0', "venue_watcher_lag_seconds 42.0",
                 "venue_watcher_lag_blocks -1.0", "venue_store_backlog 7.0", "venue_settlement_backlog 2.0",
                 "venue_settlement_backlog_age_seconds 30.0", "venue_journal_failed 1.0"):
        assert line in text, line
