"""The gate's decision log: what was refused (and, when asked, accepted), counted by code, kept for
operators, and handed to the ``on_decision`` sink (the store)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

from prometheus_client import Counter as PromCounter

from compliance.codes import ReasonCode
from compliance.model import CheckKind, Decision, DecisionRecord, Hold

REJECTIONS = PromCounter("venue_compliance_rejections", "Orders and trades refused by compliance", ["code"])


class DecisionLog:
    def __init__(self, on_decision: Callable[[DecisionRecord], None] | None, *, record_acceptances: bool,
                 recent_limit: int) -> None:
        self._on_decision = on_decision
        self.record_acceptances = record_acceptances
        self._counts: Counter[str] = Counter()
        self._recent: deque[DecisionRecord] = deque(maxlen=recent_limit)
        self._last_rejection: dict[str, DecisionRecord] = {}

    def accept(
        self, kind: CheckKind, participant: str, symbol: str, now_ts: int, hold: Hold, **details: object
    ) -> Decision:
        if self.record_acceptances:
            self.emit(DecisionRecord(ts=now_ts, kind=kind, participant=participant, symbol=symbol, ok=True,
                                     code=None, message="accepted", **details))  # type: ignore[arg-type]
        return Decision(ok=True, code=None, message="accepted", hold=hold, participant=participant)

    def reject(
        self, kind: CheckKind, participant: str, symbol: str, failure: tuple[ReasonCode, str], now_ts: int,
        **details: object,
    ) -> Decision:
        code, message = failure
        record = DecisionRecord(ts=now_ts, kind=kind, participant=participant, symbol=symbol, ok=False,
                                code=code, message=message, **details)  # type: ignore[arg-type]
        self._counts[code.value] += 1
        REJECTIONS.labels(code=code.value).inc()
        self._recent.append(record)
        self._last_rejection[participant] = record
        self.emit(record)
        return Decision(ok=False, code=code, message=message, participant=participant)

    def emit(self, record: DecisionRecord) -> None:
        if self._on_decision is not None:
            self._on_decision(record)

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def recent(self, limit: int = 100) -> list[DecisionRecord]:
        """Newest first."""
        if limit <= 0:
            return []
        return list(reversed(self._recent))[:limit]

    def last_rejection(self, participant: str) -> DecisionRecord | None:
        return self._last_rejection.get(participant)
