"""The command journal on a NATS JetStream stream (replicated, for a leader + hot standby).

Same interface as the file journal (``journal.backend.CommandJournal``); synchronous like it: the
NATS client runs on its own event loop in a daemon thread and every call waits for it, so the
sequencer's writer thread calls ``journal.append_encoded`` on it unchanged.

One stream message per appended batch (split only when a batch exceeds the server's payload
limit): ``u32 length + codec payload`` per command, headers ``Omn-First-Seq``/``Omn-Last-Seq``/
``Omn-Last-Ts`` (and ``Omn-Requests``, ``seq=request id,...``, for commands enqueued under
``journal.sequencer.REQUEST_ID``: ``append_tagged``). Every append carries
``Nats-Expected-Last-Sequence`` = the stream sequence this writer last saw, so two writers can
never interleave: the one that was not first is refused (``JournalFencedError``) and must stop.
A writer taking over first appends an *epoch* message (``claim``: no command, same headers) so
that a deposed leader's next append is refused even if the new leader has nothing to write yet.
``Nats-Msg-Id`` (writer id + first command seq) makes a publish retried after a lost
acknowledgement idempotent (the stream's duplicate window).

Command seqs are dense (1, 2, ...), stream sequences are not (epoch messages); ``Omn-Last-Seq``
is monotonic in the stream, so the message holding a command seq is found by binary search.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError, ServiceUnavailableError
from nats.js.kv import KeyValue

from engine import RULES_VERSION
from engine.messages import Command
from journal import codec
from journal.errors import JournalCorruptError, JournalError, JournalFencedError, JournalWriteError

T = TypeVar("T")


class JournalUnavailableError(JournalWriteError):
    """NATS did not answer in time (the cluster is failing over, or unreachable)."""

WRONG_LAST_SEQUENCE = 10071  # JetStream API error code: Nats-Expected-Last-Sequence did not match
H_FIRST, H_LAST, H_TS, H_KIND = "Omn-First-Seq", "Omn-Last-Seq", "Omn-Last-Ts", "Omn-Kind"
H_REQUESTS = "Omn-Requests"  # "seq=request id,..." of the batch's commands that came from a tagged request
_LEN = struct.Struct("<I")
_READ_CHUNK = 256  # stream messages per replay read
_POSITIONS = 1024  # batch messages whose command range ``position`` remembers


def parse_url(url: str) -> tuple[list[str], str]:
    """``nats://h1:4222,h2:4223/STREAM`` -> (servers, stream name); the stream defaults to OMN."""
    if not url.startswith("nats://"):
        raise JournalError(f"journal_url must start with nats://, not {url!r}")
    rest = url.removeprefix("nats://")
    hosts, _, stream = rest.partition("/")
    servers = [f"nats://{h}" for h in hosts.split(",") if h]
    if not servers:
        raise JournalError(f"journal_url {url!r} names no server")
    stream = stream.strip("/") or "OMN"
    if not stream.replace("_", "").replace("-", "").isalnum():
        raise JournalError(f"stream name {stream!r}: letters, digits, '-' and '_' only")
    return servers, stream


