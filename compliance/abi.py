"""Minimal ABI fragments for the ERC-3643 reads and events the watcher needs (written here, not copied)."""

from __future__ import annotations

from typing import Any

from eth_utils.crypto import keccak


def _fn(name: str, inputs: list[str], output: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [{"name": f"arg{i}", "type": t} for i, t in enumerate(inputs)],
        "outputs": [{"name": "", "type": output}],
    }


ERC20_ABI: list[dict[str, Any]] = [
    _fn("balanceOf", ["address"], "uint256"),
    _fn("allowance", ["address", "address"], "uint256"),
]

SECURITY_TOKEN_ABI: list[dict[str, Any]] = [
    *ERC20_ABI,
    _fn("identityRegistry", [], "address"),
    _fn("compliance", [], "address"),
    _fn("paused", [], "bool"),
    _fn("isFrozen", ["address"], "bool"),
    _fn("getFrozenTokens", ["address"], "uint256"),
]

IDENTITY_REGISTRY_ABI: list[dict[str, Any]] = [
    _fn("isVerified", ["address"], "bool"),
    _fn("investorCountry", ["address"], "uint16"),
    _fn("identity", ["address"], "address"),
]

# T-REX identity registry: where its required claim topics and trusted claim issuers live
TREX_REGISTRY_ABI: list[dict[str, Any]] = [
    _fn("issuersRegistry", [], "address"),
    _fn("topicsRegistry", [], "address"),
]

TRUSTED_ISSUERS_ABI: list[dict[str, Any]] = [_fn("getTrustedIssuers", [], "address[]")]

# ERC-3643 compliance (``getModules`` only on T-REX's ModularCompliance)
COMPLIANCE_ABI: list[dict[str, Any]] = [
    _fn("canTransfer", ["address", "address", "uint256"], "bool"),
    _fn("getModules", [], "address[]"),
]


def topic(signature: str) -> bytes:
    return keccak(text=signature)


# ERC-20 (security token and stablecoin)
TRANSFER = topic("Transfer(address,address,uint256)")
APPROVAL = topic("Approval(address,address,uint256)")
# ERC-3643 token
ADDRESS_FROZEN = topic("AddressFrozen(address,bool,address)")
TOKENS_FROZEN = topic("TokensFrozen(address,uint256)")
TOKENS_UNFROZEN = topic("TokensUnfrozen(address,uint256)")
PAUSED = topic("Paused(address)")
UNPAUSED = topic("Unpaused(address)")
IDENTITY_REGISTRY_ADDED = topic("IdentityRegistryAdded(address)")
COMPLIANCE_ADDED = topic("ComplianceAdded(address)")
# ERC-3643 identity registry
IDENTITY_REGISTERED = topic("IdentityRegistered(address,address)")
IDENTITY_REMOVED = topic("IdentityRemoved(address,address)")
IDENTITY_UPDATED = topic("IdentityUpdated(address,address)")
COUNTRY_UPDATED = topic("CountryUpdated(address,uint16)")
CLAIM_TOPICS_REGISTRY_SET = topic("ClaimTopicsRegistrySet(address)")
TRUSTED_ISSUERS_REGISTRY_SET = topic("TrustedIssuersRegistrySet(address)")
IDENTITY_STORAGE_SET = topic("IdentityStorageSet(address)")
# T-REX claim topics / trusted issuers registries
CLAIM_TOPIC_ADDED = topic("ClaimTopicAdded(uint256)")
CLAIM_TOPIC_REMOVED = topic("ClaimTopicRemoved(uint256)")
TRUSTED_ISSUER_ADDED = topic("TrustedIssuerAdded(address,uint256[])")
TRUSTED_ISSUER_REMOVED = topic("TrustedIssuerRemoved(address)")
CLAIM_TOPICS_UPDATED = topic("ClaimTopicsUpdated(address,uint256[])")
# ONCHAINID identities (ERC-734/735) and claim issuers
_CLAIM_ARGS = "(bytes32,uint256,uint256,address,bytes,bytes,string)"
CLAIM_ADDED = topic("ClaimAdded" + _CLAIM_ARGS)
CLAIM_REMOVED = topic("ClaimRemoved" + _CLAIM_ARGS)
CLAIM_CHANGED = topic("ClaimChanged" + _CLAIM_ARGS)
CLAIM_REVOKED = topic("ClaimRevoked(bytes)")
KEY_ADDED = topic("KeyAdded(bytes32,uint256,uint256)")
KEY_REMOVED = topic("KeyRemoved(bytes32,uint256,uint256)")

TOKEN_TOPICS = (TRANSFER, APPROVAL, ADDRESS_FROZEN, TOKENS_FROZEN, TOKENS_UNFROZEN, PAUSED, UNPAUSED,
                IDENTITY_REGISTRY_ADDED, COMPLIANCE_ADDED)
REGISTRY_SETUP_TOPICS = (CLAIM_TOPICS_REGISTRY_SET, TRUSTED_ISSUERS_REGISTRY_SET, IDENTITY_STORAGE_SET)
REGISTRY_TOPICS = (IDENTITY_REGISTERED, IDENTITY_REMOVED, IDENTITY_UPDATED, COUNTRY_UPDATED, *REGISTRY_SETUP_TOPICS)
CLAIM_SETUP_TOPICS = (CLAIM_TOPIC_ADDED, CLAIM_TOPIC_REMOVED, TRUSTED_ISSUER_ADDED, TRUSTED_ISSUER_REMOVED,
                      CLAIM_TOPICS_UPDATED)
IDENTITY_CLAIM_TOPICS = (CLAIM_ADDED, CLAIM_REMOVED, CLAIM_CHANGED)
ISSUER_TOPICS = (CLAIM_REVOKED, KEY_ADDED, KEY_REMOVED)  # a removed signing key invalidates its claims
ALL_TOPICS = (*TOKEN_TOPICS, *REGISTRY_TOPICS, *CLAIM_SETUP_TOPICS, *IDENTITY_CLAIM_TOPICS, *ISSUER_TOPICS)


def topic_address(word: bytes) -> str:
    """An indexed ``address`` argument (a 32-byte topic) as a lower-case hex address."""
    return "0x" + bytes(word)[-20:].hex()
