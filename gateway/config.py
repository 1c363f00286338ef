"""Gateway settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    signature_window_s: float = 10.0  # accepted |now - ts| for signed requests and logins
    replay_memory_path: Path | None = None  # accepted signatures kept across restarts (None: in memory only)
    rate_per_s: float = 200.0  # token bucket refill per API key (REST requests + websocket messages)
    rate_burst: int = 400  # bucket size
    heartbeat_timeout_s: float = 30.0  # websocket closes (and cancels, if opted in) after this silence
    login_timeout_s: float = 10.0  # a websocket must log in within this
    max_body_bytes: int = 64 * 1024
    max_ws_message_bytes: int = 64 * 1024
    ws_queue_max: int = 10_000  # outbound messages buffered per websocket before it is dropped as slow
    ws_max_in_flight: int = 256  # order commands awaiting the venue per websocket
    idempotency_max_per_participant: int = 100_000  # remembered client order ids (oldest forgotten)
    default_book_depth: int = 50
    max_trades_limit: int = 1000
