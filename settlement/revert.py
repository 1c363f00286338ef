"""Turn raw revert data into readable reasons.

Knows ``Error(string)``, ``Panic(uint256)`` and every custom error declared in our artifacts
(which include OpenZeppelin's ERC-20 / access-control errors). ``DeliveryFailed`` and
``PaymentFailed`` from the settlement contract wrap the token's own revert data and are unwrapped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from settlement import artifacts

_ERROR_STRING = bytes.fromhex("08c379a0")
_PANIC = bytes.fromhex("4e487b71")
_PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to uninitialised function",
}
_LEG_PREFIX = {"DeliveryFailed": "delivery leg (token) failed", "PaymentFailed": "payment leg (cash) failed"}


@dataclass(frozen=True, slots=True)
class _ErrorAbi:
    name: str
    types: tuple[str, ...]
    names: tuple[str, ...]


def _abi_type(param: Mapping[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param.get("components", []))
        return f"({inner}){t[5:]}"
    return t


def error_selectors(abis: Iterable[Iterable[Mapping[str, Any]]]) -> dict[bytes, _ErrorAbi]:
    table: dict[bytes, _ErrorAbi] = {}
    for abi in abis:
        for item in abi:
            if item.get("type") != "error":
                continue
            types = tuple(_abi_type(p) for p in item.get("inputs", []))
            names = tuple(str(p.get("name") or f"arg{i}") for i, p in enumerate(item.get("inputs", [])))
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            table[selector] = _ErrorAbi(str(item["name"]), types, names)
    return table


@cache
def _our_errors() -> dict[bytes, _ErrorAbi]:
    return error_selectors(artifacts.load(name).abi for name in artifacts.OUR_CONTRACTS)


def _format_value(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and is_address(value):
        return to_checksum_address(value)
    return str(value)


def decode_revert(data: bytes | str | None, *, extra_errors: Mapping[bytes, _ErrorAbi] | None = None) -> str:
    """A readable reason for raw revert data (hex string or bytes). Never raises."""
    if isinstance(data, str):
        message = data
        try:
            data = bytes.fromhex(message.removeprefix("0x"))
        except ValueError:
            return message  # already a message, not hex data
    if not data:
        return "reverted without reason"
    selector, payload = data[:4], data[4:]
    try:
        if selector == _ERROR_STRING:
            (message,) = abi_decode(["string"], payload)
            return str(message)
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], payload)
            return f"panic: {_PANIC_CODES.get(code, hex(code))}"
        known = dict(_our_errors())
        if extra_errors:
            known.update(extra_errors)
        err = known.get(selector)
        if err is None:
            return f"unknown revert 0x{data.hex()}"
        values = abi_decode(list(err.types), payload)
        if err.name in _LEG_PREFIX:
            return f"{_LEG_PREFIX[err.name]}: {decode_revert(values[0], extra_errors=extra_errors)}"
        if err.name == "InvalidTrade":
            return f"invalid trade: {values[1]}"
        args = ", ".join(f"{n}={_format_value(v)}" for n, v in zip(err.names, values, strict=True))
        return f"{err.name}({args})"
    except DecodingError:
        return f"undecodable revert 0x{data.hex()}"
