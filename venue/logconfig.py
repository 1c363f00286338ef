"""Logging of a venue process, configured once at start (``configure``).

- level: ``log_level`` (config / ``VENUE_LOG_LEVEL`` / ``--log-level``), INFO by default;
- format: ``text`` (readable lines, the demo's default) or ``json`` (one JSON object per line with
  ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg`` and ``exc`` when there is a traceback: for
  log shippers in production), by ``log_format`` / ``VENUE_LOG_FORMAT`` / ``--log-format``;
- no traceback storms: a WARNING or ERROR that repeats (same logger and message template) is
  written at most ``burst`` times per ``window_s``, and only its first occurrence in a window keeps
  its traceback; the next line after a window says how many were suppressed.

Lines go to stderr; secrets never reach them (chain keys are read by ``venue.chainkeys`` and only
their addresses are logged).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import IO, Any

FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# attributes every LogRecord has; anything else was passed with ``extra=`` and is kept in JSON lines
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class RepeatFilter(logging.Filter):
    """Lets a repeated WARNING/ERROR through ``burst`` times per ``window_s``; the rest are counted
    and reported on the next line of that kind once the window has passed."""

    def __init__(self, *, burst: int = 5, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], list[float | int]] = {}  # key -> [window start, count, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        state = self._seen.get(key)
        if state is None or now - state[0] >= self.window_s:
            suppressed = 0 if state is None else int(state[2])
            self._seen[key] = [now, 1, 0]
            if suppressed:
                record.msg = f"{record.msg} [{suppressed} similar lines suppressed in the last {self.window_s:g} s]"
            if len(self._seen) > 10_000:  # bounded: forget the oldest kinds
                for old in list(self._seen)[:5_000]:
                    del self._seen[old]
            return True
        state[1] = int(state[1]) + 1
        if state[1] > self.burst:
            state[2] = int(state[2]) + 1
            return False
        record.exc_info = None  # one traceback per kind and window is enough
        record.exc_text = None
        return True


def configure(level: str = "INFO", fmt: str = "text", *, stream: IO[str] | None = None) -> logging.Handler:
    """Install the venue's handler on the root logger (replacing handlers a previous call installed)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _UtcFormatter(_TEXT))
    handler.addFilter(RepeatFilter())
    handler.set_name("venue")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "venue"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # third-party chatter stays at WARNING unless the operator asks for DEBUG
    quiet = logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
    for name in ("uvicorn.access", "web3", "urllib3", "asyncio", "alembic", "httpx", "websockets"):
        logging.getLogger(name).setLevel(quiet)
    return handler
