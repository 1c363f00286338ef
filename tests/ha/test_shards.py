"""The shard map, the id scheme, the owner guard and the gateway's routing (``venue.shards``,
``venue.shardroute``), without processes: the gateway's per-shard remotes are recording fakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from engine import (
    AddInstrument,
    CancelOrder,
    Engine,
    InstrumentSpec,
    MassCancel,
    NewOrder,
    OrderAccepted,
    ResultCode,
    Side,
)
from engine import Result as EngineResult
from market.model import Outcome
from venue.cli import main
from venue.gatewayproc import RemoteVenue
from venue.shardroute import ShardedVenue
from venue.shards import NOT_OWNED, ShardGuard, ShardMap, ShardMapError, shard_config, shard_of_id

MAP = "a=1:OMN-A,OMN-C;b=2:OMN-B"


def test_the_map_parses_and_names_owners() -> None:
    shards = ShardMap.parse(MAP)
    assert [(s.name, s.index, sorted(s.instruments)) for s in shards.shards] == [
        ("a", 1, ["OMN-A", "OMN-C"]), ("b", 2, ["OMN-B"])]
    assert shards.owner("OMN-C") is shards.named("a")
    assert shards.owner("OMN-Z") is None
    assert shards.of_order((2 << 40) + 17) is shards.named("b")
    assert shards.of_order(17) is None  # an unsharded id (index 0) is nobody's here


@pytest.mark.parametrize("bad", ["", "a:OMN-A", "a=x:OMN-A", "a=1:OMN-A;a=2:OMN-B", "a=1:OMN-A;b=1:OMN-B",
                                 "a=1:OMN-A;b=2:OMN-A", "a=5000:OMN-A", "a b=1:OMN-A"])
def test_a_bad_map_is_refused(bad: str) -> None:
    with pytest.raises(ShardMapError):
        ShardMap.parse(bad)


def test_a_shard_has_its_own_stream() -> None:
    shard, url = shard_config("nats://h1:4222,h2:4223/OMN", MAP, "b")
    assert (shard.name, url) == ("b", "nats://h1:4222,h2:4223/OMN_b")
    with pytest.raises(ShardMapError):
        shard_config("nats://h1:4222/OMN", MAP, "c")


def test_a_shards_engine_numbers_orders_in_its_range() -> None:
    engine = ShardMap.parse(MAP).named("b").engine_factory().new()
    engine.process(AddInstrument(ts=1, spec=InstrumentSpec(symbol="OMN-B", tick_size=1, lot_size=1)))
    result = engine.process(NewOrder(ts=2, participant="p", symbol="OMN-B", side=Side.BUY, qty=1, price=10))
    assert result.order_id == (2 << 40) + 1 and shard_of_id(result.order_id) == 2
    restored = Engine.from_snapshot(engine.snapshot())  # the range survives a snapshot
    again = restored.process(NewOrder(ts=3, participant="p", symbol="OMN-B", side=Side.BUY, qty=1, price=10))
    assert again.order_id == (2 << 40) + 2


def test_the_guard_refuses_instruments_of_other_shards() -> None:
    guard = ShardGuard(ShardMap.parse(MAP).named("a"), None)
    order = NewOrder(ts=1, participant="p", symbol="OMN-B", side=Side.BUY, qty=1, price=10)
    refusal = guard.refuse(order, None)
    assert refusal is not None and refusal.code == NOT_OWNED and "shard a" in refusal.message
    assert guard.refuse(NewOrder(ts=1, participant="p", symbol="OMN-A", side=Side.BUY, qty=1, price=10), None) is None


class _Remote:
    """Records what the gateway sends to one shard; answers OK with one event per command."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Any] = []

    def _ok(self, cmd: Any) -> Outcome:
        event = OrderAccepted(seq=len(self.sent), ts=0, order_id=len(self.sent), client_order_id=self.name,
                              participant="p", session="", symbol=getattr(cmd, "symbol", "") or "", side=Side.BUY,
                              order_type=cast(Any, None), tif=cast(Any, None), price=1, qty=1, expire_ts=None,
                              post_only=False)
        return Outcome(result=EngineResult(code=ResultCode.OK, events=(event,), order_id=None))

    async def submit(self, participant: str, cmd: Any) -> Outcome:
        self.sent.append(cmd)
        return self._ok(cmd)

    async def submit_batch(self, participant: str, cmds: Sequence[Any]) -> list[Outcome]:
        self.sent.extend(cmds)
        return [self._ok(c) for c in cmds]

    # what the gateway's fan-out needs of each shard
    stream_seq = 0
    events: list[Callable[[Any], None]] = []
    revoked: list[Callable[[list[str]], None]] = []

    def subscribe_events(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        self.events = [*self.events, listener]
        return lambda: None

    def subscribe_revocations(self, listener: Callable[[list[str]], None]) -> Callable[[], None]:
        self.revoked = [*self.revoked, listener]
        return lambda: None


def _gateway() -> tuple[ShardedVenue, _Remote, _Remote]:
    a, b = _Remote("a"), _Remote("b")
    return ShardedVenue(ShardMap.parse(MAP), cast(dict[str, RemoteVenue], {"a": a, "b": b})), a, b


async def test_commands_route_by_symbol_and_by_order_id() -> None:
    gw, a, b = _gateway()
    await gw.submit("p", NewOrder(ts=1, participant="p", symbol="OMN-B", side=Side.BUY, qty=1, price=1))
    await gw.submit("p", CancelOrder(ts=1, participant="p", order_id=(1 << 40) + 5))
    await gw.submit("p", MassCancel(ts=1, participant="p", symbol="OMN-C"))
    assert [type(c).__name__ for c in a.sent] == ["CancelOrder", "MassCancel"]
    assert [type(c).__name__ for c in b.sent] == ["NewOrder"]
    unknown = await gw.submit("p", CancelOrder(ts=1, participant="p", order_id=(7 << 40) + 1))
    assert unknown.rejection is not None and unknown.rejection.code == "UNKNOWN_ORDER"
    nowhere = await gw.submit("p", NewOrder(ts=1, participant="p", symbol="OMN-Z", side=Side.BUY, qty=1, price=1))
    assert nowhere.rejection is not None and nowhere.rejection.code == "UNKNOWN_INSTRUMENT"


async def test_a_mass_cancel_without_instrument_goes_to_every_shard() -> None:
    gw, a, b = _gateway()
    merged = await gw.submit("p", MassCancel(ts=1, participant="p", session="s-1"))  # also cancel-on-disconnect
    assert len(a.sent) == len(b.sent) == 1
    assert merged.result is not None
    assert [getattr(e, "client_order_id", None) for e in merged.result.events] == ["a", "b"]


async def test_a_batch_is_split_by_shard_and_answered_in_order() -> None:
    gw, a, b = _gateway()
    cmds = [NewOrder(ts=1, participant="p", symbol=s, side=Side.BUY, qty=1, price=1)
            for s in ("OMN-A", "OMN-B", "OMN-C", "OMN-B")]
    answers = await gw.submit_batch("p", cmds)
    shards = [getattr(o.result.events[0], "client_order_id", None) for o in answers if o.result is not None]
    assert shards == ["a", "b", "a", "b"]
    assert [c.symbol for c in a.sent] == ["OMN-A", "OMN-C"] and [c.symbol for c in b.sent] == ["OMN-B", "OMN-B"]


def test_a_shard_needs_a_nats_journal_and_a_valid_map(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VENUE_JOURNAL_URL", raising=False)
    assert main(["run", "--shard", "a", "--shards", MAP, "--data-dir", str(tmp_path)]) == 2
    assert "HA_NEEDS_NATS" in capsys.readouterr().err
    assert main(["run", "--shard", "c", "--shards", MAP, "--journal-url", "nats://127.0.0.1:1/OMN",
                 "--data-dir", str(tmp_path)]) == 2
    assert "SHARD_MAP_INVALID" in capsys.readouterr().err


def test_fan_out_gives_the_stream_position_of_the_shard_whose_event_it_is_and_every_shards_revocations() -> None:
    gw, a, b = _gateway()
    a.stream_seq, b.stream_seq = 17, 4  # each shard's own stream
    seen: list[tuple[str, int]] = []
    gw.subscribe_events(lambda event: seen.append((event, gw.stream_seq)))
    b.events[0]("from b")
    a.events[0]("from a")
    assert seen == [("from b", 4), ("from a", 17)]
    revoked: list[str] = []
    gw.subscribe_revocations(revoked.extend)
    a.revoked[0](["k1"])
    b.revoked[0](["k2"])
    assert revoked == ["k1", "k2"]
