"""SIGTERM drains like Ctrl-C: what systemd, Docker and Kubernetes send must run the venue's stop path.

uvicorn replaces the SIGINT/SIGTERM handlers while it serves, restores the ones it found when it
exits and then re-raises the signal it caught. With the default SIGTERM handler that re-raise kills
the process before the venue's ``stop()`` (journal batch, store flush, settlement, sessions) runs.
The handler installed here only asks the venue to stop, so the re-raise is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


def drain_on_sigterm(stop: asyncio.Event) -> Callable[[], None]:
    """Makes SIGTERM set ``stop`` (on the running loop); returns the function restoring the previous
    handler. Signals can only be handled in the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        log.warning("SIGTERM: stopping (draining orders, journal, store and settlement)")
        loop.call_soon_threadsafe(stop.set)

    previous = signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore
