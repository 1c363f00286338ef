"""Leader and hot standby on NATS JetStream: ``venue run --role auto|leader|standby``.

    lease      JetStream key-value bucket ``omn_leader`` whose entries expire after ``lease_ttl_s``;
               the leader created the key and renews it (compare-and-set on its revision) every
               third of the TTL, from a thread of its own. A renewal refused because another
               process holds the key deposes it.
    follower   every process that does not lead applies the stream to its own engine, in order
               (deterministic replay), and keeps a local snapshot current.
    takeover   when the key is gone (the leader stopped or its lease lapsed) a follower creates
               it, catches up to the stream's tail, appends an epoch message with the stream's
               expected-last-sequence (``NatsJournal.claim``) and only then builds the venue on
               the engine it already has and starts sequencing. Only the leader runs settlement.
    gateways   once started, the leader also answers ``venue gateway`` processes over NATS and
               publishes its events for them (``venue.remote``; the gateway side: ``venue.gatewayproc``).
    fencing    a deposed leader (paused, partitioned) is refused by the stream at its next append
               (``JournalFencedError``) or fails to renew its lease: it exits at once with
               ``EXIT_DEPOSED`` without answering another command.

Roles: ``auto`` leads when the lease is free, else stands by; ``standby`` first catches up and
contends only after one lease TTL (so a pair started together keeps the intended leader);
``leader`` refuses to start (``LEASE_HELD``) when another process holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.js.errors import BadRequestError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from engine import Command, Engine, Result
from journal import codec
from journal.errors import JournalError, JournalFencedError
from journal.nats import (
    JournalUnavailableError,
    NatsJournal,
    NatsLoop,
    StreamMessage,
    open_bucket,
    parse_url,
    split_records,
)
from journal.snapshot import (
    EngineFactory,
    batch_processor,
    default_engine_factory,
    encode_snapshot,
    recover,
    write_snapshot_bytes,
)
from venue.config import VenueConfig
from venue.remote import LeaderResponder
from venue.shards import Shard, attach

log = logging.getLogger(__name__)

EXIT_DEPOSED = 3  # process exit status of a leader that lost its lease or was fenced by the stream
LEASE_BUCKET = "omn_leader"
LEASE_KEY = "leader"
ROLES = ("auto", "leader", "standby")
_ANSWERS = 50_000  # tagged commands whose results a follower keeps (the responder's request-id memory)


class HAError(Exception):
    """The HA roles cannot run with this configuration or state (``code`` from ``market.codes``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Lease:
    """The leader lease: one key in a JetStream KV bucket with a TTL (see the module docstring)."""

    def __init__(self, conn: NatsLoop, *, ttl: float, holder: str, replicas: int = 1,
                 bucket: str = LEASE_BUCKET) -> None:
        self._conn = conn
        self.bucket = bucket  # a shard's group contends in a bucket of its own (venue.shards)
        self.ttl = ttl
        self.holder = holder
        self._replicas = replicas
        self._kv: KeyValue | None = None
        self.revision: int | None = None

    def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = self._conn.call(self._open_bucket())
            bucket_ttl = self._conn.call(self._kv.status()).ttl
            if bucket_ttl and abs(bucket_ttl - self.ttl) > 1e-3:
                # the bucket's TTL is the one that counts (its first creator chose it): renew by it
                log.warning("the lease bucket's TTL is %.3f s, not the configured %.3f s: using it",
                            bucket_ttl, self.ttl)
                self.ttl = bucket_ttl
        return self._kv

    async def _open_bucket(self) -> KeyValue:
        return await open_bucket(self._conn.js, self.bucket, replicas=self._replicas, ttl=self.ttl)

    def acquire(self) -> bool:
        """Create the key if nobody holds it; True when this process now holds the lease."""
        kv = self._bucket()
        try:
            self.revision = self._conn.call(kv.create(LEASE_KEY, self.holder.encode()))
        except BadRequestError:  # KeyWrongLastSequenceError: the key exists, another process leads
            return False
        return True

    def renew(self) -> bool:
        """Rewrite the key on our revision (resets its age); False when another process took it."""
        if self.revision is None:
            return False
        try:
            self.revision = self._conn.call(self._bucket().update(LEASE_KEY, self.holder.encode(), last=self.revision))
        except BadRequestError as exc:
            return self._recheck(exc)
        return True

    def _recheck(self, refusal: Exception) -> bool:
        """A renewal was refused: either an earlier renewal was stored although its answer was lost
        (the key still names this process: holder names are unique), or the key expired while NATS
        did not answer (nobody holds it: take it again; safe, since whoever led meanwhile appended
        an epoch message that fences this process's next append), or another process holds it."""
        try:
            entry = self._conn.call(self._bucket().get(LEASE_KEY))
        except (KeyNotFoundError, NotFoundError):
            entry = None
        if entry is not None and entry.value == self.holder.encode() and entry.revision is not None:
            self.revision = entry.revision
            return True  # renewed by the write whose answer was lost; the next period renews again
        if entry is None or entry.value is None:
            log.warning("the leader lease expired while NATS did not answer: taking it again")
            return self.acquire()
        log.warning("lease renewal refused (%r): held by %s", refusal, entry.value.decode())
        self.revision = None
        return False

    def current(self) -> str | None:
        """The holder named in the key, None when the lease is free."""
        try:
            entry = self._conn.call(self._bucket().get(LEASE_KEY))
        except (KeyNotFoundError, NotFoundError):
            return None
        return None if entry.value is None else entry.value.decode()

    def close(self) -> None:
        self._conn.close()

    def release(self) -> None:
        if self.revision is None:
            return
        with contextlib.suppress(Exception):
            self._conn.call(self._bucket().delete(LEASE_KEY, last=self.revision))
        self.revision = None


class Follower:
    """Applies the stream to its own engine, batch by batch, in command order."""

    def __init__(self, journal: NatsJournal, *, factory: EngineFactory[Any] | None = None,
                 snapshot_every: int = 50_000) -> None:
        self.journal = journal
        journal.refresh()
        self.engine: Engine
        self.engine, self.applied_seq = recover(journal.directory, journal=journal, factory=factory)
        self.applied_ts = journal.last_ts
        self._snapshot_every = snapshot_every
        self._snapshot_seq = self.applied_seq
        self.stream_seq = journal.stream_seq
        # request id -> (command, engine result) of the tagged commands applied (a gateway's cancel or
        # amend): the new leader answers their retries with them (``venue.remote``)
        self.answers: OrderedDict[str, tuple[Command, Result]] = OrderedDict()

    def catch_up(self) -> int:
        """Apply every message appended since the last call (blocking; run it in a thread).
        Returns how many commands were applied."""
        applied = 0
        for msg in self.journal.messages(self.stream_seq):
            applied += self.apply(msg)
        if self.applied_seq - self._snapshot_seq >= self._snapshot_every:
            data = encode_snapshot(self.applied_seq, self.applied_ts, self.engine.snapshot())
            write_snapshot_bytes(self.journal.directory, self.applied_seq, data)
            self._snapshot_seq = self.applied_seq
        return applied

    def apply(self, msg: StreamMessage) -> int:
        if msg.stream_seq <= self.stream_seq:
            return 0
        cmds: list[Command] = []
        for seq, payload in split_records(msg):
            if seq <= self.applied_seq:
                continue
            if seq != self.applied_seq + len(cmds) + 1:
                raise JournalError(f"stream gap: command {seq} after {self.applied_seq + len(cmds)}")
            cmds.append(codec.decode(payload))
            self.journal.note(seq, payload)
        many = batch_processor(self.engine)
        if cmds:
            results = many(cmds) if many is not None else [self.engine.process(cmd) for cmd in cmds]
            for seq, rid in msg.requests:
                index = seq - self.applied_seq - 1
                if 0 <= index < len(cmds):
                    self.answers[rid] = (cmds[index], results[index])
            while len(self.answers) > _ANSWERS:
                self.answers.popitem(last=False)
            self.applied_seq += len(cmds)
            self.applied_ts = msg.last_ts
        self.stream_seq = msg.stream_seq
        self.journal.advance(msg)
        return len(cmds)


@dataclass(slots=True)
class Takeover:
    """What a follower hands to the venue when it becomes leader."""

    journal: NatsJournal
    engine: Engine
    lease: Lease
    waited_s: float  # from the first moment the lease was seen free to the epoch appended
    claimed_at: float  # wall clock (s) when the epoch message was appended
    answers: OrderedDict[str, tuple[Command, Result]]  # ``Follower.answers``
    claimed_seq: int = 0  # the epoch message's stream sequence (grows with every takeover)


def _acquired(lease: Lease) -> bool:
    try:
        return lease.acquire()
    except Exception as exc:  # NATS failing over: the caller tries again
        log.warning("cannot take the lease: %r", exc)
        return False


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def _caught_up(follower: Follower) -> bool:
    """``follower.catch_up`` in a thread; False (after a pause) when NATS did not answer."""
    try:
        await asyncio.to_thread(follower.catch_up)
    except JournalUnavailableError as exc:
        log.warning("cannot read the stream (retrying): %s", exc)
        await asyncio.sleep(0.5)
        return False
    return True


async def become_leader(config: VenueConfig, role: str, *, on_standby: Callable[[], None] | None = None,
                        stop: asyncio.Event | None = None, shard: Shard | None = None) -> Takeover | None:
    """Follow the stream until this process holds the lease, then claim the stream. None if
    ``stop`` was set first."""
    if role not in ROLES:
        raise HAError("HA_ROLE_INVALID", f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not config.journal_url:
        raise HAError("HA_NEEDS_NATS", "--role needs journal_url = nats://... (the replicated journal)")
    journal = await asyncio.to_thread(NatsJournal.open, config.journal_url, config.journal_dir,
                                      replicas=config.journal_replicas)
    lease_conn: NatsLoop | None = None
    try:
        # the lease on a connection of its own: it is released after the venue closed the journal
        lease_conn = await asyncio.to_thread(NatsLoop, parse_url(config.journal_url)[0],
                                             timeout=max(0.5, config.lease_ttl_s / 2))
        lease = Lease(lease_conn, ttl=config.lease_ttl_s, holder=holder_name(), replicas=config.journal_replicas,
                      bucket=LEASE_BUCKET if shard is None else f"{LEASE_BUCKET}_{journal.stream}")
        factory = default_engine_factory() if shard is None else shard.engine_factory()  # shard ids (venue.shards)
        follower = await asyncio.to_thread(Follower, journal, factory=factory,
                                           snapshot_every=config.snapshot_every)
        if role == "leader":
            holder = await asyncio.to_thread(lease.current)
            if holder is not None:
                raise HAError("LEASE_HELD", f"the leader lease is held by {holder}; start this one as a standby")
        not_before = time.monotonic() + (config.lease_ttl_s if role == "standby" else 0.0)
        announced = False
        free_since: float | None = None
        while True:
            if stop is not None and stop.is_set():
                journal.close()
                lease_conn.close()
                return None
            if not await _caught_up(follower):
                continue
            if time.monotonic() >= not_before:
                try:
                    holder = await asyncio.to_thread(lease.current)
                except Exception as exc:  # NATS failing over: ask again
                    log.warning("cannot read the lease: %r", exc)
                    await asyncio.sleep(0.5)
                    continue
                if holder is None:
                    free_since = free_since or time.monotonic()
                    if await asyncio.to_thread(_acquired, lease):
                        break
                else:
                    free_since = None
            if not announced:
                announced = True
                log.warning("standing by: following the stream at command %d", follower.applied_seq)
                if on_standby is not None:
                    on_standby()
            await asyncio.sleep(0.05)
        # holding the lease: catch up to the tail and fence out any previous writer
        for _ in range(1000):
            if not await _caught_up(follower):
                continue
            try:
                await asyncio.to_thread(journal.claim)
                break
            except JournalFencedError:
                journal.reset_failure()  # the old leader appended meanwhile: catch up again
        else:
            raise HAError("HA_CLAIM_FAILED", "could not append the epoch message after 1000 attempts")
        waited = time.monotonic() - (free_since or time.monotonic())
        log.warning("leading from command %d (stream sequence %d)", follower.applied_seq, journal.stream_seq)
        return Takeover(journal=journal, engine=follower.engine, lease=lease, waited_s=waited,
                        claimed_at=time.time(), answers=follower.answers, claimed_seq=journal.stream_seq)
    except BaseException:
        journal.close()
        if lease_conn is not None:
            lease_conn.close()
        raise


def hold_lease(lease: Lease, alive: Callable[[], bool], *, on_lost: Callable[[str], None],
               stop: threading.Event) -> None:
    """Renew every third of the TTL while ``alive()`` and not ``stop``; ``on_lost(reason)`` when
    another process took the lease or the venue's sequencer failed (fenced by the stream). Runs in
    a thread of its own, so a busy event loop cannot lose the lease. A renewal that gets no answer
    (a NATS node died, the bucket elects a leader) is retried: if the key expired meanwhile and a
    standby took it, the next renewal is refused, and the stream refuses this leader's appends
    from the standby's epoch message on, so nothing is written twice either way."""
    period = lease.ttl / 3
    renewed = time.monotonic()
    while not stop.wait(min(0.05, period)):
        if not alive():
            on_lost("the sequencer stopped (fenced by the stream, or the journal failed)")
            return
        if time.monotonic() - renewed < period:
            continue
        try:
            ok = lease.renew()
        except Exception as exc:  # no answer: retry (see above)
            log.warning("lease renewal got no answer (%.1f s since the last one): %r", time.monotonic() - renewed, exc)
            time.sleep(0.2)
            continue
        if not ok:
            on_lost("the leader lease was taken by another process")
            return
        renewed = time.monotonic()


async def serve_ha(config: VenueConfig, role: str, *, shard: Shard | None = None) -> int:
    """``venue run --role``: stand by until leading, then run the venue on the engine the follower
    built; exit ``EXIT_DEPOSED`` at once when deposed (never answer another command)."""
    from venue.runtime import Venue

    takeover = await become_leader(config, role, shard=shard, on_standby=lambda: print(
        f"standby: following the stream {config.journal_url}", flush=True))
    assert takeover is not None
    venue: Venue | None = None
    responder: LeaderResponder | None = None
    pool_conn: NatsLoop | None = None

    def lost(reason: str) -> None:
        log.critical("deposed: %s; exiting without answering further commands", reason)
        print(f"deposed: {reason}", flush=True)
        os._exit(EXIT_DEPOSED)

    def alive() -> bool:
        return venue is None or not hasattr(venue, "sequencer") or venue.sequencer.failure is None

    stop_keeper = threading.Event()
    keeper = threading.Thread(target=hold_lease, args=(takeover.lease, alive), name="leader-lease", daemon=True,
                              kwargs={"on_lost": lost, "stop": stop_keeper})
    keeper.start()
    venue = Venue(config, handover=(takeover.journal, takeover.engine))
    try:
        started = time.monotonic()
        await venue.start()
        if shard is not None:  # owned instruments only; cash shared with the other shards (venue.shards)
            pool_conn = attach(venue, shard, config.journal_url or "", replicas=config.journal_replicas,
                               epoch=takeover.claimed_seq)
        servers, stream = parse_url(config.journal_url or "")
        responder = LeaderResponder(venue.core, servers, stream, alive=alive,  # for `venue gateway` processes
                                    earlier=takeover.answers)
        await responder.start()
        print(f"leader: lease free -> stream claimed in {takeover.waited_s:.3f} s, venue started in "
              f"{time.monotonic() - started:.3f} s (command {takeover.journal.last_seq}; claimed at "
              f"{takeover.claimed_at:.3f})", flush=True)
        await venue.serve(on_ready=lambda: print(f"venue listening on {venue.base_url} (leader; at {time.time():.3f})",
                                                 flush=True))
    finally:
        if responder is not None:
            await responder.stop()
        stop_keeper.set()
        await asyncio.to_thread(keeper.join)
        await venue.stop()
        if pool_conn is not None:
            pool_conn.close()
        takeover.lease.release()
        takeover.lease.close()
    return 0
