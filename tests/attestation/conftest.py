"""Attestation suites: every test taking ``notes`` runs on the in-process EVM and on anvil, with the
venue's demo token; ``series`` adds the reference T-REX token as a second parameter.

Deploying a token, EAS and the resolver costs seconds on the in-process EVM, so each backend
deploys each series kind once per session and every test runs inside a chain snapshot taken after
that deployment, reverted when the test ends (``evm_snapshot``/``evm_revert`` on anvil, eth-tester's
snapshots in process): a test sees exactly the state its own fixture set up, and the in-process
chain never grows (eth-tester slows down as it does)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_typing import ChecksumAddress

from attestation import AttestationDeployment, Publisher, Role, deploy_attestation
from settlement import Chain, DemoAdmin, deploy_demo, in_process_chain
from settlement.trex import deploy_trex_suite


@pytest.fixture(scope="session")
def _evm() -> Iterator[Chain]:
    chain = in_process_chain()  # one per session; tests revert what they did (see the module doc)
    yield chain
    chain.close()


@contextlib.contextmanager
def _isolated(chain: Chain) -> Iterator[None]:
    """Everything the body does to ``chain`` is undone at the end."""
    snapshot = chain.snapshot()
    try:
        yield
    finally:
        chain.revert_to(snapshot)


_NOTE_FIXTURES = {"notes", "series_notes"}


@pytest.fixture
def in_process(_evm: Chain, request: pytest.FixtureRequest) -> Iterator[Chain]:
    if _NOTE_FIXTURES & set(request.fixturenames):  # the note fixture isolates, after its deployment
        yield _evm
        return
    with _isolated(_evm):
        yield _evm


@dataclass
class Notes:
    """A note series (token) with EAS + resolver deployed and one attestor per role registered."""

    chain: Chain
    deployment: AttestationDeployment
    publisher: Publisher
    series: ChecksumAddress
    issuer: ChecksumAddress  # the token's owner: registers attestors
    custodian: ChecksumAddress
    administrator: ChecksumAddress
    facility: ChecksumAddress
    auditor: ChecksumAddress
    outsider: ChecksumAddress

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def key(self, address: str) -> bytes:
        return self.chain.private_key(address)


def _notes(chain: Chain, series: ChecksumAddress, issuer: ChecksumAddress) -> Notes:
    deployment = deploy_attestation(chain, chain.accounts[2])
    publisher = Publisher(chain, deployment)
    custodian, administrator, facility, auditor, outsider = (chain.new_account() for _ in range(5))
    for who, role in ((custodian, Role.CUSTODIAN), (administrator, Role.ADMINISTRATOR),
                      (facility, Role.FACILITY), (auditor, Role.AUDITOR)):
        publisher.set_attestor(series, who, role, admin=issuer)
    return Notes(chain, deployment, publisher, series, issuer, custodian, administrator, facility, auditor, outsider)


def demo_notes(chain: Chain, *, notes: int = 1_000) -> Notes:
    issuer = chain.accounts[0]
    dep = deploy_demo(chain, admin=issuer, settler=chain.accounts[1])
    holder = chain.new_account()
    DemoAdmin(chain, dep).onboard(holder, country=756, notes=notes)
    return _notes(chain, dep.token, issuer)


def trex_notes(chain: Chain, *, notes: int = 1_000) -> Notes:
    issuer = chain.accounts[0]
    suite = deploy_trex_suite(chain, owner=issuer)
    holder = chain.new_account()
    suite.register(holder, 756)
    suite.mint(holder, notes)
    return _notes(chain, suite.token.address, issuer)


_DEPLOYED: dict[tuple[int, str], Notes] = {}


def _deployed(chain: Chain, kind: str) -> Notes:
    """The session's ``kind`` series on ``chain``, deployed at first use (outside any test's snapshot)."""
    key = (id(chain), kind)
    if key not in _DEPLOYED:
        _DEPLOYED[key] = demo_notes(chain) if kind == "demo" else trex_notes(chain)
    return _DEPLOYED[key]


@pytest.fixture
def notes(chain: Chain) -> Iterator[Notes]:
    deployed = _deployed(chain, "demo")
    with _isolated(chain):
        yield deployed


@pytest.fixture(params=["demo", "trex"])
def series_notes(request: pytest.FixtureRequest, chain: Chain) -> Iterator[Notes]:
    deployed = _deployed(chain, str(request.param))
    with _isolated(chain):
        yield deployed
