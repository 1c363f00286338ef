"""Hypothesis-generated junk frames never crash a websocket session nor change venue state."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.fakes import FakeVenue
from venueclient import VenueClient

_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                     st.sampled_from(["OMN-A", "buy", "sell", "1", "0.1", "-1", "1e9", "NaN", "", "gtd", "book"]))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_ops = st.sampled_from(["new_order", "amend", "cancel", "mass_cancel", "subscribe", "unsubscribe", "login",
                        "heartbeat", "x", ""])
_fields = st.sampled_from(["symbol", "side", "qty", "price", "type", "tif", "expire_ts", "post_only", "stp",
                           "client_order_id", "order_id", "channel", "req_id", "key_id", "ts", "signature"])
_messages = st.one_of(
    st.fixed_dictionaries({"op": _ops}, optional={"req_id": _scalars}).flatmap(
        lambda base: st.dictionaries(_fields, _json, max_size=6).map(lambda extra: {**extra, **base})),
    _json,
)
_frames = st.one_of(_messages, st.text(max_size=60), st.binary(max_size=30))


_MUTATING = {"new_order", "amend", "cancel", "mass_cancel"}


def _state(venue: FakeVenue) -> Any:
    return (venue.l2("OMN-A"), venue.l2("OMN-B"), venue.open_orders("alice"), len(venue.trade_log))


async def test_fuzzed_frames_never_crash_the_session(alice: VenueClient, venue: FakeVenue) -> None:
    stream = await alice.connect()
    await stream.place("OMN-A", "buy", "1", "90", client_order_id="anchor")
    frames: list[Any] = []

    @settings(max_examples=300, suppress_health_check=list(HealthCheck), deadline=None, database=None)
    @given(_frames)
    def collect(frame: Any) -> None:
        frames.append(frame)

    collect()
    conn = stream._conn
    assert stream._reader is not None
    stream._reader.cancel()  # read replies ourselves from here on
    with contextlib.suppress(asyncio.CancelledError):
        await stream._reader
    accepted = 0
    for n, frame in enumerate(frames):
        before = _state(venue)
        if isinstance(frame, dict) and "op" in frame:
            tag = f"f-{n}"  # an op always gets exactly one reply: wait for it (order ops reply late)
            await conn.send(json.dumps({**frame, "req_id": tag}))
        else:
            tag = f"fence-{n}"  # junk is answered at once; a heartbeat behind it fences the replies
            await conn.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
            await conn.send(json.dumps({"op": "heartbeat", "req_id": tag}))
        replies = []
        while True:
            msg = json.loads(await asyncio.wait_for(conn.recv(), 5))
            replies.append(msg)
            if msg.get("req_id") == tag:
                break
        oks = [m for m in replies if m.get("ok") and m.get("op") in _MUTATING]
        accepted += len(oks)
        if not oks:  # a refused frame changed nothing
            assert _state(venue) == before, (frame, replies)
        assert all(cmd.participant == "alice" for cmd in venue.submitted)
    venue.engine.validate()
    assert accepted < len(frames) // 2  # the generator mostly produces junk
    await conn.send(json.dumps({"op": "heartbeat", "req_id": "last"}))
    assert json.loads(await asyncio.wait_for(conn.recv(), 5))["ok"] is True
    await conn.close()
