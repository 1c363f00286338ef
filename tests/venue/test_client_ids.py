"""Issue 12 item 3: client order ids are rebuilt from the journal at recovery, every new order the
journal holds (a filled IOC too, not only open orders): a retry after a restart is refused with
CLIENT_ORDER_ID_REUSED and never reaches the sequencer."""

from __future__ import annotations

from pathlib import Path

from compliance import Gatekeeper
from engine import AddInstrument, AmendOrder, CancelOrder, NewOrder, Side, TimeInForce
from journal import Journal
from tests.compliance.world import SELLER_WALLET, SYMBOL, TOKEN
from tests.venue.test_pipeline import WORLD, _order, venue  # noqa: F401  (the fixture)
from venue.core import VenueCore


async def test_a_journaled_client_order_id_is_refused_after_recovery(
    venue: tuple[VenueCore, Gatekeeper], tmp_path: Path,  # noqa: F811
) -> None:
    core, gk = venue
    ioc = NewOrder(ts=1, participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=WORLD.qty, price=WORLD.price,
                   tif=TimeInForce.IOC, client_order_id="ioc-1")
    directory = tmp_path / "journal"
    with Journal.open(directory) as journal:
        journal.append_batch([(1, AddInstrument(ts=1, spec=core.listing(SYMBOL).spec)),  # type: ignore[union-attr]
                              (2, ioc), (3, CancelOrder(ts=2, participant="buyer", order_id=1)),
                              (4, _order("seller", Side.SELL, "ioc-1")),  # the same id, another participant
                              (5, _order("seller", Side.SELL, ""))])  # no id: nothing to remember
    with Journal.open(directory) as journal:
        assert core.pipeline.remember_client_ids(journal.client_order_ids()) == 2
    again = await core.submit("buyer", ioc)
    assert again.rejection is not None and again.rejection.code == "CLIENT_ORDER_ID_REUSED"
    assert again.ack is not None and again.ack.client_order_id == "ioc-1"
    assert core.open_orders("buyer") == [] and gk.open_holds() == 0
    assert core.rejection_counts() == {"CLIENT_ORDER_ID_REUSED": 1}
    other = await core.submit("buyer", _order("buyer", Side.BUY, "ioc-2"))
    assert other.rejection is None and other.ack is not None and other.ack.order_id is not None
    theirs = await core.submit("seller", _order("seller", Side.SELL, "ioc-1"))
    assert theirs.rejection is not None and theirs.rejection.code == "CLIENT_ORDER_ID_REUSED"


async def test_a_frozen_seller_cannot_reprice_a_resting_order(venue: tuple[VenueCore, Gatekeeper]) -> None:  # noqa: F811
    """Issue 12 item 7 through the pipeline: the re-price runs the gate like a new order."""
    core, gk = venue
    placed = await core.submit("seller", _order("seller", Side.SELL, "s-1"))
    assert placed.ack is not None and placed.ack.order_id is not None
    gk.cache.set_frozen(TOKEN, SELLER_WALLET, True)
    amend = AmendOrder(ts=0, participant="seller", order_id=placed.ack.order_id, price=WORLD.price - 1)
    refused = await core.submit("seller", amend)
    assert refused.rejection is not None and refused.rejection.code == "WALLET_FROZEN"
    view = core.order(placed.ack.order_id)
    assert view is not None and view.price == WORLD.price
