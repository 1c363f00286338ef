"""Engine values -> JSON-ready dicts with decimal strings (shared by REST, websocket and streams)."""

from __future__ import annotations

from typing import Any

from engine import (
    Fill,
    IndicativeUncross,
    InstrumentStatus,
    L2Snapshot,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderView,
    Side,
    TimeInForce,
    TradeOrigin,
)
from gateway.decimals import format_price, format_qty
from gateway.errors import engine_message
from gateway.ports import Listing, SettlementNotice, TradeRecord
from gateway.schemas import OriginText
from market.history import OrderRecord

JSON = dict[str, Any]


_ORIGINS: dict[TradeOrigin, OriginText] = {TradeOrigin.CONTINUOUS: "continuous", TradeOrigin.AUCTION: "auction",
                                          TradeOrigin.RFQ: "rfq", TradeOrigin.BLOCK: "block"}


def origin_text(origin: TradeOrigin) -> OriginText:
    """How a trade printed, as clients read it: continuous, auction, rfq, block."""
    return _ORIGINS[origin]


def side_text(side: Side) -> str:
    return "buy" if side is Side.BUY else "sell"


def status_text(status: InstrumentStatus) -> str:
    return status.name.lower()


def instrument(listing: Listing) -> JSON:
    spec = listing.spec
    return {
        "symbol": spec.symbol,
        "name": listing.name,
        "status": status_text(spec.status),
        "price_increment": format_price(1, listing),
        "quantity_increment": format_qty(1, listing),
        "min_qty": format_qty(spec.min_qty, listing),
        "max_qty": format_qty(spec.max_qty, listing),
        "price_band_low": format_price(spec.band_low, listing),
        "price_band_high": format_price(spec.band_high, listing),
        "token_address": listing.token_address,
        "cash_token_address": listing.cash_token_address,
        "token_decimals": listing.token_decimals,
        "cash_decimals": listing.cash_decimals,
        "maturity_ts": listing.maturity_ts,
    }


def book(snapshot: L2Snapshot, listing: Listing) -> JSON:
    return {
        "symbol": snapshot.symbol,
        "md_seq": snapshot.md_seq,
        "status": status_text(snapshot.status),
        "bids": [{"price": format_price(lv.price, listing), "qty": format_qty(lv.qty, listing), "count": lv.count}
                 for lv in snapshot.bids],
        "asks": [{"price": format_price(lv.price, listing), "qty": format_qty(lv.qty, listing), "count": lv.count}
                 for lv in snapshot.asks],
    }


def public_trade(fill: Fill, listing: Listing) -> JSON:
    return {
        "trade_id": fill.trade_id,
        "symbol": fill.symbol,
        "price": format_price(fill.price, listing),
        "qty": format_qty(fill.qty, listing),
        "aggressor": side_text(fill.aggressor),
        "origin": origin_text(fill.origin),
        "ts": fill.ts,
    }


def trade_record(rec: TradeRecord, listing: Listing) -> JSON:
    return {
        "trade_id": rec.trade_id,
        "symbol": rec.symbol,
        "price": format_price(rec.price, listing),
        "qty": format_qty(rec.qty, listing),
        "aggressor": "buy" if rec.aggressor_buy else "sell",
        "origin": origin_text(rec.origin),
        "premium_bps": rec.premium_bps,
        "ts": rec.ts,
    }


def own_trade(rec: TradeRecord, participant: str, listing: Listing) -> JSON:
    """A trade from one side's point of view; the counterparty is never shown."""
    buyer = rec.buyer == participant
    aggressor_is_me = rec.aggressor_buy == buyer
    return {
        "trade_id": rec.trade_id,
        "symbol": rec.symbol,
        "side": "buy" if buyer else "sell",
        "order_id": rec.buy_order_id if buyer else rec.sell_order_id,
        "price": format_price(rec.price, listing),
        "qty": format_qty(rec.qty, listing),
        "liquidity": "taker" if aggressor_is_me else "maker",
        "settlement": str(rec.settlement),
        "origin": origin_text(rec.origin),
        "premium_bps": rec.premium_bps,
        "ts": rec.ts,
    }


def own_fill(fill: Fill, participant: str, listing: Listing) -> list[JSON]:
    """The fill as seen by ``participant`` (one entry per side they hold: two on a self-match)."""
    out: list[JSON] = []
    for is_taker, order_id, owner, remaining in (
        (False, fill.maker_order_id, fill.maker_participant, fill.maker_remaining),
        (True, fill.taker_order_id, fill.taker_participant, fill.taker_remaining),
    ):
        if owner != participant:
            continue
        side = fill.aggressor if is_taker else fill.aggressor.opposite
        out.append({
            "trade_id": fill.trade_id,
            "symbol": fill.symbol,
            "order_id": order_id,
            "side": side_text(side),
            "price": format_price(fill.price, listing),
            "qty": format_qty(fill.qty, listing),
            "remaining_qty": format_qty(remaining, listing),
            "liquidity": "taker" if is_taker else "maker",
            "origin": origin_text(fill.origin),
            "ts": fill.ts,
        })
    return out


