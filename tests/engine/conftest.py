from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.helpers import Venue


@pytest.fixture
def venue() -> Iterator[Venue]:
    """An engine with one open instrument; the book invariants are checked after every test."""
    v = Venue()
    assert v.add().code.name == "OK"
    yield v
    v.engine.validate()
