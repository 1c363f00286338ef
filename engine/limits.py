"""Numeric limits shared by both engine implementations (the compiled one keeps numbers in int64).

- Command timestamps (``ts``, ``expire_ts``) must fit a signed 64-bit integer: a larger ``ts`` is
  ``INVALID_TIME``, a larger ``expire_ts`` is ``INVALID_ORDER_FLAGS``.
- Instrument specs: quantities (``min_qty``, ``max_qty``) at most ``QTY_LIMIT`` (2**40 lots), the
  price band (``band_low``, ``band_high``) at most ``SPEC_LIMIT`` (2**53 ticks); otherwise
  ``INVALID_INSTRUMENT_SPEC``. ``tick_size`` and ``lot_size`` (token base units, 10**18 for an
  18-decimal token) take no part in matching and have no limit. So a level's total quantity cannot overflow 64 bits
  before it holds 2**23 maximum-size orders, and an order price/quantity beyond them is simply
  outside the band / above the maximum, as before.
"""

INT64_MAX = 2**63 - 1
SPEC_LIMIT = 2**53
QTY_LIMIT = 2**40
