"""The venue's health: the readiness checks behind ``/health/ready`` and the gauges beside them
on ``/metrics``, read from one place so the console's alert strip, the probe and the scrape agree.

Checks (each a name and, when failing, a reason):

    stopping        the venue is shutting down
    journal         the journal cannot write (the sequencer failed or stopped)
    store_backlog   commands waiting for the store projection above ``HealthLimits.store_backlog``
    chain_watcher   the chain watcher's last good poll is older than ``watcher_max_seconds``
                    (or, with ``watcher_max_blocks``, it is that many blocks behind the head)

Gauges: ``venue_ready``, ``venue_check_failing{check}``, ``venue_watcher_lag_seconds``,
``venue_watcher_lag_blocks``, ``venue_store_backlog``, ``venue_settlement_backlog``,
``venue_settlement_backlog_age_seconds`` (the oldest trade not yet confirmed) and
``venue_journal_failed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from compliance.watcher import ChainLag
from market.model import SettlementState, Trade

_OPEN = (SettlementState.PENDING, SettlementState.SUBMITTED)


@dataclass(frozen=True, slots=True)
class HealthLimits:
    store_backlog: int = 100_000
    watcher_max_seconds: float = 30.0
    watcher_max_blocks: int | None = None


@dataclass(frozen=True, slots=True)
class HealthSources:
    stopping: Callable[[], bool]
    journal_failure: Callable[[], str | None]  # None while the journal writes
    store_backlog: Callable[[], int]
    watcher_lag: Callable[[], ChainLag] | None
    trades: Callable[[], Iterable[Trade]]  # the recent trades, any order


class HealthProbe:
    """Readiness checks (``checks``, for ``gateway.guards.Readiness.add``) and a Prometheus collector."""

    def __init__(self, sources: HealthSources, limits: HealthLimits = HealthLimits(), *,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._src = sources
        self._limits = limits
        self._clock = clock

    def checks(self) -> dict[str, Callable[[], str | None]]:
        out: dict[str, Callable[[], str | None]] = {
            "stopping": lambda: "venue is stopping" if self._src.stopping() else None,
            "journal": self._journal,
            "store_backlog": self._store,
        }
        if self._src.watcher_lag is not None:
            out["chain_watcher"] = self._watcher
        return out

    def failing(self) -> dict[str, str]:
        return {name: reason for name, check in self.checks().items() if (reason := check()) is not None}

    def _journal(self) -> str | None:
        failure = self._src.journal_failure()
        return None if failure is None else f"journal cannot write: {failure}"

    def _store(self) -> str | None:
        pending, bound = self._src.store_backlog(), self._limits.store_backlog
        return None if pending <= bound else f"store backlog {pending} commands (bound {bound})"

    def _watcher(self) -> str | None:
        assert self._src.watcher_lag is not None
        lag, limits = self._src.watcher_lag(), self._limits
        if lag.seconds > limits.watcher_max_seconds:
            return f"chain watcher last polled {lag.seconds:.1f} s ago (limit {limits.watcher_max_seconds:g} s)"
        if limits.watcher_max_blocks is not None and (lag.blocks is None or lag.blocks > limits.watcher_max_blocks):
            return f"chain watcher {lag.blocks} blocks behind (limit {limits.watcher_max_blocks})"
        return None

    def settlement_backlog(self) -> tuple[int, float]:
        """(trades not yet confirmed, age in seconds of the oldest of them; 0 when none)."""
        open_ts = [t.ts for t in self._src.trades() if t.settlement in _OPEN]
        if not open_ts:
            return 0, 0.0
        return len(open_ts), max(0.0, (self._clock() - min(open_ts)) / 1e9)

    # ------------------------------------------------------------ prometheus collector

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        failing = self.failing()
        yield GaugeMetricFamily("venue_ready", "1 when every readiness check passes", value=0 if failing else 1)
        check = GaugeMetricFamily("venue_check_failing", "1 for a failing readiness check", labels=["check"])
        for name in self.checks():
            check.add_metric([name], 1 if name in failing else 0)
        yield check
        if self._src.watcher_lag is not None:
            lag = self._src.watcher_lag()
            yield GaugeMetricFamily("venue_watcher_lag_seconds", "Seconds since the chain watcher's last good poll",
                                    value=lag.seconds)
            yield GaugeMetricFamily("venue_watcher_lag_blocks", "Blocks the chain watcher is behind the head "
                                    "(-1 before a head was seen)", value=-1 if lag.blocks is None else lag.blocks)
        yield GaugeMetricFamily("venue_store_backlog", "Commands waiting for the store projection",
                                value=self._src.store_backlog())
        count, age = self.settlement_backlog()
        yield GaugeMetricFamily("venue_settlement_backlog", "Trades pending or submitted, not yet confirmed",
                                value=count)
        yield GaugeMetricFamily("venue_settlement_backlog_age_seconds", "Age of the oldest trade not yet confirmed",
                                value=age)
        yield GaugeMetricFamily("venue_journal_failed", "1 once the journal could not write",
                                value=0 if self._src.journal_failure() is None else 1)