class NatsLoop:
    """A NATS connection on its own event loop in a daemon thread; ``call`` runs a coroutine there."""

    def __init__(self, servers: list[str], *, timeout: float) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-journal", daemon=True)
        self._thread.start()
        self.nc: NatsClient = self.call(self._connect(servers), timeout=timeout * 4)
        self.js: JetStreamContext = self.nc.jetstream(timeout=timeout)

    async def _connect(self, servers: list[str]) -> NatsClient:
        return await nats.connect(servers=servers, connect_timeout=min(self.timeout, 2.0), reconnect_time_wait=0.2,
                                  max_reconnect_attempts=-1, allow_reconnect=True, name="omn-journal")

    def call(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        limit = timeout if timeout is not None else self.timeout * 6
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, limit), self._loop)
        try:
            return future.result(timeout=limit + 1.0)
        except (TimeoutError, FutureTimeoutError):
            future.cancel()
            raise JournalUnavailableError("NATS did not answer in time") from None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the NATS loop without waiting for it (it handles its own errors)."""
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    def read(self, make: Callable[[], Coroutine[Any, Any, T]], *, attempts: int = 40) -> T:
        """``call`` for an idempotent read, retried while the cluster fails over (a node died, a
        stream elects a new leader, the client reconnects): about 20 s in all."""
        for attempt in range(1, attempts + 1):
            try:
                return self.call(make(), timeout=self.timeout * 2)
            except (TimeoutError, NatsError, JournalUnavailableError) as exc:
                if attempt == attempts:
                    raise JournalUnavailableError(f"NATS read failed {attempts} times: {exc!r}") from None
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.call(self.nc.close(), timeout=self.timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=self.timeout)
        if not self._thread.is_alive():
            self._loop.close()


@dataclass(frozen=True, slots=True)
class StreamMessage:
    stream_seq: int
    first_seq: int
    last_seq: int
    last_ts: int
    epoch: bool
    data: bytes
    requests: tuple[tuple[int, str], ...] = ()  # (command seq, request id) (``append_tagged``)


def _message(stream_seq: int, headers: dict[str, str] | None, data: bytes | None) -> StreamMessage:
    h = headers or {}
    try:
        first, last, ts = int(h[H_FIRST]), int(h[H_LAST]), int(h[H_TS])
    except (KeyError, ValueError) as exc:
        raise JournalCorruptError(f"stream message {stream_seq} is not a journal batch ({exc})") from None
    requests: list[tuple[int, str]] = []
    for item in filter(None, h.get(H_REQUESTS, "").split(",")):
        seq_text, _, rid = item.partition("=")
        if seq_text.isdigit() and rid:
            requests.append((int(seq_text), rid))
    return StreamMessage(stream_seq=stream_seq, first_seq=first, last_seq=last, last_ts=ts,
                         epoch=h.get(H_KIND) == "epoch", data=data or b"", requests=tuple(requests))


def split_records(msg: StreamMessage) -> Iterator[tuple[int, bytes]]:
    """``(command seq, codec payload)`` of every command in one batch message."""
    view, offset, seq = memoryview(msg.data), 0, msg.first_seq
    while offset < len(view):
        if offset + _LEN.size > len(view):
            raise JournalCorruptError(f"stream message {msg.stream_seq}: truncated record header")
        (length,) = _LEN.unpack_from(view, offset)
        offset += _LEN.size
        if offset + length > len(view):
            raise JournalCorruptError(f"stream message {msg.stream_seq}: truncated record {seq}")
        yield seq, bytes(view[offset:offset + length])
        offset += length
        seq += 1
    if seq != msg.last_seq + 1 and not msg.epoch:
        raise JournalCorruptError(f"stream message {msg.stream_seq}: holds up to {seq - 1}, header says {msg.last_seq}")


class NatsJournal:
    """The replicated journal (see the module docstring). ``append_*`` from one thread at a time."""

    def __init__(self, conn: NatsLoop, stream: str, subject: str, directory: Path) -> None:
        self._conn = conn
        self.stream = stream
        self.subject = subject
        self._directory = directory
        self.writer_id = uuid.uuid4().hex[:12]
        self._stream_seq = 0  # stream sequence of the last message this journal knows
        self._last_seq = 0
        self._last_ts = 0
        self._failed: str | None = None
        self._reader = _Reader(conn.js, stream, subject, conn.timeout)
        # client order ids of the commands read so far (a follower reads every command once; a
        # takeover then needs only the rest): ``client_order_ids`` does not read the stream again
        self._ids: list[tuple[str, str]] = []
        self._ids_through = 0
        self.repaired: str | None = None  # the file journal's field; nothing is ever repaired here
        # (first command seq, last command seq, stream sequence) of the latest batch messages written
        # or read (``position``); appended on the writer's thread, read on the venue's loop
        self._positions: deque[tuple[int, int, int]] = deque(maxlen=_POSITIONS)
        self._positions_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, directory: Path | str, *, replicas: int = 1, timeout: float = 5.0) -> Self:
        """Connect, create the stream if it does not exist (file storage, ``replicas`` copies), read its tail."""
        servers, stream = parse_url(url)
        subject = f"omn.journal.{stream}"
        conn = NatsLoop(servers, timeout=timeout)
        try:
            conn.call(_ensure_stream(conn.js, stream, subject, replicas))
            journal = cls(conn, stream, subject, Path(directory))
            journal.refresh()
        except BaseException:
            conn.close()
            raise
        Path(directory).mkdir(parents=True, exist_ok=True)
        return journal

    # ------------------------------------------------------------ state

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def last_ts(self) -> int:
        return self._last_ts

    @property
    def stream_seq(self) -> int:
        return self._stream_seq

    @property
    def connection(self) -> NatsLoop:
        return self._conn

    def refresh(self) -> None:
        """Re-read the stream's tail (a follower that takes over, or a reopen)."""
        tail = self._conn.read(lambda: _tail(self._conn.js, self.stream))
        if tail is None:
            self._stream_seq, self._last_seq, self._last_ts = 0, 0, 0
        else:
            self._stream_seq, self._last_seq, self._last_ts = tail.stream_seq, tail.last_seq, tail.last_ts

    def advance(self, msg: StreamMessage) -> None:
        """A follower applied ``msg``: this journal's tail is now there (no stream read)."""
        self._remember(msg.first_seq, msg.last_seq, msg.stream_seq)
        if msg.stream_seq > self._stream_seq:
            self._stream_seq, self._last_seq, self._last_ts = msg.stream_seq, msg.last_seq, msg.last_ts

    def _remember(self, first: int, last: int, stream_seq: int) -> None:
        if last < first:
            return  # an epoch message holds no command
        with self._positions_lock:
            if not self._positions or self._positions[-1][2] < stream_seq:
                self._positions.append((first, last, stream_seq))

    def position(self, seq: int) -> int:
        """The stream sequence of the message holding command ``seq``: the same in every process
        (it is read from the stream), so market data stamped with it is comparable across a
        failover. 0 for a command older than the last ``_POSITIONS`` messages seen (only the
        latest commands are asked for: the one whose events are being fanned out)."""
        with self._positions_lock:
            for first, last, stream_seq in reversed(self._positions):
                if first <= seq <= last:
                    return stream_seq
                if last < seq:
                    break
        return 0

    def reset_failure(self) -> None:
        """After a refused ``claim``: the caller catches up and may try again."""
        self._failed = None

    # ------------------------------------------------------------ writing

    def claim(self) -> None:
        """Become the only writer: append an epoch message after the tail this journal knows.
        ``JournalFencedError`` if the stream moved on since (catch up, then claim again)."""
        self._publish(b"", first=self._last_seq + 1, last=self._last_seq, ts=self._last_ts, epoch=True)

    def append_batch(self, records: Sequence[tuple[int, Command]]) -> None:
        self.append_encoded([(seq, cmd.ts, codec.encode(cmd)) for seq, cmd in records])

    def append_encoded(self, records: Sequence[tuple[int, int, bytes]]) -> None:
        self.append_tagged(records, {})

    def append_tagged(self, records: Sequence[tuple[int, int, bytes]], tags: dict[int, str]) -> None:
        """``append_encoded``, with the request id of some commands in the message headers
        (``Omn-Requests``): a follower keeps those commands' results to answer their retries."""
        if self._failed is not None:
            raise JournalWriteError(f"journal failed earlier ({self._failed}); reopen it")
        if not records:
            return
        expected = self._last_seq + 1
        for seq, _ts, _payload in records:
            if seq != expected:
                raise JournalError(f"append out of order: got seq {seq}, expected {expected}")
            expected += 1
        limit = max(1024, self._conn.nc.max_payload - 4096)
        start = 0
        while start < len(records):
            size, end = 0, start
            while end < len(records) and (end == start or size + _LEN.size + len(records[end][2]) <= limit):
                size += _LEN.size + len(records[end][2])
                end += 1
            if size > limit:
                raise JournalError(f"record {records[start][0]} is {size} bytes, limit {limit}")
            part = records[start:end]
            data = b"".join(_LEN.pack(len(p)) + p for _, _, p in part)
            requests = ",".join(f"{seq}={tags[seq]}" for seq, _, _ in part if seq in tags)
            self._publish(data, first=part[0][0], last=part[-1][0], ts=part[-1][1], epoch=False, requests=requests)
            start = end

    def _publish(self, data: bytes, *, first: int, last: int, ts: int, epoch: bool, requests: str = "") -> None:
        if self._failed is not None:
            raise JournalWriteError(f"journal failed earlier ({self._failed}); reopen it")
        headers = {
            "Nats-Expected-Last-Sequence": str(self._stream_seq),
            "Nats-Msg-Id": f"{self.writer_id}:{'e' if epoch else 'c'}:{first}",
            H_FIRST: str(first), H_LAST: str(last), H_TS: str(ts),
        }
        if epoch:
            headers[H_KIND] = "epoch"
        if requests:
            headers[H_REQUESTS] = requests
        try:
            seq = self._conn.call(_publish(self._conn.js, self.subject, data, headers, self._conn.timeout),
                                  timeout=self._conn.timeout * (PUBLISH_BUDGET + 2))
        except JournalFencedError as exc:
            self._failed = str(exc)
            raise
        except JournalWriteError as exc:
            self._failed = str(exc)
            raise
        if seq != self._stream_seq + 1:
            self._failed = f"stream sequence {seq} after {self._stream_seq}"
            raise JournalFencedError(f"append landed at stream sequence {seq}, expected {self._stream_seq + 1}")
        self._stream_seq, self._last_seq, self._last_ts = seq, last, ts
        if not epoch:
            self._remember(first, last, seq)

    # ------------------------------------------------------------ reading

    def messages(self, after_stream_seq: int, until_stream_seq: int | None = None) -> Iterator[StreamMessage]:
        """Stream messages after ``after_stream_seq`` up to ``until_stream_seq`` (default: the tail now)."""
        end = until_stream_seq
        if end is None:
            tail = self._conn.read(lambda: _tail(self._conn.js, self.stream))
            end = 0 if tail is None else tail.stream_seq
        position = after_stream_seq
        while position < end:
            first, last = position + 1, min(end, position + _READ_CHUNK)
            chunk = self._conn.read(functools.partial(self._reader.read, first, last))
            if not chunk:
                raise JournalCorruptError(f"stream {self.stream}: nothing readable after sequence {position}")
            yield from chunk
            position = chunk[-1].stream_seq

    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, Command]]:
        for seq, payload in self.replay_raw(after_seq):
            yield seq, codec.decode(payload)

    def replay_raw(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        limit = self._last_seq
        hi = self._stream_seq
        start = self._conn.read(lambda: _find(self._conn.js, self.stream, after_seq + 1, hi))
        expected = after_seq + 1
        for msg in self.messages(start - 1, self._stream_seq):
            self._remember(msg.first_seq, msg.last_seq, msg.stream_seq)
            for seq, payload in split_records(msg):
                if seq <= after_seq:
                    continue
                if seq > limit:
                    return
                if seq != expected:
                    raise JournalCorruptError(f"stream {self.stream}: command {seq} follows {expected - 1}")
                expected += 1
                self.note(seq, payload)
                yield seq, payload
        if expected - 1 < limit:
            raise JournalCorruptError(f"stream {self.stream}: replay ended at {expected - 1}, tail says {limit}")

    def note(self, seq: int, payload: bytes) -> None:
        """A command read in order (replay, follower): remember its client order id."""
        if seq == self._ids_through + 1:
            self._ids_through = seq
            ids = codec.client_order_id_of(payload)
            if ids is not None:
                self._ids.append(ids)

    def client_order_ids(self) -> Iterator[tuple[str, str]]:
        through = self._ids_through
        yield from list(self._ids)
        for seq, payload in self.replay_raw(through):
            self.note(seq, payload)
            ids = codec.client_order_id_of(payload)
            if ids is not None:
                yield ids

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.call(self._reader.close(), timeout=self._conn.timeout)
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- coroutines on the NATS loop


async def open_bucket(js: JetStreamContext, bucket: str, *, replicas: int, ttl: float | None = None) -> KeyValue:
    """A key-value bucket (file storage, one value per key), created by the first process that asks:
    retried for about 10 s while the cluster elects the bucket's leader or another process creates it."""
    for attempt in range(50):
        try:
            try:
                return await js.key_value(bucket)
            except NotFoundError:
                return await js.create_key_value(KeyValueConfig(
                    bucket=bucket, ttl=ttl, history=1, replicas=replicas, storage=StorageType.FILE))
        except Exception:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


async def _ensure_stream(js: JetStreamContext, stream: str, subject: str, replicas: int) -> None:
    for attempt in range(50):  # a cluster that has just started elects its meta leader first
        try:
            await _create_or_check(js, stream, subject, replicas)
            return
        except (TimeoutError, ServiceUnavailableError, NatsTimeoutError, NoRespondersError):
            if attempt == 49:
                raise JournalError(f"JetStream is not available to create stream {stream}") from None
            await asyncio.sleep(0.2)


def rules_description() -> str:
    """The stream's description names the engine rules its commands were matched under (the file
    journal's ``ENGINE_RULES_VERSION`` marker): replaying under other rules could build another book."""
    return f"OMN command journal; engine rules version {RULES_VERSION}"


async def _create_or_check(js: JetStreamContext, stream: str, subject: str, replicas: int) -> None:
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE,
                                         num_replicas=replicas, duplicate_window=120.0, allow_direct=True,
                                         description=rules_description()))
        return
    subjects = info.config.subjects or []
    if subject not in subjects:
        raise JournalError(f"stream {stream} exists with subjects {subjects}, not {subject}")
    if info.config.description != rules_description():
        raise JournalError(f"stream {stream} was written as {info.config.description!r}; this engine is "
                           f"{rules_description()!r}: replay it with the engine that wrote it, or use a new stream")


