"""The ``signed_order`` of a new order: parsed here into the canonical form the venue journals with the
order (``NewOrder.attachment``). The venue checks the signature and that the fields match the order
(``venue.signed``) before the engine sees it."""

from __future__ import annotations

import json

from gateway.errors import ApiError
from gateway.schemas import SignedOrderBody
from market.signed import SignedOrderFormatError, signed_order_from_wire


def signed_attachment(body: SignedOrderBody | None) -> str:
    """Canonical JSON of the signed order ("" without one); ``SIGNED_ORDER_MALFORMED`` if it does not parse."""
    if body is None:
        return ""
    try:
        order = signed_order_from_wire(dict(body.model_dump()))
    except SignedOrderFormatError as exc:
        raise ApiError("SIGNED_ORDER_MALFORMED", str(exc)) from None
    return json.dumps(order.to_wire(), sort_keys=True, separators=(",", ":"))
