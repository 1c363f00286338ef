"""Fixtures shared by several suites. ``chain`` runs a test on the in-process EVM and on a real
anvil node (marked ``anvil``); each suite defines its own ``in_process`` (scopes differ: the
compliance suite wants a fresh EVM per test because eth-tester slows down as its chain grows)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from settlement import Chain, start_anvil
from tests.trex_kyc import KycTrex, deploy_kyc_trex


@pytest.fixture(scope="session")
def anvil() -> Iterator[Chain]:
    chain = start_anvil()
    yield chain
    chain.close()


@pytest.fixture(params=["in-process", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Chain:
    name = "in_process" if request.param == "in-process" else "anvil"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def kyc_trex(chain: Chain) -> KycTrex:
    """Reference T-REX suite requiring a KYC claim from one trusted ONCHAINID ClaimIssuer (both backends)."""
    return deploy_kyc_trex(chain, owner=chain.accounts[0])


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that runs ``venue.cli.main`` installs the venue's log handler on the root logger, on
    the stderr pytest lent that test and closes after it: later tests' log lines would go to a closed
    stream ("--- Logging error ---"). Each test leaves the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