async def _tail(js: JetStreamContext, stream: str) -> StreamMessage | None:
    info = await js.stream_info(stream)
    last = info.state.last_seq
    if not last:
        return None
    raw = await js.get_msg(stream, last)
    return _message(last, raw.headers, raw.data)


async def _find(js: JetStreamContext, stream: str, cmd_seq: int, hi: int) -> int:
    """The first stream sequence whose message holds a command seq >= ``cmd_seq`` (hi + 1 if none)."""
    info = await js.stream_info(stream)
    lo = max(1, info.state.first_seq)
    answer = hi + 1
    while lo <= hi:
        mid = (lo + hi) // 2
        raw = await js.get_msg(stream, mid)
        if _message(mid, raw.headers, None).last_seq >= cmd_seq:
            answer, hi = mid, mid - 1
        else:
            lo = mid + 1
    return answer


stream_message = _message  # public names for the stream's durable consumers (``venue.consumers``)
find_stream_seq = _find


class _Reader:
    """One ordered push consumer, reused while reads are sequential (a follower reads the stream
    in order for its whole life): no consumer per read, so no consumer churn in the cluster. A
    read elsewhere, or any error, drops it; the next read starts a new one at its first sequence.
    Used only on the NATS loop."""

    def __init__(self, js: JetStreamContext, stream: str, subject: str, timeout: float) -> None:
        self._js, self._stream, self._subject, self._timeout = js, stream, subject, timeout
        self._sub: JetStreamContext.PushSubscription | None = None
        self._next = 0

    async def read(self, first: int, last: int) -> list[StreamMessage]:
        if self._sub is None or self._next != first:
            await self.close()
            self._sub = await self._js.subscribe(
                self._subject, stream=self._stream, ordered_consumer=True, config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first))
            self._next = first
        out: list[StreamMessage] = []
        try:
            while True:
                msg = await self._sub.next_msg(timeout=self._timeout)
                seq = msg.metadata.sequence.stream
                if seq < self._next:
                    continue  # redelivered after the consumer reset itself
                out.append(_message(seq, msg.headers, msg.data))
                self._next = seq + 1
                if seq >= last:
                    return out
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        self._sub = None
        self._next = 0


