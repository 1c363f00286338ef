"""Deploy the reference ERC-3643 suite (Tokeny T-REX 4.1.6) from its published npm artifacts.

Test/benchmark tooling only: needs the ``@tokenysolutions/t-rex`` dev dependency in node_modules.
T-REX is GPL; we load its compiled artifacts at run time and never copy its code.

Setup without proxies: every implementation is deployed and ``init()``-ed directly. The claim-topics
registry stays empty (T-REX allows zero required claim topics), so ``isVerified`` only requires the
wallet to be registered with some identity address; we register a deterministic placeholder rather
than an ONCHAINID contract (the ``@onchain-id/solidity`` artifacts are not installed).
"""

from __future__ import annotations

from dataclasses import dataclass

from web3.contract.contract import Contract

from settlement.artifacts import load_trex
from settlement.chain import Chain, to_address
from settlement.deploy import placeholder_identity

TOKEN = "token/Token.sol/Token.json"
IDENTITY_REGISTRY = "registry/implementation/IdentityRegistry.sol/IdentityRegistry.json"
IDENTITY_STORAGE = "registry/implementation/IdentityRegistryStorage.sol/IdentityRegistryStorage.json"
CLAIM_TOPICS = "registry/implementation/ClaimTopicsRegistry.sol/ClaimTopicsRegistry.json"
TRUSTED_ISSUERS = "registry/implementation/TrustedIssuersRegistry.sol/TrustedIssuersRegistry.json"
MODULAR_COMPLIANCE = "compliance/modular/ModularCompliance.sol/ModularCompliance.json"
DVD_MANAGER = "DVD/DVDTransferManager.sol/DVDTransferManager.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrexSuite:
    chain: Chain
    owner: str
    token: Contract
    identity_registry: Contract
    identity_storage: Contract
    compliance: Contract

    def register(self, wallet: str, country: int) -> None:
        wallet = to_address(wallet)
        self.chain.transact(
            self.identity_registry.functions.registerIdentity(wallet, placeholder_identity(wallet), country),
            self.owner,
        )

    def mint(self, wallet: str, amount: int) -> None:
        self.chain.transact(self.token.functions.mint(to_address(wallet), amount), self.owner)

    def freeze(self, wallet: str, frozen: bool = True) -> None:
        self.chain.transact(
            self.token.functions.setAddressFrozen(to_address(wallet), frozen), self.owner
        )


def _deploy_init(chain: Chain, relative: str, owner: str, *init_args: object) -> Contract:
    contract = chain.deploy(load_trex(relative), owner)
    chain.transact(contract.functions.init(*init_args), owner)
    return contract


def deploy_trex_suite(
    chain: Chain, *, owner: str, name: str = "T-REX OMN", symbol: str = "TOMN", decimals: int = 0
) -> TrexSuite:
    """Token + identity registry (+ storage, empty claim topics, no trusted issuers) + modular
    compliance without modules; ``owner`` is owner and agent of token and registry; token unpaused."""
    owner = to_address(owner)
    topics = _deploy_init(chain, CLAIM_TOPICS, owner)
    issuers = _deploy_init(chain, TRUSTED_ISSUERS, owner)
    storage = _deploy_init(chain, IDENTITY_STORAGE, owner)
    registry = _deploy_init(chain, IDENTITY_REGISTRY, owner, issuers.address, topics.address, storage.address)
    chain.transact(storage.functions.bindIdentityRegistry(registry.address), owner)
    compliance = _deploy_init(chain, MODULAR_COMPLIANCE, owner)
    token = _deploy_init(
        chain, TOKEN, owner, registry.address, compliance.address, name, symbol, decimals, "0x" + "00" * 20
    )
    chain.transact(registry.functions.addAgent(owner), owner)
    chain.transact(token.functions.addAgent(owner), owner)
    if token.functions.paused().call():
        chain.transact(token.functions.unpause(), owner)
    return TrexSuite(
        chain=chain,
        owner=owner,
        token=token,
        identity_registry=registry,
        identity_storage=storage,
        compliance=compliance,
    )


def deploy_dvd_manager(chain: Chain, owner: str) -> Contract:
    """T-REX's own DvP contract (``DVDTransferManager``), for gas comparison."""
    return chain.deploy(load_trex(DVD_MANAGER), owner)
