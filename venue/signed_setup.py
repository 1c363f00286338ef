"""Wiring of investor-signed orders into a running venue (kept out of ``venue.runtime``): the check
and registry in the pipeline and trade book, the store as memory across restarts, and the watcher
of on-chain cancels."""

from __future__ import annotations

from typing import Protocol

import store as store_pkg
from compliance import Gatekeeper
from engine import OrderView
from settlement.chain import Chain
from settlement.investor import ContractWalletSignatures, DvPCancelLogs
from venue.core import VenueCore
from venue.signed import Audit, CancelWatcher, CommandQueue, SignedOrders
from venueclient.signed_orders import OrderDomain


class OpenOrders(Protocol):
    def open_orders(self, participant: str | None = None, symbol: str | None = None) -> list[OrderView]: ...


def install(core: VenueCore, engine: OpenOrders, *, chain: Chain, settlement: str, store: store_pkg.Store,
            sequencer: CommandQueue, gate: Gatekeeper, audit: Audit) -> tuple[SignedOrders, CancelWatcher]:
    """Call once the engine is recovered and before the unsettled trades are put back."""
    domain = OrderDomain(chain_id=int(chain.w3.eth.chain_id), verifying_contract=settlement)

    def signed_mode(participant: str) -> bool:
        p = gate.participant(participant)
        return p is not None and p.signed_orders

    def stored(order_id: int) -> str | None:
        order = store.get_order(order_id)
        return order.signed_order if order is not None else None

    signed = SignedOrders(domain=domain, parties=core.reference, orders=core, signed_mode=signed_mode,
                          loader=stored, wallet_check=ContractWalletSignatures(chain).accepts)
    core.pipeline.signed = signed
    core.trades_book.signed_orders = signed.order_of
    signed.restore(engine.open_orders())
    logs = DvPCancelLogs(chain, settlement)
    return signed, CancelWatcher(signed=signed, logs=logs, sequencer=sequencer, audit=audit, from_block=logs.head() + 1)
