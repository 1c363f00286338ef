"""EIP-712 orders signed by an investor's wallet key (secp256k1), as the DvP contract checks them.

An order binds the wallet, note token, cash token, side, limit price, maximum quantity, expiry and
a nonce. The domain is the venue's DvP settlement contract and the chain id, so a signature is good
for one contract on one chain only. Units are the contract's: ``limit_price`` is cash-token base
units per ``PRICE_SCALE`` note-token base units, ``max_quantity`` note-token base units, ``expiry``
unix seconds. On the wire (the ``signed_order`` object of a new order) the integers travel as
decimal strings (they exceed 2**53), the signature as 0x-hex::

    domain = OrderDomain(chain_id=31337, verifying_contract=dvp_address)
    order = order_for(wallet=..., token=..., cash_token=..., side="buy", price=Decimal("101.5"),
                      qty=Decimal(10), token_decimals=18, cash_decimals=6, expiry=..., nonce=1)
    signed = sign_order(order, domain, private_key)      # the wire dict plus "signature"
    recover_signer(signed, domain)                       # the wallet, for an EOA signature
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from venueclient.errors import VenueClientError

PRICE_SCALE = 10**18
DOMAIN_NAME = "OMN DvP"
DOMAIN_VERSION = "1"
ORDER_TYPE = (
    "Order(address wallet,address token,address cashToken,bool sell,uint256 limitPrice,"
    "uint256 maxQuantity,uint256 expiry,uint256 nonce)"
)
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)
_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
#: The EIP-712 types for ``eth_account.Account.sign_typed_data`` (or any wallet's signTypedData).
EIP712_TYPES: dict[str, list[dict[str, str]]] = {
    "Order": [
        {"name": "wallet", "type": "address"},
        {"name": "token", "type": "address"},
        {"name": "cashToken", "type": "address"},
        {"name": "sell", "type": "bool"},
        {"name": "limitPrice", "type": "uint256"},
        {"name": "maxQuantity", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
    ],
}
_UINT_FIELDS = ("limit_price", "max_quantity", "expiry", "nonce")
_ADDRESS_FIELDS = ("wallet", "token", "cash_token")
WIRE_FIELDS = (*_ADDRESS_FIELDS, "side", *_UINT_FIELDS)


class SignedOrderError(VenueClientError):
    """An order that cannot be encoded or signed as given."""

    code = "SIGNED_ORDER_INVALID"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDomain:
    """The EIP-712 domain: the venue's DvP contract on one chain (``GET /v1/signing`` tells both)."""

    chain_id: int
    verifying_contract: str

    def as_eip712(self) -> dict[str, Any]:
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": to_checksum_address(self.verifying_contract)}

    def separator(self) -> bytes:
        return keccak(abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [_DOMAIN_TYPEHASH, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION), self.chain_id,
             to_checksum_address(self.verifying_contract)],
        ))


def order_for(*, wallet: str, token: str, cash_token: str, side: str, price: Decimal, qty: Decimal,
              token_decimals: int, cash_decimals: int, expiry: int, nonce: int) -> dict[str, str]:
    """The wire order for a limit order of ``qty`` notes at ``price`` cash units per note."""
    if side not in ("buy", "sell"):
        raise SignedOrderError(f"side must be 'buy' or 'sell', got {side!r}")
    limit = price * Decimal(10) ** (cash_decimals + 18 - token_decimals)
    quantity = qty * Decimal(10) ** token_decimals
    if limit != limit.to_integral_value() or quantity != quantity.to_integral_value():
        raise SignedOrderError(f"price {price} or qty {qty} has more digits than the tokens carry")
    return {"wallet": to_checksum_address(wallet), "token": to_checksum_address(token),
            "cash_token": to_checksum_address(cash_token), "side": side, "limit_price": str(int(limit)),
            "max_quantity": str(int(quantity)), "expiry": str(expiry), "nonce": str(nonce)}


