"""Ed25519 request authentication (the venue stores public keys only).

Decision on replays: a signature is accepted once. Within the freshness window the gateway
remembers every accepted signature and refuses a byte-identical resubmission with
REPLAYED_REQUEST; outside the window the timestamp check refuses it (EXPIRED_SIGNATURE). Ed25519
signatures are deterministic, so two identical requests in the same millisecond collide: the
client keeps its timestamps strictly increasing per key.

Across restarts: with a ``memory_path`` every accepted signature is appended to that file (with the
time it leaves the memory) before the request runs, and a new process loads the unexpired ones, so a
request accepted before a crash or a restart is still refused as REPLAYED_REQUEST after it. The append
is a plain write (in the OS page cache at once, so it survives the process being killed); the file is
rewritten without the expired entries at start and when it has grown well past the live set.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.errors import ApiError
from gateway.ports import ApiKey, VenuePort
from venueclient.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    login_payload,
    signing_payload,
    verify,
)

_MAX_HEADER = 256


_COMPACT_MIN = 10_000  # appended lines before the file may be rewritten


class _ReplayFile:
    """The replay memory's durable copy: one ``<expiry ms> <signature>`` line per accepted request."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1
        self._appended = 0

    def load(self, now_ms: int) -> list[tuple[int, str]]:
        entries: list[tuple[int, str]] = []
        if self._path.exists():
            for line in self._path.read_text("ascii", errors="replace").splitlines():
                expiry, _, signature = line.partition(" ")
                if expiry.isdigit() and signature and int(expiry) >= now_ms:  # a torn last line is skipped
                    entries.append((int(expiry), signature))
        entries.sort()
        self.rewrite(entries)
        return entries

    def rewrite(self, entries: list[tuple[int, str]]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("w", encoding="ascii") as f:
            f.writelines(f"{expiry} {signature}\n" for expiry, signature in entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        self._appended = 0

    def append(self, expiry_ms: int, signature: str) -> int:
        """Appends one entry; returns how many were appended since the last rewrite."""
        os.write(self._fd, f"{expiry_ms} {signature}\n".encode("ascii"))
        self._appended += 1
        return self._appended

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Authenticator:
    def __init__(self, venue: VenuePort, *, window_s: float, clock: Callable[[], float] = time.time,
                 memory_path: Path | None = None) -> None:
        self._venue = venue
        self._window_ms = int(window_s * 1000)
        self._clock = clock
        self._seen: set[str] = set()
        self._expiry: deque[tuple[int, str]] = deque()
        self._file = _ReplayFile(memory_path) if memory_path is not None else None
        if self._file is not None:
            for expiry, signature in self._file.load(self._now_ms()):
                self._seen.add(signature)
                self._expiry.append((expiry, signature))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _check_fresh(self, ts_ms: int) -> int:
        now = self._now_ms()
        if abs(now - ts_ms) > self._window_ms:
            raise ApiError(
                "EXPIRED_SIGNATURE",
                f"timestamp {ts_ms} is outside the {self._window_ms} ms window around the server time {now}",
            )
        return now

    def _key(self, key_id: str) -> ApiKey:
        key = self._venue.api_key(key_id)
        if key is None:
            raise ApiError("UNKNOWN_KEY", "unknown API key")
        return key

    def _remember(self, signature: str, now_ms: int) -> None:
        while self._expiry and self._expiry[0][0] < now_ms:
            self._seen.discard(self._expiry.popleft()[1])
        if signature in self._seen:
            raise ApiError("REPLAYED_REQUEST", "this exact signed request was already accepted")
        expiry = now_ms + 2 * self._window_ms
        self._seen.add(signature)
        self._expiry.append((expiry, signature))
        # on file before the request runs: a request that ran is refused after a restart too
        if self._file is not None and self._file.append(expiry, signature) >= max(_COMPACT_MIN, 4 * len(self._expiry)):
            self._file.rewrite(list(self._expiry))

    def verify_rest(self, method: str, target: bytes, headers: Mapping[str, str], body: bytes) -> ApiKey:
        key_id = headers.get(HEADER_KEY.lower())
        ts_text = headers.get(HEADER_TIMESTAMP.lower())
        signature = headers.get(HEADER_SIGNATURE.lower())
        if not key_id or not ts_text or not signature:
            raise ApiError(
                "MISSING_AUTH",
                f"signed requests need the headers {HEADER_KEY}, {HEADER_TIMESTAMP} (ms) and {HEADER_SIGNATURE}",
            )
        if len(key_id) > _MAX_HEADER or len(signature) > _MAX_HEADER:
            raise ApiError("BAD_SIGNATURE", "authentication header too long")
        ts_ms = _parse_ts(ts_text)
        key = self._key(key_id)
        now = self._check_fresh(ts_ms)
        if not verify(key.public_key, signature, signing_payload(ts_ms, method, target, body)):
            raise ApiError("BAD_SIGNATURE", "signature does not match the request")
        self._remember(signature, now)
        return key

    def verify_login(self, key_id: object, ts: object, signature: object, nonce: str) -> ApiKey:
        if not isinstance(key_id, str) or not key_id or len(key_id) > _MAX_HEADER:
            raise ApiError("MISSING_AUTH", "login needs key_id, ts (ms) and signature")
        if not isinstance(signature, str) or not signature or len(signature) > _MAX_HEADER:
            raise ApiError("MISSING_AUTH", "login needs key_id, ts (ms) and signature")
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise ApiError("INVALID_FIELD", "ts must be an integer (milliseconds since the epoch)")
        key = self._key(key_id)
        self._check_fresh(ts)
        if not verify(key.public_key, signature, login_payload(ts, nonce)):
            raise ApiError("BAD_SIGNATURE", "login signature does not match the nonce and timestamp")
        return key


def _parse_ts(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        raise ApiError("EXPIRED_SIGNATURE", f"{HEADER_TIMESTAMP} must be integer milliseconds since the epoch")
    return int(text)
