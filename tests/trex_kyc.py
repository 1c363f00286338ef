"""The reference T-REX suite with a real claim topic (KYC), a trusted ONCHAINID claim issuer, ONCHAINID
identities per wallet and real compliance modules. Test tooling only (the artifacts are GPL and are
loaded from node_modules at run time; ONCHAINID's ``Identity`` / ``ClaimIssuer`` ship inside the
T-REX package under ``artifacts/@onchain-id``).

How verification works in T-REX 4.1.6 + ONCHAINID 2.x (what these helpers exercise):
``IdentityRegistry.isVerified(wallet)`` requires an identity contract for the wallet and, for every
required claim topic, a claim on that identity whose id is ``keccak256(abi.encode(issuer, topic))``
from a trusted issuer for the topic, with ``issuer.isClaimValid(identity, topic, sig, data)`` true.
``ClaimIssuer.isClaimValid`` recovers the signer of ``keccak256(abi.encode(identity, topic, data))``
(eth_sign prefix), requires it to hold a CLAIM key (purpose 3) on the issuer and the signature not
to be revoked. The bundled ClaimIssuer has no notion of expiry: an expired KYC claim is revoked or
removed on chain (or handled off chain through the participant's ``kyc_expiry_ts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3.contract.contract import Contract

from settlement import Chain
from settlement.artifacts import NODE_MODULES, Artifact, _read, load_trex
from settlement.chain import to_address
from settlement.trex import TrexSuite, deploy_trex_suite

ONCHAINID_DIR = NODE_MODULES / "@tokenysolutions" / "t-rex" / "artifacts" / "@onchain-id" / "solidity" / "contracts"
KYC = int.from_bytes(keccak(text="KYC"), "big")  # the claim topic
ECDSA = 1  # claim scheme
CLAIM_PURPOSE = 3
CLAIM_TOPICS = "registry/implementation/ClaimTopicsRegistry.sol/ClaimTopicsRegistry.json"
TRUSTED_ISSUERS = "registry/implementation/TrustedIssuersRegistry.sol/TrustedIssuersRegistry.json"
MODULE_PROXY = "compliance/modular/modules/ModuleProxy.sol/ModuleProxy.json"
COUNTRY_RESTRICT = "compliance/modular/modules/CountryRestrictModule.sol/CountryRestrictModule.json"
MAX_BALANCE = "compliance/modular/modules/MaxBalanceModule.sol/MaxBalanceModule.json"


def onchainid(name: str) -> Artifact:
    path: Path = ONCHAINID_DIR / f"{name}.sol" / f"{name}.json"
    return _read(path, name)


@dataclass
class KycTrex:
    """A T-REX suite requiring the KYC topic from one trusted ``ClaimIssuer``."""

    suite: TrexSuite
    issuer: Contract  # ONCHAINID ClaimIssuer, trusted for KYC
    issuer_key: ChecksumAddress  # its management key, also the claim signer
    topics_registry: Contract
    issuers_registry: Contract
    identities: dict[str, Contract] = field(default_factory=dict)  # wallet -> ONCHAINID Identity
    signatures: dict[str, bytes] = field(default_factory=dict)  # wallet -> its KYC claim signature
    modules: dict[str, Contract] = field(default_factory=dict)  # name -> module proxy

    @property
    def chain(self) -> Chain:
        return self.suite.chain

    @property
    def owner(self) -> ChecksumAddress:
        return to_address(self.suite.owner)

    @property
    def token(self) -> Contract:
        return self.suite.token

    def claim_id(self, topic: int = KYC) -> bytes:
        return keccak(encode(["address", "uint256"], [self.issuer.address, topic]))

    def sign(self, identity: str, topic: int = KYC, data: bytes = b"kyc:ok") -> bytes:
        digest = keccak(encode(["address", "uint256", "bytes"], [to_address(identity), topic, data]))
        signed = Account.sign_message(encode_defunct(primitive=digest), self.chain.private_key(self.issuer_key))
        return bytes(signed.signature)

    def onboard(self, wallet: str, country: int, *, claim: bool = True) -> Contract:
        """Deploy the wallet's ONCHAINID (the wallet is its management key), register it, add a KYC claim."""
        wallet = to_address(wallet)
        identity = self.chain.deploy(onchainid("Identity"), wallet, wallet, False)
        self.identities[wallet.lower()] = identity
        self.chain.transact(
            self.suite.identity_registry.functions.registerIdentity(wallet, identity.address, country), self.owner
        )
        if claim:
            self.add_claim(wallet)
        return identity

    def identity(self, wallet: str) -> Contract:
        return self.identities[wallet.lower()]

    def add_claim(self, wallet: str, topic: int = KYC, data: bytes = b"kyc:ok") -> None:
        identity = self.identity(wallet)
        sig = self.sign(identity.address, topic, data)
        self.signatures[wallet.lower()] = sig
        self.chain.transact(identity.functions.addClaim(topic, ECDSA, self.issuer.address, sig, data, ""),
                            to_address(wallet))

    def revoke(self, wallet: str) -> None:
        """``ClaimIssuer.revokeClaim(claimId, identity)`` (by the issuer's management key)."""
        self.chain.transact(self.issuer.functions.revokeClaim(self.claim_id(), self.identity(wallet).address),
                            self.issuer_key)

    def revoke_by_signature(self, wallet: str) -> None:
        self.chain.transact(self.issuer.functions.revokeClaimBySignature(self.signatures[wallet.lower()]),
                            self.issuer_key)

    def remove_claim(self, wallet: str) -> None:
        """The identity owner removes its own KYC claim (``ClaimRemoved`` on the identity)."""
        self.chain.transact(self.identity(wallet).functions.removeClaim(self.claim_id()), to_address(wallet))

    def mint(self, wallet: str, amount: int) -> None:
        self.suite.mint(wallet, amount)

    # ------------------------------------------------------------ compliance modules

    def add_module(self, name: str, relative: str) -> Contract:
        """Deploy a T-REX module behind its ``ModuleProxy`` and add it to the token's ModularCompliance."""
        impl = self.chain.deploy(load_trex(relative), self.owner)
        init = impl.encode_abi("initialize", [])
        proxy = self.chain.deploy(load_trex(MODULE_PROXY), self.owner, impl.address, init)
        module = self.chain.contract(proxy.address, load_trex(relative).abi)
        self.chain.transact(self.suite.compliance.functions.addModule(module.address), self.owner)
        self.modules[name] = module
        return module

    def call_module(self, name: str, fn: str, *args: object) -> None:
        """A module setting goes through ``ModularCompliance.callModuleFunction`` (modules only accept
        calls from their bound compliance)."""
        module = self.modules[name]
        data = module.encode_abi(fn, list(args))
        self.chain.transact(self.suite.compliance.functions.callModuleFunction(data, module.address), self.owner)

    def remove_module(self, name: str) -> None:
        module = self.modules.pop(name)
        self.chain.transact(self.suite.compliance.functions.removeModule(module.address), self.owner)


def deploy_kyc_trex(chain: Chain, *, owner: str) -> KycTrex:
    """T-REX token + registries requiring the KYC topic, one trusted ClaimIssuer (a fresh key)."""
    suite = deploy_trex_suite(chain, owner=owner)
    owner = to_address(owner)
    topics = chain.contract(suite.identity_registry.functions.topicsRegistry().call(), load_trex(CLAIM_TOPICS).abi)
    issuers = chain.contract(suite.identity_registry.functions.issuersRegistry().call(),
                             load_trex(TRUSTED_ISSUERS).abi)
    issuer_key = chain.new_account()
    issuer = chain.deploy(onchainid("ClaimIssuer"), issuer_key, issuer_key)
    chain.transact(topics.functions.addClaimTopic(KYC), owner)
    chain.transact(issuers.functions.addTrustedIssuer(issuer.address, [KYC]), owner)
    return KycTrex(suite=suite, issuer=issuer, issuer_key=issuer_key, topics_registry=topics,
                   issuers_registry=issuers)
