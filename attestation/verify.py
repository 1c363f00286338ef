"""Client-side verification of EAS delegated attestations: rebuild the EIP-712 message, hash it the
way EAS does, recover the signer. Needs nothing of the venue: the domain (name, version, chain id,
EAS address) and the request fields are all public.

A few lines of web3 do the same (see the README)::

    domain = eas.functions.eip712Domain().call()   # (fields, name, version, chainId, verifyingContract, ...)
    signer = recover_attester(Eip712Domain(name=domain[1], version=domain[2], chain_id=domain[3],
                                           verifying_contract=domain[4]), request, signature)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_keys.datatypes import Signature as _EcdsaSignature
from eth_keys.exceptions import BadSignature
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3

from attestation.errors import AttestationConfigError

ATTEST_TYPE = [
    {"name": "attester", "type": "address"},
    {"name": "schema", "type": "bytes32"},
    {"name": "recipient", "type": "address"},
    {"name": "expirationTime", "type": "uint64"},
    {"name": "revocable", "type": "bool"},
    {"name": "refUID", "type": "bytes32"},
    {"name": "data", "type": "bytes"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]
ATTEST_TYPEHASH = keccak(
    text="Attest(address attester,bytes32 schema,address recipient,uint64 expirationTime,bool revocable,"
    "bytes32 refUID,bytes data,uint256 value,uint256 nonce,uint64 deadline)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Eip712Domain:
    name: str
    version: str
    chain_id: int
    verifying_contract: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    v: int
    r: bytes
    s: bytes

    def to_hex(self) -> str:
        """65-byte ``r || s || v`` as 0x hex (the usual wire form)."""
        return "0x" + self.r.hex() + self.s.hex() + bytes([self.v]).hex()

    @classmethod
    def from_hex(cls, text: str) -> Signature:
        raw = bytes.fromhex(text.removeprefix("0x"))
        if len(raw) != 65:
            raise AttestationConfigError(f"a signature is 65 bytes, got {len(raw)}")
        return cls(r=raw[:32], s=raw[32:64], v=raw[64])


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestRequest:
    """The EIP-712 ``Attest`` message EAS checks in ``attestByDelegation``."""

    attester: str
    schema: bytes
    recipient: str
    expiration_time: int
    revocable: bool
    ref_uid: bytes
    data: bytes
    value: int
    nonce: int
    deadline: int


def typed_data(domain: Eip712Domain, request: AttestRequest) -> dict[str, Any]:
    """The full EIP-712 document (what a wallet shows and signs)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Attest": ATTEST_TYPE,
        },
        "primaryType": "Attest",
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": Web3.to_checksum_address(domain.verifying_contract),
        },
        "message": {
            "attester": Web3.to_checksum_address(request.attester),
            "schema": request.schema,
            "recipient": Web3.to_checksum_address(request.recipient),
            "expirationTime": request.expiration_time,
            "revocable": request.revocable,
            "refUID": request.ref_uid,
            "data": request.data,
            "value": request.value,
            "nonce": request.nonce,
            "deadline": request.deadline,
        },
    }


def _signable(domain: Eip712Domain, request: AttestRequest) -> SignableMessage:
    return encode_typed_data(full_message=typed_data(domain, request))


def attest_digest(domain: Eip712Domain, request: AttestRequest) -> bytes:
    """``keccak256(0x1901 || domainSeparator || hashStruct(Attest))``: the hash EAS recovers from."""
    msg = _signable(domain, request)
    return keccak(b"\x19" + msg.version + msg.header + msg.body)


def sign_attest(domain: Eip712Domain, request: AttestRequest, private_key: bytes) -> Signature:
    signed = Account.sign_message(_signable(domain, request), private_key)
    return Signature(v=signed.v, r=signed.r.to_bytes(32, "big"), s=signed.s.to_bytes(32, "big"))


def recover_attester(domain: Eip712Domain, request: AttestRequest, signature: Signature) -> ChecksumAddress:
    """The address that signed ``request`` under ``domain``."""
    v = signature.v - 27 if signature.v >= 27 else signature.v
    sig = _EcdsaSignature(vrs=(v, int.from_bytes(signature.r, "big"), int.from_bytes(signature.s, "big")))
    public_key = sig.recover_public_key_from_msg_hash(attest_digest(domain, request))
    return Web3.to_checksum_address(public_key.to_checksum_address())


def verify_attest_signature(domain: Eip712Domain, request: AttestRequest, signature: Signature) -> bool:
    """True when ``signature`` is ``request.attester``'s signature of ``request`` (any other signer: False)."""
    try:
        return recover_attester(domain, request, signature) == Web3.to_checksum_address(request.attester)
    except (ValueError, TypeError, BadSignature):
        return False