def order_view(view: OrderView, listing: Listing) -> JSON:
    return {
        "order_id": view.order_id,
        "client_order_id": view.client_order_id,
        "symbol": view.symbol,
        "side": side_text(view.side),
        "price": format_price(view.price, listing),
        "qty": format_qty(view.qty, listing),
        "remaining_qty": format_qty(view.remaining, listing),
        "tif": view.tif.name.lower(),
        "expire_ts": view.expire_ts,
        "accepted_ts": view.accepted_ts,
    }


def indicative(event: IndicativeUncross, listing: Listing) -> JSON:
    """A call auction's indicative uncross (price None: nothing would execute now)."""
    side = event.imbalance_side
    return {"type": "indicative", "symbol": event.symbol, "md_seq": event.md_seq,
            "price": None if event.price is None else format_price(event.price, listing),
            "volume": format_qty(event.volume, listing), "imbalance_side": None if side is None else side_text(side),
            "imbalance_qty": format_qty(event.imbalance_qty, listing), "ts": event.ts}


def order_event(
    event: OrderAccepted | OrderRejected | OrderAmended | OrderCancelled | OrderExpired, listing: Listing | None
) -> JSON:
    """An order-lifecycle event for its owner's private ``orders`` channel."""
    def price(ticks: int | None) -> str | None:
        if ticks is None:
            return None
        return format_price(ticks, listing) if listing else str(ticks)

    def qty(lots: int) -> str:
        return format_qty(lots, listing) if listing else str(lots)

    match event:
        case OrderAccepted():
            return {"type": "accepted", "order_id": event.order_id, "client_order_id": event.client_order_id,
                    "symbol": event.symbol, "side": side_text(event.side), "order_type": event.order_type.name.lower(),
                    "tif": TimeInForce(event.tif).name.lower(), "price": price(event.price), "qty": qty(event.qty),
                    "expire_ts": event.expire_ts, "post_only": event.post_only, "ts": event.ts}
        case OrderRejected():
            return {"type": "rejected", "order_id": event.order_id, "client_order_id": event.client_order_id,
                    "symbol": event.symbol, "code": event.code.name, "message": engine_message(event.code),
                    "ts": event.ts}
        case OrderAmended():
            return {"type": "amended", "order_id": event.order_id, "symbol": event.symbol,
                    "side": side_text(event.side), "price": price(event.price), "qty": qty(event.qty),
                    "remaining_qty": qty(event.remaining), "priority_kept": event.priority_kept, "ts": event.ts}
        case OrderCancelled():
            return {"type": "cancelled", "order_id": event.order_id, "symbol": event.symbol,
                    "side": side_text(event.side), "remaining_qty": qty(event.remaining),
                    "reason": event.reason.name.lower(), "ts": event.ts}
        case OrderExpired():
            return {"type": "expired", "order_id": event.order_id, "symbol": event.symbol,
                    "side": side_text(event.side), "remaining_qty": qty(event.remaining), "ts": event.ts}


def settlement(notice: SettlementNotice, participant: str) -> JSON:
    return {
        "trade_id": notice.trade_id,
        "symbol": notice.symbol,
        "side": "buy" if notice.buyer == participant else "sell",
        "state": str(notice.state),
        "tx_hash": notice.tx_hash,
        "block": notice.block,
        "reason": notice.reason,
        "origin": origin_text(notice.origin),
    }


def order_record(rec: OrderRecord, listing: Listing) -> JSON:
    return {
        "order_id": rec.order_id,
        "client_order_id": rec.client_order_id,
        "symbol": rec.symbol,
        "side": side_text(rec.side),
        "type": rec.order_type.name.lower(),
        "price": None if rec.price is None else format_price(rec.price, listing),
        "qty": format_qty(rec.qty, listing),
        "filled_qty": format_qty(rec.filled, listing),
        "remaining_qty": format_qty(rec.remaining, listing),
        "tif": rec.tif.name.lower(),
        "status": rec.state.value,
        "reason": rec.reason,
        "expire_ts": rec.expire_ts,
        "accepted_ts": rec.accepted_ts,
        "updated_ts": rec.updated_ts,
    }
