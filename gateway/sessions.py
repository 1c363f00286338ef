"""Closing the websocket sessions of revoked API keys.

``GatewayState.sessions`` holds every logged-in trader session; when the venue drops keys (revoked
in the store, found by the reference refresh) ``close_sessions_of`` ends their sessions with close
code 4010 and reason ``KEY_REVOKED`` (``market.codes``). REST requests signed by such a key already
fail with ``UNKNOWN_KEY``: the key is gone from the venue's reference data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from gateway.framing import CLOSE_KEY_REVOKED
from gateway.ports import ApiKey
from gateway.state import GatewayState

log = logging.getLogger(__name__)


class KeyedSession(Protocol):
    id: str
    key: ApiKey | None

    def end(self, code: int, reason: str) -> None: ...


def close_sessions_of(state: GatewayState, key_ids: Iterable[str]) -> int:
    """End the sessions logged in with any of ``key_ids``; returns how many."""
    ids = set(key_ids)
    closed = 0
    for session in list(state.sessions):
        keyed: KeyedSession = session
        if keyed.key is not None and keyed.key.key_id in ids:
            keyed.end(CLOSE_KEY_REVOKED, "KEY_REVOKED")
            closed += 1
            log.info("websocket session %s closed: key %s revoked", keyed.id, keyed.key.key_id)
    return closed
