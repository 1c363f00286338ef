"""The venue's shared vocabulary: types every package above ``engine`` speaks.

``market.history``: trade and order history queries (``TradeQuery``, ``Page``, ``OrderRecord``).
"""

from market.history import (
    CursorError,
    HistoricTrade,
    OrderRecord,
    OrderState,
    Page,
    TradeQuery,
    decode_cursor,
    encode_cursor,
    page_of,
)

__all__ = [
    "CursorError",
    "HistoricTrade",
    "OrderRecord",
    "OrderState",
    "Page",
    "TradeQuery",
    "decode_cursor",
    "encode_cursor",
    "page_of",
]