PUBLISH_BUDGET = 5  # timeouts: how long an append keeps retrying while the stream elects a leader


async def _publish(js: JetStreamContext, subject: str, data: bytes, headers: dict[str, str], timeout: float) -> int:
    """Publish; retry while no answer comes or the stream has no leader (a node died: the
    election takes seconds), for ``PUBLISH_BUDGET`` timeouts in all. The msg id makes a retry
    idempotent; a refusal of the expected last sequence is never retried (fenced)."""
    deadline = time.monotonic() + timeout * PUBLISH_BUDGET
    attempts = 0
    while True:
        attempts += 1
        try:
            ack = await js.publish(subject, data, timeout=timeout, headers=dict(headers))
            return int(ack.seq)
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise JournalFencedError(f"another writer appended first ({exc.description})") from None
            if not isinstance(exc, ServiceUnavailableError) or time.monotonic() >= deadline:
                raise JournalWriteError(f"stream refused the append: {exc.description or exc}") from None
        except (TimeoutError, NatsTimeoutError, NoRespondersError, NoStreamResponseError) as exc:
            if time.monotonic() >= deadline:
                raise JournalUnavailableError(f"no acknowledgement from the stream after {attempts} attempts: "
                                              f"{type(exc).__name__}") from None
        await asyncio.sleep(min(0.5, 0.1 * attempts))
