"""Issue 12 item 3: client order ids are rebuilt from the journal at recovery, every new order the
journal holds (a filled IOC too, not only open orders): a retry after a restart is refused with
CLIENT_ORDER_ID_REUSED and never reaches the sequencer."""

from __future__ import annotations

from compliance import Gatekeeper
from engine import AddInstrument, CancelOrder, NewOrder, Side, TimeInForce
from tests.compliance.world import SYMBOL
from tests.venue.test_pipeline import WORLD, _order, venue  # noqa: F401  (the fixture)
from venue.core import VenueCore


async def test_a_journaled_client_order_id_is_refused_after_recovery(
    venue: tuple[VenueCore, Gatekeeper],  # noqa: F811
) -> None:
    core, gk = venue
    ioc = NewOrder(ts=1, participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=WORLD.qty, price=WORLD.price,
                   tif=TimeInForce.IOC, client_order_id="ioc-1")
    journal = [(1, AddInstrument(ts=1, spec=core.listing(SYMBOL).spec)),  # type: ignore[union-attr]
               (2, ioc), (3, CancelOrder(ts=2, participant="buyer", order_id=1)),
               (4, _order("seller", Side.SELL, "ioc-1"))]  # the same id under another participant
    assert core.pipeline.remember_client_ids(journal) == 2
    again = await core.submit("buyer", ioc)
    assert again.rejection is not None and again.rejection.code == "CLIENT_ORDER_ID_REUSED"
    assert again.ack is not None and again.ack.client_order_id == "ioc-1"
    assert core.open_orders("buyer") == [] and gk.open_holds() == 0
    assert core.rejection_counts() == {"CLIENT_ORDER_ID_REUSED": 1}
    other = await core.submit("buyer", _order("buyer", Side.BUY, "ioc-2"))
    assert other.rejection is None and other.ack is not None and other.ack.order_id is not None
    theirs = await core.submit("seller", _order("seller", Side.SELL, "ioc-1"))
    assert theirs.rejection is not None and theirs.rejection.code == "CLIENT_ORDER_ID_REUSED"
