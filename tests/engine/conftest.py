from __future__ import annotations

from collections.abc import Iterator

import pytest

import engine
from tests.engine import helpers
from tests.engine.helpers import Venue

IMPLEMENTATIONS = ("python", "compiled")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # every engine test function runs once per implementation (the state machines are separate classes)
    if "engine_cls" in metafunc.fixturenames and getattr(metafunc.module, "PER_IMPLEMENTATION", True):
        metafunc.parametrize("engine_cls", IMPLEMENTATIONS, indirect=True)


@pytest.fixture(autouse=True)
def engine_cls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type[engine.Engine]:
    """The implementation under test; ``Engine`` in the helpers and the test module is swapped for it."""
    name = getattr(request, "param", None)
    if name is None:  # a unittest-style test (the hypothesis machines choose their implementation)
        return engine.Engine
    cls = engine.implementations().get(name)
    if cls is None:
        pytest.skip("compiled core not built")
    monkeypatch.setattr(helpers, "Engine", cls)
    if getattr(request.module, "Engine", None) is not None:
        monkeypatch.setattr(request.module, "Engine", cls)
    return cls


@pytest.fixture
def venue(engine_cls: type[engine.Engine]) -> Iterator[Venue]:
    """An engine with one open instrument; the book invariants are checked after every test."""
    v = Venue(engine_cls())
    assert v.add().code.name == "OK"
    yield v
    v.engine.validate()
