from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine import ReferenceEngine
from journal import EngineFactory
from journal.snapshot import default_engine_factory
from tests.journal.fakes import FakeEngine

FACTORIES: dict[str, Callable[[], EngineFactory[Any]]] = {
    "fake": lambda: EngineFactory(new=FakeEngine, from_snapshot=FakeEngine.from_snapshot),
    "engine": default_engine_factory,  # the compiled engine when it is built
    "reference": lambda: EngineFactory(new=ReferenceEngine, from_snapshot=ReferenceEngine.from_snapshot),
}


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> EngineFactory[Any]:
    """Every journal contract test runs against both real engines and a minimal fake (which keeps
    the journal's contract independent of matching details)."""
    return FACTORIES[request.param]()


class StepClock:
    """Deterministic clock: advances by ``step`` on every call; can be set backwards."""

    def __init__(self, start: int = 1_000, step: int = 1) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


@pytest.fixture
def clock() -> Callable[[], int]:
    return StepClock()
