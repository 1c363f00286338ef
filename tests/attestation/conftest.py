"""Attestation suites: every test taking ``notes`` runs on the in-process EVM and on anvil, with the
venue's demo token; ``series`` adds the reference T-REX token as a second parameter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_typing import ChecksumAddress

from attestation import AttestationDeployment, Publisher, Role, deploy_attestation
from settlement import Chain, DemoAdmin, deploy_demo, in_process_chain
from settlement.trex import deploy_trex_suite


@pytest.fixture
def in_process() -> Iterator[Chain]:
    chain = in_process_chain()  # fresh per test: eth-tester slows down as its chain grows
    yield chain
    chain.close()


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


@pytest.fixture
def notes(chain: Chain) -> Notes:
    return demo_notes(chain)


@pytest.fixture(params=["demo", "trex"])
def series_notes(request: pytest.FixtureRequest, chain: Chain) -> Notes:
    return demo_notes(chain) if request.param == "demo" else trex_notes(chain)
