"""Gateway settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    signature_window_s: float = 10.0  # accepted |now - ts| for signed requests and logins
    # Limits (docs/gateway-abuse.md has the measurements behind them): one key may use a small share
    # of what the venue processes (journal venue, one connection sending one order at a time: ~920
    # acks/s on a quiet 2-core machine, ~260/s under load), so a few keys at their limit cannot
    # saturate it; honest clients see `remaining` / X-RateLimit-Remaining and slow down first.
    rate_per_s: float = 100.0  # token bucket refill per API key (REST requests + websocket messages)
    rate_burst: int = 200  # bucket size
    replay_memory_path: Path | None = None  # accepted signatures kept across restarts (None: in memory only)
    heartbeat_timeout_s: float = 30.0  # websocket closes (and cancels, if opted in) after this silence
    login_timeout_s: float = 10.0  # a websocket must log in within this
    max_body_bytes: int = 64 * 1024
    max_ws_message_bytes: int = 64 * 1024  # also the server's protocol-level limit (uvicorn ws_max_size)
    ws_queue_max: int = 10_000  # outbound messages buffered per websocket before it is dropped as slow
    ws_queue_max_bytes: int = 4 * 1024 * 1024  # outbound bytes buffered per websocket (ditto, close 4009)
    # permessage-deflate: off by default (order entry pays CPU and latency for it, issue 13); a
    # deployment whose clients mostly take bulky market data may turn it on (clients still opt in)
    ws_compression: bool = False
    ws_conflate_bytes: int = 256 * 1024  # book deltas pause past this backlog; the latest snapshot follows
    ws_rate_per_s: float | None = None  # token bucket per websocket connection (messages after login); None: rate_per_s
    ws_rate_burst: int | None = None  # None: rate_burst
    ws_subscribe_per_s: float = 5.0  # subscribe/unsubscribe per connection (each may send a full snapshot)
    ws_subscribe_burst: int = 20
    ws_pre_login_frames: int = 16  # frames of any kind (heartbeats, oversized ones) before login
    address_rate_per_s: float = 20.0  # per source address: unauthenticated / bad-signature requests, logins
    address_rate_burst: int = 40
    max_connections_per_address: int = 256  # open TCP connections (HTTP + websocket) per source address
    header_timeout_s: float = 5.0  # a request's line + headers must arrive within this
    body_timeout_s: float = 10.0  # a request's body must arrive within this
    ws_max_in_flight: int = 256  # order commands awaiting the venue per websocket
    venue_in_flight: int = 32  # websocket commands of all sessions inside the venue at once (gateway.fair)
    idempotency_max_per_participant: int = 100_000  # remembered client order ids (oldest forgotten)
    default_book_depth: int = 50
    max_trades_limit: int = 1000
