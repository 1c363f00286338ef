"""An investor's EIP-712 signed order, as the venue keeps it beside the engine order and hands it
to settlement (the wire format and the signing live in ``venueclient.signed_orders``).

Units are the DvP contract's: ``limit_price`` cash-token base units per ``PRICE_SCALE`` note-token
base units, ``max_quantity`` note-token base units, ``expiry`` unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE_SCALE = 10**18

OrderTuple = tuple[str, str, str, bool, int, int, int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedOrder:
    wallet: str
    token: str
    cash_token: str
    sell: bool
    limit_price: int
    max_quantity: int
    expiry: int
    nonce: int
    signature: bytes

    def as_tuple(self) -> OrderTuple:
        """The contract's ``Order`` struct."""
        return (self.wallet, self.token, self.cash_token, self.sell, self.limit_price, self.max_quantity,
                self.expiry, self.nonce)

    def to_wire(self) -> dict[str, str]:
        return {"wallet": self.wallet, "token": self.token, "cash_token": self.cash_token,
                "side": "sell" if self.sell else "buy", "limit_price": str(self.limit_price),
                "max_quantity": str(self.max_quantity), "expiry": str(self.expiry), "nonce": str(self.nonce),
                "signature": "0x" + self.signature.hex()}

    def admits(self, *, quantity: int, cash_amount: int) -> bool:
        """Whether a fill of ``quantity`` note base units for ``cash_amount`` is within the limit price."""
        paid, at_limit = cash_amount * PRICE_SCALE, self.limit_price * quantity
        return paid >= at_limit if self.sell else paid <= at_limit


def limit_price_of(*, price_ticks: int, tick_size: int, lot_size: int) -> int | None:
    """The contract limit price of an engine price (``tick_size`` cash base units per lot of ``lot_size``
    note base units), or None when it is not a whole number of contract units."""
    numerator = price_ticks * tick_size * PRICE_SCALE
    return numerator // lot_size if numerator % lot_size == 0 else None


class SignedOrderFormatError(ValueError):
    """A wire ``signed_order`` that is not well formed (the message says which field)."""


def _uint(wire: dict[str, object], name: str) -> int:
    value = wire.get(name)
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) >= 2**256:
        raise SignedOrderFormatError(f"signed_order.{name} must be a uint256 as a decimal string")
    return int(text)


def _address(wire: dict[str, object], name: str) -> str:
    value = wire.get(name)
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise SignedOrderFormatError(f"signed_order.{name} must be a 0x-prefixed 20-byte address")
    try:
        int(value, 16)
    except ValueError:
        raise SignedOrderFormatError(f"signed_order.{name} must be a 0x-prefixed 20-byte address") from None
    return value


def signed_order_from_wire(wire: dict[str, object]) -> SignedOrder:
    """Parse the wire form (``venueclient.signed_orders``); raises ``SignedOrderFormatError``."""
    known = {"wallet", "token", "cash_token", "side", "limit_price", "max_quantity", "expiry", "nonce", "signature"}
    extra = sorted(set(wire) - known)
    if extra:
        raise SignedOrderFormatError(f"signed_order has unknown fields {extra}")
    side = wire.get("side")
    if side not in ("buy", "sell"):
        raise SignedOrderFormatError("signed_order.side must be 'buy' or 'sell'")
    signature = wire.get("signature")
    try:
        sig = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) else b""
    except ValueError:
        sig = b""
    if not sig or len(sig) > 4096:
        raise SignedOrderFormatError("signed_order.signature must be 0x-hex bytes")
    return SignedOrder(wallet=_address(wire, "wallet"), token=_address(wire, "token"),
                       cash_token=_address(wire, "cash_token"), sell=side == "sell",
                       limit_price=_uint(wire, "limit_price"), max_quantity=_uint(wire, "max_quantity"),
                       expiry=_uint(wire, "expiry"), nonce=_uint(wire, "nonce"), signature=sig)
