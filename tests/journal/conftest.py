from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from journal import EngineFactory
from tests.journal.fakes import FakeEngine


def _real_engine_factory() -> EngineFactory | None:
    engine_cls: Any = getattr(importlib.import_module("engine"), "Engine", None)
    if engine_cls is None:
        return None
    return EngineFactory(new=engine_cls, from_snapshot=engine_cls.from_snapshot)


@pytest.fixture(params=["fake", "real"])
def factory(request: pytest.FixtureRequest) -> EngineFactory:
    """Every journal contract test runs against the fake and (once it exists) the real engine."""
    if request.param == "fake":
        return EngineFactory(new=FakeEngine, from_snapshot=FakeEngine.from_snapshot)
    real = _real_engine_factory()
    if real is None:
        pytest.skip("engine.Engine not implemented yet")
    return real


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
