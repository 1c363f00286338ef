"""Chain helpers shared by the compliance and settlement suites: a fresh in-process EVM (each suite
wraps it as its ``in_process`` fixture at the scope it needs) and a funded demo deployment."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from eth_typing import ChecksumAddress

from settlement import Chain, DemoAdmin, DemoDeployment, deploy_demo, in_process_chain


def in_process_evm() -> Iterator[Chain]:
    chain = in_process_chain()
    yield chain
    chain.close()


@dataclass(frozen=True, slots=True)
class Funded:
    """A fresh demo deployment; ``seller`` holds notes, ``buyer`` holds cash, both onboarded (verified,
    approved the settlement contract)."""

    deployment: DemoDeployment
    admin: DemoAdmin
    seller: ChecksumAddress
    buyer: ChecksumAddress
    start_block: int  # the deployment's first block


def deploy_and_fund(chain: Chain, *, notes: int, cash: int, seller_country: int, buyer_country: int) -> Funded:
    admin_addr, settler = chain.accounts[0], chain.accounts[1]
    start = int(chain.w3.eth.block_number) + 1
    deployment = deploy_demo(chain, admin=admin_addr, settler=settler)
    admin = DemoAdmin(chain, deployment)
    seller, buyer = chain.new_account(), chain.new_account()
    admin.onboard(seller, country=seller_country, notes=notes)
    admin.onboard(buyer, country=buyer_country, cash=cash)
    return Funded(deployment=deployment, admin=admin, seller=seller, buyer=buyer, start_block=start)
