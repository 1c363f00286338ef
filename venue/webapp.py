"""The venue's web application: the gateway (``gateway.app.create_app``) over the running core, with
every router the venue serves (operator, metrics, reference data, off-book trading, records) and the
hooks that tie the gateway to the venue (revoked keys close their sessions, reference data and
off-book state reach the websocket). Built by ``venue.runtime.Venue`` once everything it serves
exists; kept here so the runtime stays wiring and lifecycle only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from gateway.app import create_app
from gateway.metrics import MetricsMiddleware, metrics_router
from gateway.offbook_routes import OffBookApi, attach_offbook, offbook_router
from gateway.operator import operator_router
from gateway.records import records_router
from gateway.reference import attach_reference, reference_router
from venue.health import HealthProbe, HealthSources
from venue.registry_api import RegistryService, close_revoked_sessions

if TYPE_CHECKING:
    from venue.runtime import Venue


def build_app(venue: Venue) -> tuple[FastAPI, HealthProbe]:
    """The app and its readiness probe (``/health/ready`` and the metrics read the same checks)."""
    health = HealthProbe(HealthSources(
        stopping=venue._stop.is_set, store_backlog=lambda: venue.writer.pending,
        watcher_lag=lambda: venue.watcher.lag,
        journal_failure=lambda: None if venue.sequencer.running else repr(venue.sequencer.failure),
        trades=lambda: venue.core.trades(limit=10_000)))
    core, auth = venue.core, venue.console_auth
    offbook = OffBookApi(core.rfqs, core.blocks, core.listing, audit=core.operations.audit)
    app = create_app(
        core, config=venue._gateway_config,
        extra_routers=[operator_router(core, console_auth=auth,
                                       registry=RegistryService(venue.store, venue.refresh, venue.sequencer)),
                       metrics_router(core, extra=[health]),
                       reference_router(venue.attestations, console_auth=auth),
                       offbook_router(offbook, console_auth=auth),
                       records_router(venue.records, console_auth=auth)],
    )
    app.add_middleware(MetricsMiddleware)
    venue.reference.on_keys_revoked = close_revoked_sessions(app.state.gateway, venue.reference.on_keys_revoked)
    attach_reference(app, venue.attestations)
    attach_offbook(app, offbook)
    return app, health
