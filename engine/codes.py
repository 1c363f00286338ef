"""Result codes of the engine, grouped by area (exchange-core ``CommandResultCode`` style).

Expected rejections are codes, never exceptions. The numeric value and the name are both
stable API: the gateway exposes ``code.name`` as the error code string.
"""

from enum import IntEnum, unique


@unique
class ResultCode(IntEnum):
    OK = 0

    # 1xx instrument
    UNKNOWN_INSTRUMENT = 101
    INSTRUMENT_EXISTS = 102
    INSTRUMENT_NOT_OPEN = 103  # pre-open: no order entry yet
    INSTRUMENT_HALTED = 104
    INSTRUMENT_CLOSED = 105
    INVALID_STATUS_TRANSITION = 106
    INVALID_INSTRUMENT_SPEC = 107

    # 2xx order validation
    INVALID_QUANTITY = 201  # zero or negative lots
    QUANTITY_BELOW_MIN = 202
    QUANTITY_ABOVE_MAX = 203
    INVALID_PRICE = 204  # zero or negative ticks
    PRICE_OUTSIDE_BAND = 205
    MISSING_PRICE = 206  # limit order without price
    MISSING_EXPIRY = 207  # GTD without expiry
    EXPIRY_IN_PAST = 208
    INVALID_ORDER_FLAGS = 209  # e.g. post-only with market/IOC/FOK, expiry on non-GTD

    # 3xx matching outcome rejections
    POST_ONLY_WOULD_CROSS = 301
    FOK_NOT_FILLABLE = 302
    NO_LIQUIDITY = 303  # market order with nothing to match within protection

    # 4xx order management
    UNKNOWN_ORDER = 401  # also used for another participant's order: never leak existence
    AMEND_NO_CHANGE = 402
    AMEND_QTY_TOO_LOW = 403  # new total quantity not above the filled quantity
    INVALID_TIME = 404  # command timestamp earlier than the engine clock

    # 5xx phases, call auction, crosses
    NOT_ALLOWED_IN_CALL = 501  # IOC, FOK, market orders and crosses during a call auction
    SELF_CROSS = 502  # a cross whose buyer is its seller
    INVALID_TRADE_ORIGIN = 503  # a cross must be RFQ or BLOCK
    NOT_IN_CALL = 504  # uncross of an instrument that is not in a call auction
    BOOK_CROSSED = 505  # a halted instrument with a crossed book (halted during a call) reopens only via a call


@unique
class CancelReason(IntEnum):
    USER = 1
    MASS_CANCEL = 2
    IOC_REMAINDER = 3  # IOC / market remainder after matching
    SELF_TRADE_PREVENTION = 4
    INSTRUMENT_CLOSED = 5
    DISCONNECT = 6  # mass cancel issued for a session's cancel-on-disconnect
    INSTRUMENT_MATURED = 7  # the note series reached its trading end (the venue's maturity close)
