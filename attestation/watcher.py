"""Keeps the latest attestations per note series current from EAS and resolver events.

Each poll reads, for every block since the last poll, the EAS ``Attested`` / ``Revoked`` logs on our
four schemas whose recipient is a tracked series, and the resolver's ``AttestorSet`` logs; it then
reads exactly what those logs name at the polled head (``getAttestation``, ``isAttestor``, the
transaction of a delegated attestation for its signature) plus each series' ``totalSupply``, and
applies it to the cache in one step (``fetch`` does the I/O and never touches the cache, ``apply``
is the only writer, as in ``compliance.watcher``). A full re-sync rescans from the resolver's
deployment block and re-reads every attestation and registration on the first poll, for a newly
tracked series, and every ``resync_interval_s``.

Counting rules: an attestation counts while it is not revoked, not expired, and its attester holds
(at the watcher's head) a role the resolver allows for its kind and series. The resolver already
refuses unregistered attesters on chain; an attestor the issuer later removes stops counting, and
each such attestation is reported once (``ignored``, ``on_ignored``) and never used. The latest of a
kind is the counting one with the greatest ``as_of``.

Delegated attestations carry their EIP-712 signature, deadline and nonce so clients can verify them
(``attestation.verify``); the nonce is the attester's EAS nonce before the block plus its earlier
delegated attestations in that block (a delegated revocation by the same attester in the same block
would shift it; the signature then does not verify and the record says so).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception

from attestation.contracts import AttestationDeployment, eas_abi, resolver_abi
from attestation.errors import AttestationConfigError, AttestationSyncError, InvalidStatementError
from attestation.schemas import SATS_PER_BTC, Kind, NavStatement, Statement, decode_statement
from attestation.verify import AttestRequest, Eip712Domain, Signature, verify_attest_signature

log = logging.getLogger(__name__)

ATTESTED = keccak(text="Attested(address,address,bytes32,bytes32)")
REVOKED = keccak(text="Revoked(address,address,bytes32,bytes32)")
ATTESTOR_SET = keccak(text="AttestorSet(address,address,uint8,address)")
_ATTEST_BY_DELEGATION = keccak(
    text="attestByDelegation((bytes32,(address,uint64,bool,bytes32,bytes,uint256),(uint8,bytes32,bytes32),address,uint64))"
)[:4]
_DELEGATED_TYPES = ["(bytes32,(address,uint64,bool,bytes32,bytes,uint256),(uint8,bytes32,bytes32),address,uint64)"]
_ERC20 = [
    {"name": "totalSupply", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "decimals", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
]


class Standing(StrEnum):
    COUNTING = "counting"
    REVOKED = "revoked"
    EXPIRED = "expired"
    UNREGISTERED_SIGNER = "unregistered_signer"


@dataclass(frozen=True, slots=True, kw_only=True)
class DelegationProof:
    """What a client needs to re-verify a delegated attestation's EIP-712 signature."""

    domain: Eip712Domain
    request: AttestRequest
    signature: Signature

    def verifies(self) -> bool:
        return verify_attest_signature(self.domain, self.request, self.signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationRecord:
    """One EAS attestation on our schemas, as read at the watcher's head."""

    uid: bytes
    kind: Kind
    schema: bytes
    series: str
    attester: str
    statement: Statement
    time: int  # EAS timestamp (block time of the attestation)
    expiration_time: int  # 0 = none
    revocation_time: int  # 0 = not revoked
    tx_hash: str
    block_number: int
    log_index: int
    delegation: DelegationProof | None  # None for direct attestations (the attester sent the tx)

    @property
    def as_of(self) -> int:
        return self.statement.as_of

    @property
    def revoked(self) -> bool:
        return self.revocation_time != 0


@dataclass(frozen=True, slots=True, kw_only=True)
class IgnoredAttestation:
    record: AttestationRecord
    code: str  # "UNREGISTERED_SIGNER"
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesReference:
    """The reference figures of one note series (``None`` where no counting attestation exists)."""

    series: str
    head: int
    notes_outstanding: Decimal | None  # None: the series is not a readable ERC-20
    latest: dict[Kind, AttestationRecord]
    ages_s: dict[Kind, int]  # now - as_of, per kind present in ``latest``
    accrued_btc_per_note: Decimal | None
    custody_btc: Decimal | None
    custody_coverage: Decimal | None  # custody / (accrued per note x notes); None when nothing accrued
    nav_per_note: Decimal | None
    nav_currency: str | None
    realised_ph_s: Decimal | None
    uptime_bps: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationBatch:
    """Facts read at ``head``; ``AttestationWatcher.apply`` is the only step that uses them."""

    head: int
    next_block: int
    full: bool
    logs: int
    series: frozenset[str]
    records: tuple[AttestationRecord, ...] = ()
    registered: tuple[tuple[tuple[str, str, Kind], bool], ...] = ()
    supply: tuple[tuple[str, Decimal | None], ...] = ()


@contextmanager
def _rpc(what: str) -> Iterator[None]:
    try:
        yield
    except (Web3Exception, OSError, ValueError) as exc:
        raise AttestationSyncError(f"chain read failed ({what}): {type(exc).__name__}: {exc}") from exc


def _topic_address(topic: bytes) -> str:
    return Web3.to_checksum_address(bytes(topic)[-20:])


def _address_topic(address: str) -> str:
    return "0x" + "00" * 12 + Web3.to_checksum_address(address)[2:].lower()


@dataclass
class _State:
    records: dict[bytes, AttestationRecord] = field(default_factory=dict)
    registered: dict[tuple[str, str, Kind], bool] = field(default_factory=dict)
    supply: dict[str, Decimal | None] = field(default_factory=dict)


class AttestationWatcher:
    def __init__(
        self,
        w3: Web3,
        deployment: AttestationDeployment,
        *,
        series: Iterable[str] = (),
        confirmations: int = 0,
        resync_interval_s: float = 300.0,
        poll_interval_s: float = 1.0,
        max_block_range: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_ignored: Callable[[IgnoredAttestation], None] | None = None,
    ) -> None:
        if confirmations < 0 or max_block_range < 1 or poll_interval_s <= 0 or resync_interval_s <= 0:
            raise AttestationConfigError("confirmations >= 0, max_block_range >= 1 and positive intervals required")
        self._w3 = w3
        self.deployment = deployment
        self._eas = w3.eth.contract(address=Web3.to_checksum_address(deployment.eas), abi=eas_abi())
        self._resolver = w3.eth.contract(address=Web3.to_checksum_address(deployment.resolver), abi=resolver_abi())
        self._series: frozenset[str] = frozenset(Web3.to_checksum_address(s) for s in series)
        self.confirmations = confirmations
        self.resync_interval_s = resync_interval_s
        self.poll_interval_s = poll_interval_s
        self.max_block_range = max_block_range
        self._clock = clock
        self._wall = wall_clock
        self._on_ignored = on_ignored
        self._state = _State()
        self._next_block: int | None = None
        self._synced_series: frozenset[str] = frozenset()
        self._last_full = 0.0
        self._force_full = False
        self._decimals: dict[str, int] = {}
        self._domain: Eip712Domain | None = None
        self._reported: set[bytes] = set()
        self.ignored: list[IgnoredAttestation] = []
        self.polls = 0
        self.full_syncs = 0
        self.logs_seen = 0
        self.last_head = -1
        self.last_error: str | None = None

    # ------------------------------------------------------------ public

    @property
    def series(self) -> frozenset[str]:
        return self._series

    def track(self, series: str) -> None:
        """Follow another series (synced in full on the next poll)."""
        # replaced, never mutated: a fetch running in a worker thread keeps the set it started with
        self._series = self._series | {Web3.to_checksum_address(series)}

    def request_full_resync(self) -> None:
        self._force_full = True

    def poll_once(self) -> int:
        """Fetch and apply everything new up to the head; returns the number of logs seen."""
        batch = self.fetch()
        self.apply(batch)
        return batch.logs

    async def run(self, stop: asyncio.Event | None = None, *, in_thread: bool = True) -> None:
        """Poll until ``stop`` is set; RPC in a worker thread, cache updates on the loop."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                batch = await asyncio.to_thread(self.fetch) if in_thread else self.fetch()
                self.apply(batch)
            except AttestationSyncError as exc:
                self.last_error = str(exc)
                log.warning("attestation watcher: %s", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval_s)

    def records(self, series: str | None = None) -> list[AttestationRecord]:
        """Every known attestation (of one series), oldest first."""
        out = [r for r in self._state.records.values() if series is None or r.series == _cs(series)]
        return sorted(out, key=lambda r: (r.block_number, r.log_index))

    def standing(self, record: AttestationRecord, *, now: float | None = None) -> Standing:
        if record.revoked:
            return Standing.REVOKED
        if record.expiration_time and record.expiration_time <= (self._wall() if now is None else now):
            return Standing.EXPIRED
        if not self._state.registered.get((record.series, record.attester, record.kind), False):
            return Standing.UNREGISTERED_SIGNER
        return Standing.COUNTING

    def latest(self, series: str, kind: Kind, *, now: float | None = None) -> AttestationRecord | None:
        """The counting attestation of ``kind`` for ``series`` with the greatest ``as_of`` (expiry judged
        at ``now``, default the wall clock)."""
        now = self._wall() if now is None else now
        best: AttestationRecord | None = None
        for r in self._state.records.values():
            if r.series != _cs(series) or r.kind is not kind or self.standing(r, now=now) is not Standing.COUNTING:
                continue
            if best is None or (r.as_of, r.block_number, r.log_index) > (best.as_of, best.block_number, best.log_index):
                best = r
        return best

    def reference(self, series: str, *, now: float | None = None) -> SeriesReference:
        """Latest counting attestations of ``series`` and the figures derived from them; ages are
        ``now - as_of`` (``now`` defaults to the wall clock)."""
        series = _cs(series)
        now = int(self._wall() if now is None else now)
        latest = {k: r for k in Kind if (r := self.latest(series, k, now=now)) is not None}
        notes = self._state.supply.get(series)
        accrual, custody, nav, hashrate = (latest.get(k) for k in (Kind.ACCRUAL, Kind.CUSTODY, Kind.NAV, Kind.HASHRATE))
        accrued_sats = getattr(accrual.statement, "accrued_sats_per_note", None) if accrual else None
        custody_sats = getattr(custody.statement, "btc_balance_sats", None) if custody else None
        coverage: Decimal | None = None
        if accrued_sats is not None and custody_sats is not None and notes is not None and accrued_sats * notes > 0:
            coverage = Decimal(custody_sats) / (Decimal(accrued_sats) * notes)
        nav_statement = nav.statement if nav is not None and isinstance(nav.statement, NavStatement) else None
        return SeriesReference(
            series=series,
            head=self.last_head,
            notes_outstanding=notes,
            latest=latest,
            ages_s={k: now - r.as_of for k, r in latest.items()},
            accrued_btc_per_note=None if accrued_sats is None else Decimal(accrued_sats) / SATS_PER_BTC,
            custody_btc=None if custody_sats is None else Decimal(custody_sats) / SATS_PER_BTC,
            custody_coverage=coverage,
            nav_per_note=None if nav_statement is None else nav_statement.nav_per_note,
            nav_currency=None if nav_statement is None else nav_statement.currency,
            realised_ph_s=getattr(hashrate.statement, "realised_ph_s", None) if hashrate else None,
            uptime_bps=getattr(hashrate.statement, "uptime_bps", None) if hashrate else None,
        )

    # ------------------------------------------------------------ fetch (I/O only)

    def fetch(self) -> AttestationBatch:
        """Read what changed up to the head (RPC only; safe in a worker thread)."""
        series = self._series
        with _rpc("block number"):
            head = int(self._w3.eth.block_number) - self.confirmations
        start = self.deployment.start_block
        full = (self._force_full or self._next_block is None or not series <= self._synced_series
                or self._clock() - self._last_full >= self.resync_interval_s)
        frm = start if full else max(start, self._next_block or start)
        if head < frm or not series:
            return AttestationBatch(head=head, next_block=max(frm, head + 1) if series else frm, full=full,
                                    logs=0, series=series,
                                    supply=tuple((s, self._read_supply(s, head)) for s in sorted(series)))
        eas_logs = self._get_logs(self.deployment.eas, [
            ["0x" + ATTESTED.hex(), "0x" + REVOKED.hex()],
            [_address_topic(s) for s in sorted(series)],
            None,
            ["0x" + self.deployment.schema_uid(k).hex() for k in Kind],
        ], frm, head)
        set_logs = self._get_logs(self.deployment.resolver, [["0x" + ATTESTOR_SET.hex()]], frm, head)
        known = self._state.records
        wanted: dict[bytes, Any] = {}  # uid -> the Attested log (for tx/block), None when only re-read
        for entry in eas_logs:
            uid = bytes(abi_decode(["bytes32"], bytes(entry["data"]))[0])
            if bytes(entry["topics"][0]) == ATTESTED:
                wanted[uid] = entry
            elif uid not in wanted:
                wanted[uid] = None
        if full:
            for uid in known:
                wanted.setdefault(uid, None)
        records = self._read_records(wanted, head)
        pairs: set[tuple[str, str, Kind]] = set()
        changed = {(_topic_address(e["topics"][1]), _topic_address(e["topics"][2])) for e in set_logs}
        for r in [*known.values(), *records]:
            if full or r.uid not in known or (r.series, r.attester) in changed:
                pairs.add((r.series, r.attester, r.kind))
        registered = tuple((p, self._is_attestor(p, head)) for p in sorted(pairs))
        return AttestationBatch(
            head=head, next_block=head + 1, full=full, logs=len(eas_logs) + len(set_logs), series=series,
            records=tuple(records), registered=registered,
            supply=tuple((s, self._read_supply(s, head)) for s in sorted(series)),
        )

    def apply(self, batch: AttestationBatch) -> None:
        """Apply a fetched batch (the only cache writer)."""
        state = self._state
        for r in batch.records:
            state.records[r.uid] = r
        for pair, ok in batch.registered:
            state.registered[pair] = ok
        state.supply.update(batch.supply)
        self._next_block = batch.next_block
        self.last_head = max(self.last_head, batch.head)
        self.polls += 1
        self.logs_seen += batch.logs
        if batch.full:
            self.full_syncs += 1
            self._last_full = self._clock()
            self._force_full = False
            self._synced_series = batch.series
        self.last_error = None
        for r in self.records():
            if r.uid in self._reported or self.standing(r) is not Standing.UNREGISTERED_SIGNER:
                continue
            self._reported.add(r.uid)
            ignored = IgnoredAttestation(
                record=r, code="UNREGISTERED_SIGNER",
                message=f"{r.kind.name} attestation 0x{r.uid.hex()} for {r.series} signed by {r.attester}, "
                        f"who is not a registered attestor for that series and kind: ignored",
            )
            self.ignored.append(ignored)
            log.warning("attestation watcher: %s", ignored.message)
            if self._on_ignored is not None:
                self._on_ignored(ignored)

    # ------------------------------------------------------------ reads

    def _get_logs(self, address: str, topics: Sequence[Any], start: int, end: int) -> list[Any]:
        out: list[Any] = []
        lo = start
        while lo <= end:
            hi = min(end, lo + self.max_block_range - 1)
            with _rpc(f"get_logs {lo}-{hi}"):
                out.extend(self._w3.eth.get_logs({
                    "fromBlock": lo, "toBlock": hi, "address": Web3.to_checksum_address(address),
                    "topics": list(topics),
                }))
            lo = hi + 1
        return sorted(out, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))

    def _read_records(self, wanted: dict[bytes, Any], head: int) -> list[AttestationRecord]:
        out: list[AttestationRecord] = []
        nonce_cursor: dict[tuple[str, int], int] = {}
        for uid, entry in wanted.items():
            with _rpc("getAttestation"):
                a = self._eas.functions.getAttestation(uid).call(block_identifier=head)
            kind = self.deployment.kind_of(bytes(a[1]))
            if kind is None:
                continue
            old = self._state.records.get(uid)
            try:
                statement = decode_statement(kind, bytes(a[9]))
            except InvalidStatementError as exc:  # the resolver decodes the same layout; cannot happen
                log.warning("attestation watcher: 0x%s: %s", uid.hex(), exc)
                continue
            if entry is None and old is None:
                continue  # a revocation of something we never saw attested (another series)
            tx_hash = "0x" + bytes(entry["transactionHash"]).hex() if entry is not None else old.tx_hash  # type: ignore[union-attr]
            block = int(entry["blockNumber"]) if entry is not None else old.block_number  # type: ignore[union-attr]
            log_index = int(entry["logIndex"]) if entry is not None else old.log_index  # type: ignore[union-attr]
            delegation = old.delegation if old is not None else self._delegation(tx_hash, block, nonce_cursor)
            out.append(AttestationRecord(
                uid=uid, kind=kind, schema=bytes(a[1]), series=Web3.to_checksum_address(a[6]),
                attester=Web3.to_checksum_address(a[7]), statement=statement, time=int(a[2]),
                expiration_time=int(a[3]), revocation_time=int(a[4]), tx_hash=tx_hash, block_number=block,
                log_index=log_index, delegation=delegation,
            ))
        return out

    def _delegation(self, tx_hash: str, block: int, cursor: dict[tuple[str, int], int]) -> DelegationProof | None:
        with _rpc("get_transaction"):
            tx = self._w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        data = bytes(tx["input"])
        if data[:4] != _ATTEST_BY_DELEGATION:
            return None
        (req,) = abi_decode(_DELEGATED_TYPES, data[4:])
        schema, (recipient, expiration, revocable, ref_uid, payload, value), (v, r, s), attester, deadline = req
        attester = Web3.to_checksum_address(attester)
        key = (attester, block)
        if key not in cursor:
            with _rpc("getNonce"):
                cursor[key] = int(self._eas.functions.getNonce(attester).call(block_identifier=block - 1))
        nonce = cursor[key]
        cursor[key] = nonce + 1
        return DelegationProof(
            domain=self._eip712_domain(),
            request=AttestRequest(
                attester=attester, schema=bytes(schema), recipient=Web3.to_checksum_address(recipient),
                expiration_time=int(expiration), revocable=bool(revocable), ref_uid=bytes(ref_uid),
                data=bytes(payload), value=int(value), nonce=nonce, deadline=int(deadline),
            ),
            signature=Signature(v=int(v), r=bytes(r), s=bytes(s)),
        )

    def _eip712_domain(self) -> Eip712Domain:
        if self._domain is None:
            with _rpc("eip712Domain"):
                d = self._eas.functions.eip712Domain().call()
            self._domain = Eip712Domain(name=d[1], version=d[2], chain_id=int(d[3]),
                                        verifying_contract=Web3.to_checksum_address(d[4]))
        return self._domain

    def _is_attestor(self, pair: tuple[str, str, Kind], head: int) -> bool:
        series, attester, kind = pair
        with _rpc("isAttestor"):
            return bool(self._resolver.functions.isAttestor(series, attester, int(kind)).call(block_identifier=head))

    def _read_supply(self, series: str, head: int) -> Decimal | None:
        """Notes outstanding (``totalSupply`` / 10^decimals); None when ``series`` is not an ERC-20."""
        token = self._w3.eth.contract(address=Web3.to_checksum_address(series), abi=_ERC20)
        try:
            with _rpc("totalSupply"):
                if series not in self._decimals:
                    self._decimals[series] = int(token.functions.decimals().call())
                supply = int(token.functions.totalSupply().call(block_identifier=max(head, 0)))
        except AttestationSyncError as exc:
            if isinstance(exc.__cause__, (BadFunctionCallOutput, ContractLogicError)):
                log.warning("attestation watcher: %s is not an ERC-20 token: %s", series, exc)
                return None
            raise
        scale = Decimal(10) ** self._decimals[series]
        return Decimal(supply) / scale


def _cs(address: str) -> str:
    return Web3.to_checksum_address(address)
