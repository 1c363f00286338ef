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
    _fn("paused", [], "bool"),
    _fn("isFrozen", ["address"], "bool"),
    _fn("getFrozenTokens", ["address"], "uint256"),
]

IDENTITY_REGISTRY_ABI: list[dict[str, Any]] = [
    _fn("isVerified", ["address"], "bool"),
    _fn("investorCountry", ["address"], "uint16"),
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
# ERC-3643 identity registry
IDENTITY_REGISTERED = topic("IdentityRegistered(address,address)")
IDENTITY_REMOVED = topic("IdentityRemoved(address,address)")
IDENTITY_UPDATED = topic("IdentityUpdated(address,address)")
COUNTRY_UPDATED = topic("CountryUpdated(address,uint16)")

TOKEN_TOPICS = (TRANSFER, APPROVAL, ADDRESS_FROZEN, TOKENS_FROZEN, TOKENS_UNFROZEN, PAUSED, UNPAUSED,
                IDENTITY_REGISTRY_ADDED)
REGISTRY_TOPICS = (IDENTITY_REGISTERED, IDENTITY_REMOVED, IDENTITY_UPDATED, COUNTRY_UPDATED)
ALL_TOPICS = (*TOKEN_TOPICS, *REGISTRY_TOPICS)


def topic_address(word: bytes) -> str:
    """An indexed ``address`` argument (a 32-byte topic) as a lower-case hex address."""
    return "0x" + bytes(word)[-20:].hex()
