"""Request and response bodies (pydantic, strict: unknown fields and type coercion are refused).

Decimals travel as strings (price in cash-token units per note, quantities in notes); ids and
timestamps (integer nanoseconds since the epoch) as integers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import ERROR_CODES

MAX_ID = 2**63 - 1

ClientOrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Symbol = Annotated[str, Field(min_length=1, max_length=32)]
DecimalText = Annotated[str, Field(description="plain decimal string, e.g. \"101.25\"", examples=["10"])]
OrderId = Annotated[int, Field(ge=1, le=MAX_ID)]
SideText = Literal["buy", "sell"]
OriginText = Literal["continuous", "auction", "rfq", "block"]  # how a trade printed


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


UintText = Annotated[str, Field(pattern=r"^[0-9]{1,78}$", description="unsigned integer as a decimal string")]
AddressText = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]


class SignedOrderBody(Strict):
    """An EIP-712 order signed by the participant's wallet (``venueclient.signed_orders``; units are the
    DvP contract's: ``limit_price`` cash base units per 10**18 note base units, ``max_quantity`` note
    base units, ``expiry`` unix seconds). It must match the order it travels with."""

    wallet: AddressText
    token: AddressText
    cash_token: AddressText
    side: SideText
    limit_price: UintText
    max_quantity: UintText
    expiry: UintText
    nonce: UintText
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{2,2048}$")]


class NewOrderRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"symbol": "OMN-A", "side": "buy", "qty": "10", "price": "101.25", "client_order_id": "mm-000123"},
        {"symbol": "OMN-A", "side": "sell", "qty": "2.5", "type": "market", "price": "99", "tif": "ioc"},
    ]})

    symbol: Symbol
    side: SideText
    qty: DecimalText
    price: DecimalText | None = Field(default=None, description="limit price; protection price for market orders")
    type: Literal["limit", "market"] = "limit"
    tif: Literal["gtc", "gtd", "ioc", "fok"] = "gtc"
    expire_ts: Annotated[int, Field(ge=0, le=MAX_ID)] | None = Field(default=None, description="GTD only, ns")
    post_only: bool = False
    stp: Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"] = "cancel_newest"
    client_order_id: ClientOrderId | None = Field(
        default=None, description="idempotency key per participant; generated when absent"
    )
    signed_order: SignedOrderBody | None = Field(
        default=None, description="the order signed by the wallet (signed mode); checked before the engine"
    )


class AmendRequest(Strict):
    """Address the order by ``order_id`` or ``client_order_id`` (exactly one); give price and/or qty."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"client_order_id": "mm-000123", "price": "101.5"}]})

    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None
    price: DecimalText | None = None
    qty: DecimalText | None = Field(default=None, description="new total quantity (includes filled)")


class CancelRequest(Strict):
    """Address the order by ``order_id`` or ``client_order_id`` (exactly one)."""

    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None


class MassCancelRequest(Strict):
    """Cancels the caller's open orders, optionally only of one instrument and/or side."""

    symbol: Symbol | None = None
    side: SideText | None = None


class StatusRequest(Strict):
    status: Literal["pre_open", "open", "halted", "closed", "call"]  # call: a call auction (venue.auctions)


# ---------------------------------------------------------------- responses


class ErrorDetail(BaseModel):
    code: str = Field(description="stable error code (``market.codes``; one HTTP status per code)",
                      json_schema_extra={"enum": list(ERROR_CODES)})
    message: str
    retry_after: float | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class FillInfo(BaseModel):
    trade_id: int
    symbol: str
    order_id: int
    side: SideText
    price: str
    qty: str
    liquidity: Literal["maker", "taker"]
    premium_bps: int | None = Field(None, description="premium (+) / discount (-) to the NAV in force at the "
                                    "trade, basis points; null when the note had no NAV")
    ts: int


class OrderAck(BaseModel):
    order_id: int
    client_order_id: str
    symbol: str
    side: SideText
    status: Literal["open", "partially_filled", "filled", "cancelled"]
    price: str | None
    qty: str
    filled_qty: str
    remaining_qty: str
    fills: list[FillInfo]
    cancel_reason: str | None = None
    priority_kept: bool | None = None
    ts: int


class MassCancelAck(BaseModel):
    cancelled: list[int]


class OrderInfo(BaseModel):
    order_id: int
    client_order_id: str
    symbol: str
    side: SideText
    price: str
    qty: str
    remaining_qty: str
    tif: str
    expire_ts: int | None
    accepted_ts: int


class OrderDetail(BaseModel):
    """One order as it stands now: on the book, or its final state once filled, cancelled or expired."""

    order_id: int
    client_order_id: str
    symbol: str
    side: SideText
    type: Literal["limit", "market"]
    price: str | None  # None: market order without a protection price
    qty: str
    filled_qty: str
    remaining_qty: str
    tif: str
    status: Literal["open", "partially_filled", "filled", "cancelled", "expired"]
    reason: str | None = Field(description="why it left the book early: user, mass_cancel, ioc_remainder, "
                                           "self_trade_prevention, instrument_closed, instrument_matured, "
                                           "disconnect, expired")
    expire_ts: int | None
    accepted_ts: int
    updated_ts: int


class InstrumentInfo(BaseModel):
    symbol: str
    name: str
    status: str
    price_increment: str
    quantity_increment: str
    min_qty: str
    max_qty: str
    price_band_low: str
    price_band_high: str
    token_address: str
    cash_token_address: str
    token_decimals: int
    cash_decimals: int
    maturity_ts: int | None


class BookLevel(BaseModel):
    price: str
    qty: str
    count: int


class BookSnapshot(BaseModel):
    symbol: str
    md_seq: int
    status: str
    bids: list[BookLevel]
    asks: list[BookLevel]


class TradeInfo(BaseModel):
    trade_id: int
    symbol: str
    price: str
    qty: str
    aggressor: SideText
    origin: OriginText
    premium_bps: int | None = Field(None, description="premium (+) / discount (-) to the NAV in force at the "
                                    "trade, basis points; null when the note had no NAV")
    ts: int


class OwnTradeInfo(BaseModel):
    trade_id: int
    symbol: str
    side: SideText
    order_id: int
    price: str
    qty: str
    liquidity: Literal["maker", "taker"]
    settlement: str
    origin: OriginText
    premium_bps: int | None = Field(None, description="premium (+) / discount (-) to the NAV in force, bps")
    ts: int


class StatusAck(BaseModel):
    symbol: str
    status: str


class CancelAck(BaseModel):
    order_id: int
    symbol: str
    side: SideText
    status: Literal["cancelled"]
    cancelled_qty: str
    ts: int
