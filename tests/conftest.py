"""Fixtures shared by several suites. ``chain`` runs a test on the in-process EVM and on a real
anvil node (marked ``anvil``); each suite defines its own ``in_process`` (scopes differ: the
compliance suite wants a fresh EVM per test because eth-tester slows down as its chain grows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from settlement import Chain, start_anvil


@pytest.fixture(scope="session")
def anvil() -> Iterator[Chain]:
    chain = start_anvil()
    yield chain
    chain.close()


@pytest.fixture(params=["in-process", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Chain:
    name = "in_process" if request.param == "in-process" else "anvil"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]