def eip712_message(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order as the EIP-712 ``Order`` struct (camelCase, integers)."""
    try:
        sell = {"sell": True, "buy": False}[order["side"]]
        ints = {name: int(order[name]) for name in _UINT_FIELDS}
        addresses = {name: to_checksum_address(order[name]) for name in _ADDRESS_FIELDS}
    except (KeyError, TypeError, ValueError) as exc:
        raise SignedOrderError(f"malformed order: {exc}") from exc
    if any(not 0 <= v < 2**256 for v in ints.values()):
        raise SignedOrderError("an integer field is outside uint256")
    return {"wallet": addresses["wallet"], "token": addresses["token"], "cashToken": addresses["cash_token"],
            "sell": sell, "limitPrice": ints["limit_price"], "maxQuantity": ints["max_quantity"],
            "expiry": ints["expiry"], "nonce": ints["nonce"]}


def order_struct_hash(order: Mapping[str, Any]) -> bytes:
    m = eip712_message(order)
    return keccak(abi_encode(
        ["bytes32", "address", "address", "address", "bool", "uint256", "uint256", "uint256", "uint256"],
        [ORDER_TYPEHASH, m["wallet"], m["token"], m["cashToken"], m["sell"], m["limitPrice"],
         m["maxQuantity"], m["expiry"], m["nonce"]],
    ))


def order_digest(order: Mapping[str, Any], domain: OrderDomain) -> bytes:
    """The 32-byte digest the wallet signs; the contract's ``hashOrder`` returns the same."""
    return keccak(b"\x19\x01" + domain.separator() + order_struct_hash(order))


def sign_order(order: Mapping[str, Any], domain: OrderDomain, private_key: str | bytes) -> dict[str, str]:
    """``order`` plus its EOA signature (65 bytes r, s, v as 0x-hex)."""
    signed = Account.unsafe_sign_hash(order_digest(order, domain), private_key)
    return {**{k: str(order[k]) for k in WIRE_FIELDS}, "signature": "0x" + bytes(signed.signature).hex()}


def recover_signer(signed: Mapping[str, Any], domain: OrderDomain) -> str | None:
    """The address whose key made ``signed["signature"]`` (None if it is no valid ECDSA signature).
    For a contract wallet (ERC-1271) this is its owner key, not the wallet: only the chain can tell."""
    try:
        signature = bytes.fromhex(str(signed["signature"]).removeprefix("0x"))
        return str(Account._recover_hash(order_digest(signed, domain), signature=signature))
    except SignedOrderError:
        raise
    except Exception:  # eth_keys raises several types for a malformed signature
        return None


_PERMIT_TYPES: dict[str, list[dict[str, str]]] = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Permit:
    """An EIP-2612 approval by signature: anyone may submit ``permit(owner, spender, value, deadline, v, r, s)``."""

    owner: str
    spender: str
    value: int
    deadline: int
    v: int
    r: bytes
    s: bytes

    def args(self) -> tuple[str, str, int, int, int, bytes, bytes]:
        return (self.owner, self.spender, self.value, self.deadline, self.v, self.r, self.s)


def sign_permit(*, token: str, token_name: str, chain_id: int, owner_key: str | bytes, spender: str, value: int,
                nonce: int, deadline: int, version: str = "1") -> Permit:
    """Sign an EIP-2612 permit for ``token`` (its ``name()`` and the owner's current ``nonces(owner)``),
    so the owner approves ``spender`` (the DvP contract) without sending a transaction."""
    owner = Account.from_key(owner_key).address
    domain = {"name": token_name, "version": version, "chainId": chain_id,
              "verifyingContract": to_checksum_address(token)}
    message = {"owner": owner, "spender": to_checksum_address(spender), "value": value, "nonce": nonce,
               "deadline": deadline}
    signed = Account.sign_typed_data(owner_key, domain, _PERMIT_TYPES, message)
    return Permit(owner=owner, spender=to_checksum_address(spender), value=value, deadline=deadline,
                  v=signed.v, r=signed.r.to_bytes(32, "big"), s=signed.s.to_bytes(32, "big"))


def sign_for(instrument: Mapping[str, Any], *, wallet: str, side: str, qty: Decimal | int | str,
             price: Decimal | int | str, domain: OrderDomain, private_key: str | bytes, expiry: int,
             nonce: int) -> dict[str, str]:
    """The signed order for a limit order on ``instrument`` (its ``GET /v1/instruments`` entry), to pass
    as ``place(..., signed_order=...)``: the venue refuses it unless it matches the order exactly."""
    order = order_for(wallet=wallet, token=str(instrument["token_address"]),
                      cash_token=str(instrument["cash_token_address"]), side=side, price=Decimal(str(price)),
                      qty=Decimal(str(qty)), token_decimals=int(instrument["token_decimals"]),
                      cash_decimals=int(instrument["cash_decimals"]), expiry=expiry, nonce=nonce)
    return sign_order(order, domain, private_key)
