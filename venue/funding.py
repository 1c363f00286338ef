"""Cash holds that span shards: a funding ledger in a JetStream key-value bucket.

Each shard's gate reserves a buyer's cash against the wallet's on-chain balance (``compliance.ledger``).
With several shards each would see the whole balance and over-commit it, so in a sharded deployment
every shard also keeps its share of each wallet's reserved cash in one bucket, ``omn_funding_<BASE>``:

    key     ``<wallet>.<cash token>`` (both lower-case hex addresses)
    value   JSON ``{"<shard>": {"held": reserved cash units, "pend": [[block, amount], ...]}, ...}``:
            each shard writes only its own entry

    reserve  before the gate accepts a buy (or an amend that raises a buy's cash), the shard sets its
             entry to ``its local reserved + the order's need`` with compare-and-set on the key's
             revision, and only if ``sum(other shards' entries) + that <= min(balance, allowance)``;
             a concurrent write by another shard makes the update fail and the check is redone on
             the fresh value. So at every revision of the key the sum of the shards' entries is at
             most the limit the writer checked against: no two shards can both spend the same cash.
    publish  every other change of the shard's local total (fill -> obligation, cancel, expiry,
             settlement) is written as it is, unconditionally (CAS loop, no check): those only lower
             the total, or raise it by what an earlier ``reserve`` already counted. A write that
             NATS does not answer is kept and retried at the next write: until then the bucket
             shows more reserved than the shard holds (conservative, never an over-commit).
    settled  a release of settled trades lowers ``held`` but is also kept as ``pend`` at the block
             the releasing shard's chain view had reached: the cash left the wallet in that block or
             before. A shard whose own view is older still sees the old balance, so it counts the
             pending amounts of blocks above its view as held (at most 8 pairs per entry; older ones
             merge into the later block, which only makes lagging readers more careful). Without
             this a shard that released a settled trade would let another, one watcher poll behind,
             spend the cash that had just left.
    recover  a shard that starts (or takes over as leader) rewrites its own entries from the
             ledger its recovery rebuilt from its book and unsettled trades (``rederive``), and zeroes
             its entries for wallets it no longer holds anything for. Each entry carries its writer's
             epoch (the stream sequence of the leader's claim, which grows with every takeover): a
             deposed leader of the same shard (paused, resumed before it notices) finds a newer
             epoch there and writes nothing more, while the new leader overwrites the old one's.

Notes (sells) and holding caps stay per shard: a token is traded on exactly one instrument, and an
instrument on exactly one shard, so a wallet's notes of one token are never held by two shards.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nats.js.errors import BadRequestError, KeyNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from journal.nats import NatsLoop, open_bucket

log = logging.getLogger(__name__)

_ATTEMPTS = 200  # compare-and-set rounds before giving up (each one lost to a concurrent writer)
_PENDING = 8  # settled releases kept per shard and key (older ones merge)


@dataclass(slots=True)
class _Entry:
    held: int  # the shard's reserved cash
    pend: list[tuple[int, int]]  # (block, amount): released as settled once the writer's view had that block
    epoch: int = 0  # the writer's leadership epoch (the stream sequence of its claim): newer wins


class FundingUnavailable(Exception):
    """The funding bucket did not answer or kept changing: the buy cannot be checked."""


def bucket_name(base_stream: str) -> str:
    return f"omn_funding_{base_stream}"


def _key(wallet: str, cash_token: str) -> str:
    return f"{wallet.lower()}.{cash_token.lower()}"


class FundingPool:
    """This shard's view of the shared funding bucket (``compliance.ledger.CashPool``). Thread-safe;
    every call is a blocking NATS round trip (or several under contention)."""

    def __init__(self, conn: NatsLoop, bucket: str, shard: str, *, replicas: int = 1,
                 view_block: Callable[[], int] = lambda: 0, epoch: int = 0) -> None:
        self._conn = conn
        self.epoch = epoch  # grows with every takeover of the shard (the stream sequence of the claim)
        self._view_block = view_block  # the last block this shard's chain view has applied
        self.bucket = bucket
        self.shard = shard
        self._replicas = replicas
        self._kv: KeyValue | None = None
        self._lock = threading.RLock()
        self._published: dict[str, int] = {}  # key -> the value of our entry NATS acknowledged
        self._known: dict[str, tuple[dict[str, _Entry], int]] = {}  # key -> (entries, revision) last seen
        self._dirty: dict[str, tuple[int, bool]] = {}  # key -> (value, settled) NATS has not acknowledged yet

    def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = self._conn.call(self._open())
        return self._kv

    async def _open(self) -> KeyValue:
        return await open_bucket(self._conn.js, self.bucket, replicas=self._replicas)

    # ------------------------------------------------------------ reads

    def _get(self, key: str) -> tuple[dict[str, _Entry], int]:
        """(entries, revision); revision 0 when the key does not exist yet."""
        try:
            entry = self._conn.call(self._bucket().get(key))
        except (KeyNotFoundError, NotFoundError):
            return {}, 0
        if entry.value is None or entry.revision is None:
            return {}, entry.revision or 0
        raw = json.loads(entry.value)
        if not isinstance(raw, dict):
            raise FundingUnavailable(f"funding entry {key} is not an object")
        return {str(k): _Entry(held=int(v["held"]), pend=[(int(b), int(a)) for b, a in v["pend"]],
                               epoch=int(v.get("epoch", 0))) for k, v in raw.items()}, entry.revision

    def holds(self, wallet: str, cash_token: str) -> dict[str, int]:
        """Every shard's reserved cash for this wallet and cash token (without settled releases)."""
        return {shard: e.held for shard, e in self._get(_key(wallet, cash_token))[0].items()}

    def total(self, wallet: str, cash_token: str) -> int:
        return sum(self.holds(wallet, cash_token).values())

    # ------------------------------------------------------------ writes

    def _write(self, key: str, entries: dict[str, _Entry], revision: int) -> int:
        """Compare-and-set: the new revision, 0 when another writer got there first."""
        payload = json.dumps({k: {"held": e.held, "pend": e.pend, "epoch": e.epoch} for k, e in entries.items()},
                             sort_keys=True).encode()
        kv = self._bucket()
        try:
            if revision == 0:
                return int(self._conn.call(kv.create(key, payload)))
            return int(self._conn.call(kv.update(key, payload, last=revision)))
        except BadRequestError:  # wrong last sequence / key exists: re-read and retry
            return 0

    def _set(self, key: str, total: int, limit: int | None, *, settled: bool = False) -> int | None:
        """Set our entry to ``total`` (checked against ``limit`` when given). None when written,
        else the other shards' sum that refused it. ``settled``: a decrease releases settled trades,
        kept as pending for readers whose chain view is older than ours (the module docstring)."""
        for _ in range(_ATTEMPTS):
            # the value this shard last wrote or read: current unless another shard wrote since,
            # in which case the compare-and-set fails and the next round reads it
            known = self._known.pop(key, None)
            entries, revision = known if known is not None else self._get(key)
            seen = self._view_block()
            others = sum(e.held + sum(a for b, a in e.pend if b > seen)
                         for shard, e in entries.items() if shard != self.shard)
            if limit is not None and others + total > limit:
                if known is None:
                    return others  # read just now: a refusal on the current value
                continue  # refused on a remembered value: read the current one first
            mine = entries.get(self.shard, _Entry(held=0, pend=[]))
            if mine.epoch > self.epoch:  # a newer leader of this shard wrote it: this process was deposed
                raise FundingUnavailable(f"funding entry {key} of shard {self.shard} is at epoch {mine.epoch}, "
                                         f"this process at {self.epoch}")
            if mine.held == total and mine.epoch == self.epoch and revision:
                self._known[key] = (entries, revision)
                self._published[key] = total
                return None
            pend = list(mine.pend)
            if settled and mine.held > total:
                pend.append((seen, mine.held - total))
            while len(pend) > _PENDING:  # merge the two oldest: later block, both amounts (conservative)
                (_, a1), (b2, a2) = pend[0], pend[1]
                pend[:2] = [(b2, a1 + a2)]
            entries[self.shard] = _Entry(held=total, pend=pend, epoch=self.epoch)
            revision = self._write(key, entries, revision)
            if revision:
                self._known[key] = (entries, revision)
                self._published[key] = total
                return None
        raise FundingUnavailable(f"funding entry {key} kept changing ({_ATTEMPTS} attempts)")

    def _flush(self) -> None:
        for key, (total, settled) in list(self._dirty.items()):
            self._set(key, total, None, settled=settled)
            if self._dirty.get(key) == (total, settled):
                del self._dirty[key]

    def reserve(self, wallet: str, cash_token: str, total: int, limit: int) -> int | None:
        """Raise this shard's reserved cash for the wallet to ``total`` if every shard's together stays
        within ``limit``. None when reserved; else what the other shards hold (the gate refuses).
        Raises ``FundingUnavailable`` when NATS does not answer (the gate refuses then too)."""
        key = _key(wallet, cash_token)
        with self._lock:
            try:
                self._flush()
                refused = self._set(key, total, limit)
            except FundingUnavailable:
                raise
            except Exception as exc:
                raise FundingUnavailable(f"funding bucket unavailable: {exc!r}") from exc
            if refused is None:
                self._dirty.pop(key, None)
            return refused

    def publish(self, wallet: str, cash_token: str, total: int, *, settled: bool = False) -> None:
        """This shard's reserved cash for the wallet is now ``total`` (the ledger changed it; ``settled``:
        by releasing settled trades). Never raises: an unanswered write stays pending and is retried
        at the next write."""
        key = _key(wallet, cash_token)
        with self._lock:
            if self._published.get(key) == total and key not in self._dirty:
                return
            earlier = self._dirty.get(key)
            self._dirty[key] = (total, settled or (earlier is not None and earlier[1]))
            try:
                self._flush()
            except Exception as exc:
                log.warning("funding bucket: %d writes pending (%r)", len(self._dirty), exc)

    def rederive(self, totals: Mapping[tuple[str, str], int]) -> None:
        """Recovery: our entries become exactly ``totals`` ((wallet, cash token) -> reserved); our
        entries for other keys are zeroed. Raises when NATS does not answer (the shard cannot lead)."""
        wanted = {_key(w, t): v for (w, t), v in totals.items() if v}
        with self._lock:
            self._dirty.clear()
            self._published.clear()
            self._known.clear()
            try:
                keys = self._conn.call(self._bucket().keys())
            except (NoKeysError, NotFoundError):  # nats-py raises these for an empty bucket
                keys = []
            for key in set(keys) | set(wanted):
                entries, _ = self._get(key)
                if key in wanted or (self.shard in entries and entries[self.shard].held):
                    # what the shard no longer holds may have been settled meanwhile: pending
                    self._set(key, wanted.get(key, 0), None, settled=True)
