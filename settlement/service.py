"""Settlement service: batches venue trades into DvP transactions and reports each trade's fate.

Each batch is one ``settle(Trade[])`` transaction signed with the settler key. The service manages
the settler nonce and EIP-1559 fees (re-broadcasting the same nonce with bumped fees when a receipt
is late), waits for the receipt and ``confirmations`` more blocks, and reports every trade as
``CONFIRMED`` or ``FAILED`` (with a readable reason). Decided once: the contract records every trade
id it settled *or* failed and answers a resubmission with ``TradeAlreadyDecided``, moving nothing; so
after a crash ``recover()`` reads the outcomes from the chain's events and resubmits only undecided
trades, and even a stale in-flight transaction landing later cannot change an outcome.

Finality (``finality=`` a depth or ``"finalized"``): a settled trade is ``CONFIRMED`` at
``confirmations`` and ``FINAL`` once its block is final; a failure is reported only once final, so a
trade told "failed" can never settle. A reorg that drops a decision before it is final puts the
trade back in the queue (``PENDING``). Each state is reported once per trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint, TxReceipt

from market.model import SettlementState
from market.model import SettlementUpdate as SettlementUpdate
from market.signed import OrderTuple, SignedOrder
from settlement import artifacts
from settlement.chain import Chain, fee_params, rpc_errors
from settlement.errors import (
    ChainError,
    ChainReorgError,
    InvalidTradeError,
    TransactionRevertedError,
    TransactionTimeoutError,
)
from settlement.revert import decode_revert

logger = logging.getLogger(__name__)

_UINT256_MAX = 2**256 - 1


@functools.lru_cache(maxsize=8192)
def _checksummed(value: str) -> ChecksumAddress | None:
    """Validated + checksummed address, cached: a venue settles between few wallets and tokens,
    and ``submit`` runs on the event loop, where four keccak checksums per trade showed up."""
    return Web3.to_checksum_address(value) if Web3.is_address(value) else None
_TRADES_TYPE = "(uint256,address,address,address,uint256,address,uint256)[]"
_SETTLE_SELECTOR = keccak(text=f"settle({_TRADES_TYPE})")[:4]
_TRADE_TUPLE = "(uint256,address,address,address,uint256,address,uint256)"
_SIGNED_TRADES_TYPE = f"({_TRADE_TUPLE},uint256,uint256)[]"
_SIGNED_ORDERS_TYPE = "((address,address,address,bool,uint256,uint256,uint256,uint256),bytes)[]"
_SETTLE_SIGNED_SELECTOR = keccak(text=f"settleSigned({_SIGNED_TRADES_TYPE},{_SIGNED_ORDERS_TYPE})")[:4]
_TRADE_SETTLED = keccak(text="TradeSettled(uint256)")
_TRADE_FAILED = keccak(text="TradeFailed(uint256,bytes)")
_TRADE_ALREADY_DECIDED = keccak(text="TradeAlreadyDecided(uint256,bool)")
_DECISION_TOPICS = [_TRADE_SETTLED, _TRADE_FAILED, _TRADE_ALREADY_DECIDED]

Finality = int | Literal["finalized"]
"""How a block becomes final: ``"finalized"`` (the node's finalized block tag, for real chains) or a
depth (``head - depth``, for anvil and the in-process EVM)."""


def default_finality(chain: Chain, *, dev_depth: int = 2) -> Finality:
    """``dev_depth`` blocks on a chain we run ourselves (in-process EVM, ``start_anvil``), whose
    ``finalized`` tag is either the head or 64 blocks back; the node's ``finalized`` tag elsewhere."""
    return dev_depth if chain.name == "in-process" or chain.name.startswith("anvil:") else "finalized"


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeToSettle:
    """One matched trade: ``quantity`` token base units seller->buyer, ``cash_amount`` cash units back.
    ``sell_order`` / ``buy_order``: the side's investor-signed order, for sides in signed mode."""

    trade_id: int
    token: str
    seller: str
    buyer: str
    quantity: int
    cash_token: str
    cash_amount: int
    sell_order: SignedOrder | None = None
    buy_order: SignedOrder | None = None

    @property
    def signed(self) -> bool:
        return self.sell_order is not None or self.buy_order is not None

    def normalized(self) -> TradeToSettle:
        """Checksummed addresses; raises ``InvalidTradeError`` for anything the contract would refuse."""
        for name in ("trade_id", "quantity", "cash_amount"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _UINT256_MAX:
                raise InvalidTradeError(f"trade {self.trade_id!r}: {name} must be a positive uint256, got {value!r}")
        addresses: dict[str, ChecksumAddress] = {}
        for name in ("token", "seller", "buyer", "cash_token"):
            value = getattr(self, name)
            checksummed = _checksummed(value) if isinstance(value, str) else None
            if checksummed is None:
                raise InvalidTradeError(f"trade {self.trade_id}: {name} is not an address: {value!r}")
            addresses[name] = checksummed
        if addresses["seller"] == addresses["buyer"]:
            raise InvalidTradeError(f"trade {self.trade_id}: seller and buyer are the same wallet")
        return TradeToSettle(
            trade_id=self.trade_id, quantity=self.quantity, cash_amount=self.cash_amount,
            sell_order=_checksummed_order(self.trade_id, self.sell_order),
            buy_order=_checksummed_order(self.trade_id, self.buy_order), **addresses,
        )

    def as_tuple(self) -> tuple[int, str, str, str, int, str, int]:
        return (self.trade_id, self.token, self.seller, self.buyer, self.quantity, self.cash_token, self.cash_amount)


def _checksummed_order(trade_id: int, order: SignedOrder | None) -> SignedOrder | None:
    if order is None:
        return None
    wallet, token, cash_token = (_checksummed(a) for a in (order.wallet, order.token, order.cash_token))
    if wallet is None or token is None or cash_token is None:
        raise InvalidTradeError(f"trade {trade_id}: a signed order's wallet or token is not an address")
    return replace(order, wallet=wallet, token=token, cash_token=cash_token)


def encode_settle_signed(batch: Sequence[TradeToSettle]) -> bytes:
    """Calldata of ``settleSigned``: each distinct signed order once, trades pointing at it (1-based)."""
    orders: dict[tuple[OrderTuple, bytes], int] = {}

    def ref(order: SignedOrder | None) -> int:
        if order is None:
            return 0
        return orders.setdefault((order.as_tuple(), order.signature), len(orders) + 1)

    trades = [(t.as_tuple(), ref(t.sell_order), ref(t.buy_order)) for t in batch]
    return _SETTLE_SIGNED_SELECTOR + abi_encode(
        [_SIGNED_TRADES_TYPE, _SIGNED_ORDERS_TYPE], [trades, [list(key) for key in orders]]
    )


# The settlement state machine is the venue's (``market``); the old name stays for callers.
SettlementStatus = SettlementState

UpdateCallback = Callable[[SettlementUpdate], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainOutcomes:
    """Trade outcomes read from the settlement contract's events (``SettlementService.outcomes_since``).

    ``outcomes`` maps trade id to a ``CONFIRMED`` or ``FAILED`` update as the chain decided it.
    ``final_block``: outcomes in blocks up to it are final; once they are recorded, the next scan
    may start at ``final_block + 1``.
    """

    outcomes: dict[int, SettlementUpdate]
    from_block: int
    to_block: int
    final_block: int


@dataclass(slots=True)
class _Undecided:
    """A trade whose decision was seen on chain but is not final yet (finality tracking)."""

    trade: TradeToSettle
    update: SettlementUpdate  # CONFIRMED or FAILED, as decided
    block_hash: bytes | None  # of the receipt's block; None when known only from the contract's state


@dataclass(frozen=True, slots=True)
class _Receipt:
    block: int
    block_hash: bytes
    status: int
    gas_used: int
    logs: list[tuple[str, list[bytes], bytes]]  # (lower-case address, topics, data)

    @classmethod
    def from_json(cls, raw: Any) -> _Receipt | None:
        if not raw or raw.get("blockNumber") is None:
            return None
        return cls(
            block=int(raw["blockNumber"], 16),
            block_hash=bytes.fromhex(str(raw["blockHash"])[2:]),
            status=int(raw["status"], 16),
            gas_used=int(raw["gasUsed"], 16),
            logs=[
                (
                    str(log["address"]).lower(),
                    [bytes.fromhex(t[2:]) for t in log["topics"]],
                    bytes.fromhex(str(log["data"])[2:]),
                )
                for log in raw["logs"]
            ],
        )

    @classmethod
    def from_web3(cls, receipt: TxReceipt | None) -> _Receipt | None:
        if receipt is None or receipt.get("blockNumber") is None:
            return None
        return cls(
            block=int(receipt["blockNumber"]),
            block_hash=bytes(receipt["blockHash"]),
            status=int(receipt["status"]),
            gas_used=int(receipt["gasUsed"]),
            logs=[
                (str(log["address"]).lower(), [bytes(t) for t in log["topics"]], bytes(log["data"]))
                for log in receipt["logs"]
            ],
        )


@dataclass(slots=True)
class _Broadcast:
    nonce: int
    hashes: list[HexBytes] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


class SettlementService:
    """Batching settler. ``submit`` is thread-safe; ``run`` is the asyncio loop; ``settle_batch`` is
    the blocking core (used by ``run`` through ``asyncio.to_thread``, and directly by benchmarks).

    ``on_update`` is called on the event-loop thread when driven by ``run``; when ``settle_batch``,
    ``check_finality`` or ``recover`` is called directly it runs on the caller's thread. It sees each
    state of a trade once (a retried batch does not repeat ``SUBMITTED``).

    ``finality=None`` (default): ``CONFIRMED`` / ``FAILED`` are the last word. With a ``Finality``,
    decisions are watched until final: ``CONFIRMED`` then ``FINAL`` for a settled trade, ``FAILED``
    only once the failure is final, and a reorg that removes a decision re-queues the trade.
    """

    def __init__(
        self,
        chain: Chain,
        settlement_address: str,
        settler_key: bytes,
        *,
        on_update: UpdateCallback,
        max_batch: int = 50,
        confirmations: int = 0,
        receipt_timeout: float = 30.0,
        max_fee_bumps: int = 3,
        confirmation_timeout: float = 120.0,
        linger: float = 0.0,
        retry_delay: float = 1.0,
        finality: Finality | None = None,
        finality_poll: float = 1.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        if finality is not None and finality != "finalized" and (isinstance(finality, bool) or finality < 0):
            raise ValueError('finality must be a depth >= 0 or "finalized"')
        self.chain = chain
        self.contract = chain.our_contract("DvPSettlement", settlement_address)
        self._key = settler_key
        self.settler: ChecksumAddress = Web3.to_checksum_address(Account.from_key(settler_key).address)
        self._on_update = on_update
        self.max_batch = max_batch
        self.confirmations = confirmations
        self.receipt_timeout = receipt_timeout
        self.max_fee_bumps = max_fee_bumps
        self.confirmation_timeout = confirmation_timeout
        self.linger = linger
        self.retry_delay = retry_delay
        self.finality = finality
        self.finality_poll = finality_poll
        self._queue: deque[TradeToSettle] = deque()
        self._queued_ids: set[int] = set()
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._busy = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._chain_id: int | None = None
        self._reported: dict[int, SettlementStatus] = {}  # last state told to on_update, until terminal
        self._undecided: dict[int, _Undecided] = {}  # decided on chain, not final yet (finality tracking)
        self._final_through: int | None = None
        self._deployed_at: int | None = None

    # ---- notifications: each state of a trade once
    def _notify(self, update: SettlementUpdate, emit: UpdateCallback) -> None:
        terminal = update.status in (SettlementStatus.FINAL, SettlementStatus.FAILED) or (
            update.status is SettlementStatus.CONFIRMED and self.finality is None
        )
        with self._lock:
            if self._reported.get(update.trade_id) is update.status:
                return
            if terminal:
                self._reported.pop(update.trade_id, None)
            else:
                self._reported[update.trade_id] = update.status
        emit(update)

    # ---- queue
    def submit(self, trade: TradeToSettle) -> None:
        """Enqueue a trade (validated now, so bad input never reaches the chain)."""
        trade = trade.normalized()
        self._enqueue(trade)
        self._notify(SettlementUpdate(trade_id=trade.trade_id, status=SettlementStatus.PENDING), self._on_update)
        self._wake()

    def _enqueue(self, trade: TradeToSettle) -> None:
        with self._lock:
            if trade.trade_id in self._queued_ids:
                raise InvalidTradeError(f"trade {trade.trade_id} is already queued")
            self._queue.append(trade)
            self._queued_ids.add(trade.trade_id)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def awaiting_finality(self) -> int:
        """Trades decided on chain whose decision is not final yet."""
        return len(self._undecided)

    @property
    def final_through(self) -> int | None:
        """Every decision in blocks up to this one has been reported final (``FINAL`` / ``FAILED``);
        ``None`` until ``recover`` or ``check_finality`` has run. Persist it and pass ``from_block=
        final_through + 1`` to ``recover`` after a restart (an older block is merely slower)."""
        return self._final_through

    def _wake(self) -> None:
        loop, event = self._loop, self._wakeup
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def _take_batch(self) -> list[TradeToSettle]:
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            return batch

    def _requeue_front(self, batch: Sequence[TradeToSettle]) -> None:
        with self._lock:
            self._queue.extendleft(reversed(batch))

    def _forget(self, batch: Iterable[TradeToSettle]) -> None:
        with self._lock:
            for t in batch:
                self._queued_ids.discard(t.trade_id)

    # ---- asyncio driver
    async def run(self) -> None:
        """Settle queued trades batch after batch until ``stop()``; with finality tracking, check
        every ``finality_poll`` seconds which decisions became final or were reorged away."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._stopping = False
        loop = self._loop
        next_check = 0.0

        def emit(update: SettlementUpdate) -> None:
            loop.call_soon_threadsafe(self._on_update, update)

        while not self._stopping:
            if self._undecided and time.monotonic() >= next_check:
                try:
                    await asyncio.to_thread(self.check_finality, emit=emit)
                except ChainError as exc:
                    logger.warning("finality check failed, will retry: %s", exc)
                next_check = time.monotonic() + self.finality_poll
                await asyncio.sleep(0)
            if not self.pending:
                wait = max(0.0, next_check - time.monotonic()) if self._undecided else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                self._wakeup.clear()
                continue
            if self.linger:
                await asyncio.sleep(self.linger)
            batch = self._take_batch()
            self._busy = True
            try:
                await asyncio.to_thread(self.settle_batch, batch, emit=emit)
            except ChainReorgError as exc:
                logger.warning("settlement batch of %d reorged away; queued again: %s", len(batch), exc)
                self._requeue_front(batch)
                self._nonce = None
                for t in batch:
                    self._notify(SettlementUpdate(trade_id=t.trade_id, status=SettlementStatus.PENDING), emit)
            except ChainError as exc:
                # Node trouble: nothing is lost; the contract's trade ids make a retry safe.
                logger.warning("settlement batch of %d will be retried: %s", len(batch), exc)
                self._requeue_front(batch)
                self._nonce = None
                await asyncio.sleep(self.retry_delay)
            except BaseException:
                # A bug or cancellation: keep the trades so a restart (or recover()) still settles them.
                self._requeue_front(batch)
                raise
            finally:
                self._busy = False
            await asyncio.sleep(0)  # let queued update callbacks run

    def start(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self.run(), name="settlement-service")

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    async def drain(self, timeout: float | None = None, *, final: bool = False) -> None:
        """Wait until every submitted trade has been settled or failed (``final=True``: and every
        decision is final; needs ``run`` and finality tracking)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending or self._busy or (final and self._undecided):
            if deadline is not None and time.monotonic() > deadline:
                raise TransactionTimeoutError(f"settlement not drained within {timeout}s")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)

    # ---- outcomes from the chain, crash recovery
    def final_block(self) -> int:
        """Highest final block: the node's ``finalized`` tag, or head minus the configured depth
        (without finality tracking: the head)."""
        w3 = self.chain.w3
        with rpc_errors("final block"):
            if self.finality == "finalized":
                return int(w3.eth.get_block("finalized")["number"])
            head = int(w3.eth.block_number)
        return head - (self.finality or 0)

    def outcomes_since(
        self, from_block: int, *, trade_ids: Iterable[int] | None = None, chunk_size: int = 2_000
    ) -> ChainOutcomes:
        """Decided outcomes from ``TradeSettled`` / ``TradeFailed`` / ``TradeAlreadyDecided`` logs in
        blocks ``from_block``..head, read with ``eth_getLogs`` in chunks of ``chunk_size`` blocks;
        ``trade_ids`` restricts the result. An id seen only as "already decided" gets its original
        event looked up (from the contract's deployment block on)."""
        if from_block < 0 or chunk_size < 1:
            raise ValueError("from_block must be >= 0 and chunk_size >= 1")
        wanted = None if trade_ids is None else set(trade_ids)
        final_block = self.final_block()
        with rpc_errors("block number"):
            head = int(self.chain.w3.eth.block_number)
        outcomes: dict[int, SettlementUpdate] = {}
        earlier: dict[int, bool] = {}  # id -> settled, from TradeAlreadyDecided
        start = max(from_block, self._deployment_block())  # nothing to read before the contract existed
        while start <= head:
            end = min(start + chunk_size - 1, head)
            for tid, update, settled in self._decision_logs(start, end, [_DECISION_TOPICS]):
                if wanted is not None and tid not in wanted:
                    continue
                if update is not None:
                    outcomes.setdefault(tid, update)
                else:
                    earlier.setdefault(tid, settled)
            start = end + 1
        missing = [tid for tid in earlier if tid not in outcomes]
        originals = self._originals(missing, head, chunk_size)
        for tid in missing:
            outcomes[tid] = originals.get(tid) or _already(tid, earlier[tid], None)
        return ChainOutcomes(outcomes=outcomes, from_block=from_block, to_block=head, final_block=final_block)

    def _originals(
        self, trade_ids: Iterable[int], to_block: int, chunk_size: int = 2_000
    ) -> dict[int, SettlementUpdate]:
        """The ``TradeSettled`` / ``TradeFailed`` event that decided each id (the contract keeps only
        a bit per id), searched from the contract's deployment block up to ``to_block``."""
        ids = sorted(set(trade_ids))
        if not ids:
            return {}
        topics = [[_TRADE_SETTLED, _TRADE_FAILED], [tid.to_bytes(32, "big") for tid in ids]]
        found: dict[int, SettlementUpdate] = {}
        start = self._deployment_block()
        while start <= to_block and len(found) < len(ids):
            end = min(start + chunk_size - 1, to_block)
            for tid, update, _ in self._decision_logs(start, end, topics):
                if update is not None:
                    found.setdefault(tid, update)
            start = end + 1
        return found

    def _deployment_block(self) -> int:
        if self._deployed_at is None:
            with rpc_errors("deployedAt"):
                self._deployed_at = int(self.contract.functions.deployedAt().call())
        return self._deployed_at

    def _decision_logs(
        self, start: int, end: int, topics: list[list[bytes]]
    ) -> list[tuple[int, SettlementUpdate | None, bool]]:
        """(trade id, the decision, settled) per log; the decision is None for ``TradeAlreadyDecided``."""
        with rpc_errors("eth_getLogs"):
            logs = self.chain.w3.eth.get_logs(
                {
                    "address": self.contract.address,
                    "fromBlock": start,
                    "toBlock": end,
                    # hex strings: eth-tester matches no log against HexBytes topics
                    "topics": [["0x" + t.hex() for t in alternatives] for alternatives in topics],
                }
            )
        out: list[tuple[int, SettlementUpdate | None, bool]] = []
        for log in logs:
            log_topics = [bytes(t) for t in log["topics"]]
            if len(log_topics) < 2:
                continue
            tid, block, tx = int.from_bytes(log_topics[1], "big"), int(log["blockNumber"]), _hex(log["transactionHash"])
            data = bytes(log["data"])
            if log_topics[0] == _TRADE_SETTLED:
                settled = SettlementUpdate(trade_id=tid, status=SettlementStatus.CONFIRMED, tx_hash=tx, block=block)
                out.append((tid, settled, True))
            elif log_topics[0] == _TRADE_FAILED:
                (raw_reason,) = abi_decode(["bytes"], data)
                reason = decode_revert(raw_reason)
                update = SettlementUpdate(
                    trade_id=tid, status=SettlementStatus.FAILED, tx_hash=tx, block=block, reason=reason
                )
                out.append((tid, update, False))
            elif log_topics[0] == _TRADE_ALREADY_DECIDED:
                (was_settled,) = abi_decode(["bool"], data)
                out.append((tid, None, bool(was_settled)))
        return out

    def recover(self, unfinished: Iterable[TradeToSettle], *, from_block: int = 0) -> list[SettlementUpdate]:
        """After a restart: resolve every trade the caller still thinks unfinished from the chain's
        events since ``from_block`` (see ``final_through``). Decided trades are returned and reported
        (``CONFIRMED``/``FAILED``, then ``FINAL`` with finality tracking); undecided ones are queued
        again without a new ``PENDING`` notice (resubmitting them is harmless either way)."""
        trades = [t.normalized() for t in unfinished]
        if not trades:
            return []
        scan = self.outcomes_since(from_block, trade_ids={t.trade_id for t in trades})
        decided: list[SettlementUpdate] = []
        for trade in trades:
            update = scan.outcomes.get(trade.trade_id)
            if update is None:
                self._enqueue(trade)
                with self._lock:
                    self._reported[trade.trade_id] = SettlementStatus.PENDING
                continue
            decided.append(update)
            self._decided(trade, update, None, self._on_update)
        if self.finality is None:
            self._final_through = scan.final_block
        else:
            self.check_finality()
        self._wake()
        return decided

    def is_settled(self, trade_id: int) -> bool:
        with rpc_errors("settled"):
            return bool(self.contract.functions.settled(trade_id).call())

    def decision(self, trade_id: int) -> tuple[bool, bool]:
        """The contract's record for ``trade_id``: (decided, settled)."""
        with rpc_errors("decision"):
            decided, settled = self.contract.functions.decision(trade_id).call()
        return bool(decided), bool(settled)

    # ---- finality
    def _decided(
        self, trade: TradeToSettle, update: SettlementUpdate, block_hash: bytes | None, emit: UpdateCallback
    ) -> None:
        """A decision seen on chain: report it now, or (finality tracking) watch it until final."""
        if self.finality is None:
            self._notify(update, emit)
            return
        if update.status is SettlementStatus.CONFIRMED:
            self._notify(update, emit)
        self._undecided[trade.trade_id] = _Undecided(trade=trade, update=update, block_hash=block_hash)

    def check_finality(self, *, emit: UpdateCallback | None = None) -> list[SettlementUpdate]:
        """Report decisions that became final (``FINAL`` for settled, ``FAILED`` for failed trades)
        and put back in the queue (``PENDING``) every trade whose decision a reorg removed.
        Blocking; ``run`` calls it every ``finality_poll`` seconds. Returns what it reported."""
        emit = emit or self._on_update
        if self.finality is None:
            return []
        final = self.final_block()
        reported: list[SettlementUpdate] = []
        by_tx: dict[str | None, list[_Undecided]] = {}
        for item in list(self._undecided.values()):
            by_tx.setdefault(item.update.tx_hash if item.block_hash is not None else None, []).append(item)
        for tx, items in by_tx.items():
            receipt = self._receipt(HexBytes(tx)) if tx is not None else None
            if receipt is not None and all(receipt.block_hash == i.block_hash for i in items):
                continue  # still in the canonical chain, in the same block
            for item in items:
                reported += self._recheck(item, emit)
        for item in sorted(self._undecided.values(), key=lambda i: i.trade.trade_id):
            block = item.update.block
            if block is None or block > final:
                continue
            del self._undecided[item.trade.trade_id]
            status = SettlementStatus.FINAL if item.update.status is SettlementStatus.CONFIRMED else item.update.status
            update = replace(item.update, status=status)
            self._notify(update, emit)
            reported.append(update)
        pending_blocks = [i.update.block for i in self._undecided.values() if i.update.block is not None]
        self._final_through = min([final, *(b - 1 for b in pending_blocks)])
        return reported

    def _recheck(self, item: _Undecided, emit: UpdateCallback) -> list[SettlementUpdate]:
        """The decision's block changed or vanished: ask the contract what the canonical chain says."""
        tid = item.trade.trade_id
        decided, settled = self.decision(tid)
        if not decided:
            logger.warning("trade %s: its decision in block %s was reorged away; queued again", tid, item.update.block)
            del self._undecided[tid]
            self._nonce = None  # our transaction may be gone too
            with self._lock:
                if tid not in self._queued_ids:
                    self._queue.append(item.trade)
                    self._queued_ids.add(tid)
            update = SettlementUpdate(trade_id=tid, status=SettlementStatus.PENDING, reason="reorged away")
            self._notify(update, emit)
            self._wake()
            return [update]
        with rpc_errors("block number"):
            head = int(self.chain.w3.eth.block_number)
        original = self._originals([tid], head).get(tid)
        status = SettlementStatus.CONFIRMED if settled else SettlementStatus.FAILED
        if status is item.update.status:
            item.update = replace(item.update, block=original.block if original else item.update.block)
        else:
            item.update = _already(tid, settled, original)
            if status is SettlementStatus.CONFIRMED:
                self._notify(item.update, emit)
        item.block_hash = None  # known from the contract's state from now on
        return []

    # ---- blocking core
    def settle_batch(
        self, trades: Sequence[TradeToSettle], *, emit: UpdateCallback | None = None
    ) -> list[SettlementUpdate]:
        """Settle ``trades`` in one transaction (blocking). Returns every trade's outcome
        (``CONFIRMED`` / ``FAILED``); with finality tracking a failure is *reported* once final.

        Raises ``ChainError`` only for node trouble (the caller may retry the same trades safely;
        ``ChainReorgError`` if the transaction left the chain while waiting for confirmations);
        reverts caused by the trades themselves become FAILED updates.
        """
        emit = emit or self._on_update
        batch = [t.normalized() for t in trades]
        if not batch:
            return []
        final: list[SettlementUpdate] = []
        while batch:
            try:
                params = self._build(batch)
            except TransactionRevertedError as exc:
                culprit = _batch_out_of_gas_trade(exc.reason, batch)
                if culprit is None:
                    # The whole batch is refused (e.g. settler lacks the role): fail each trade.
                    final += self._finish(batch, emit, status=SettlementStatus.FAILED, reason=exc.reason)
                    batch = []
                else:
                    final += self._finish(
                        [culprit], emit, status=SettlementStatus.FAILED, reason="trade consumes all gas"
                    )
                    batch = [t for t in batch if t is not culprit]
                continue
            receipt, tx_hash = self._broadcast_and_wait(params, batch, emit)
            final += self._interpret(batch, receipt, tx_hash, params, emit)
            batch = []
        self._forget(trades)
        if self.finality is not None:
            self.check_finality(emit=emit)
        return final

    def _build(self, batch: Sequence[TradeToSettle]) -> dict[str, Any]:
        # Encoded with eth_abi directly: web3's contract encoder is ~2.5 ms per trade.
        data = (encode_settle_signed(batch) if any(t.signed for t in batch)
                else _SETTLE_SELECTOR + abi_encode([_TRADES_TYPE], [[t.as_tuple() for t in batch]]))
        with rpc_errors("settle"):
            if self._chain_id is None:
                self._chain_id = self.chain.w3.eth.chain_id
            tx: dict[str, Any] = {
                "from": self.settler,
                "to": self.contract.address,
                "data": "0x" + data.hex(),
                "value": 0,
                "chainId": self._chain_id,
            }
            gas = self.chain.w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        tx["gas"] = gas * 6 // 5 + 30_000
        return tx

    def _next_nonce(self) -> int:
        if self._nonce is None:
            with rpc_errors("nonce"):
                self._nonce = self.chain.w3.eth.get_transaction_count(self.settler, "pending")
        return self._nonce

    def _send(self, params: dict[str, Any], broadcast: _Broadcast) -> HexBytes:
        signed = Account.sign_transaction({**params, "nonce": broadcast.nonce}, self._key)
        with rpc_errors("send settle"):
            try:
                tx_hash = self.chain.w3.eth.send_raw_transaction(signed.raw_transaction)
            except ChainError:
                raise
            except Exception as exc:
                text = str(exc).lower()
                if "nonce too low" in text or "already known" in text or "nonce too high" in text:
                    self._nonce = None  # resync next time; the caller retries
                raise
        broadcast.hashes.append(HexBytes(tx_hash))
        return HexBytes(tx_hash)

    def _broadcast_and_wait(
        self, params: dict[str, Any], batch: Sequence[TradeToSettle], emit: UpdateCallback
    ) -> tuple[_Receipt, HexBytes]:
        w3 = self.chain.w3
        with rpc_errors("fees"):
            fees = fee_params(w3)
        broadcast = _Broadcast(nonce=self._next_nonce(), params={**params, **fees})
        first = self._send(broadcast.params, broadcast)
        self._nonce = broadcast.nonce + 1
        logger.info("settlement batch sent: tx %s, %d trades (ids %s)", _hex(first), len(batch),
                    _ids(t.trade_id for t in batch))
        for t in batch:
            self._notify(
                SettlementUpdate(trade_id=t.trade_id, status=SettlementStatus.SUBMITTED, tx_hash=_hex(first)), emit
            )
        bumps = 0
        while True:
            found = self._wait_any(broadcast.hashes, self.receipt_timeout)
            if found is not None:
                return found
            if bumps >= self.max_fee_bumps:
                raise TransactionTimeoutError(
                    f"no receipt for settle nonce {broadcast.nonce} after {bumps} fee bumps"
                )
            bumps += 1
            broadcast.params = _bumped(broadcast.params)
            logger.warning("settle nonce %d late; re-broadcasting with higher fees", broadcast.nonce)
            try:
                self._send(broadcast.params, broadcast)
            except ChainError as exc:
                # Typically "nonce too low": one of our earlier broadcasts was mined meanwhile.
                logger.info("re-broadcast refused (%s); waiting for the earlier one", exc)

    def _receipt(self, tx_hash: HexBytes) -> _Receipt | None:
        w3 = self.chain.w3
        with rpc_errors("receipt"):
            if isinstance(w3.provider, HTTPProvider):
                # Raw JSON: web3's receipt formatters checksum every log address (~1 ms each).
                response = w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [_hex(tx_hash)])
                if "error" in response:
                    raise ChainError(f"eth_getTransactionReceipt: {response['error']}")
                return _Receipt.from_json(response.get("result"))
            try:
                formatted = w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                return None
            return _Receipt.from_web3(formatted)

    def _wait_any(self, hashes: Sequence[HexBytes], timeout: float) -> tuple[_Receipt, HexBytes] | None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            for h in hashes:
                receipt = self._receipt(h)
                if receipt is not None:
                    return receipt, h
            if time.monotonic() >= deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _wait_confirmations(self, receipt: _Receipt, tx_hash: HexBytes) -> None:
        if self.confirmations == 0:
            return
        deadline = time.monotonic() + self.confirmation_timeout
        while True:
            with rpc_errors("block number"):
                head = self.chain.w3.eth.block_number
            if head >= receipt.block + self.confirmations:
                break
            if time.monotonic() >= deadline:
                raise TransactionTimeoutError(
                    f"block {receipt.block} did not reach {self.confirmations} confirmations in "
                    f"{self.confirmation_timeout}s"
                )
            time.sleep(0.05)
        again = self._receipt(tx_hash)
        if again is None or again.block_hash != receipt.block_hash:
            raise ChainReorgError(f"settlement {_hex(tx_hash)} left block {receipt.block} before confirmation")

    def _interpret(
        self,
        batch: Sequence[TradeToSettle],
        receipt: _Receipt,
        tx_hash: HexBytes,
        params: dict[str, Any],
        emit: UpdateCallback,
    ) -> list[SettlementUpdate]:
        block = receipt.block
        tx = _hex(tx_hash)
        share = receipt.gas_used // len(batch)
        if receipt.status != 1:
            reason = self.chain.replay_reason(params, block)
            if receipt.gas_used >= int(params["gas"]) or reason.startswith("BatchOutOfGas"):
                # State changed between estimate and mining; nothing settled, so a retry is safe.
                raise TransactionRevertedError(f"settle ran out of gas in {tx}", reason=reason, tx_hash=tx)
            return self._finish(batch, emit, status=SettlementStatus.FAILED, reason=reason, tx_hash=tx, block=block)
        self._wait_confirmations(receipt, tx_hash)
        outcome: dict[int, SettlementUpdate] = {}
        already: dict[int, bool] = {}
        # Decoded by hand: web3's process_receipt costs ~2 ms per event, too slow for big batches.
        ours = self.contract.address.lower()
        for address, topics, data in receipt.logs:
            if address != ours or len(topics) < 2:
                continue
            topic, tid = topics[0], int.from_bytes(topics[1], "big")
            if topic == _TRADE_SETTLED:
                outcome[tid] = SettlementUpdate(
                    trade_id=tid, status=SettlementStatus.CONFIRMED, tx_hash=tx, block=block, gas_used=share
                )
            elif topic == _TRADE_ALREADY_DECIDED:
                (was_settled,) = abi_decode(["bool"], data)
                already.setdefault(tid, bool(was_settled))
            elif topic == _TRADE_FAILED:
                (raw_reason,) = abi_decode(["bytes"], data)
                outcome[tid] = SettlementUpdate(
                    trade_id=tid,
                    status=SettlementStatus.FAILED,
                    tx_hash=tx,
                    block=block,
                    gas_used=share,
                    reason=decode_revert(raw_reason),
                )
        replayed = [tid for tid in already if tid not in outcome]
        originals = self._originals(replayed, block)  # rare: a resubmission of a decided id
        for tid in replayed:
            outcome[tid] = _already(tid, already[tid], originals.get(tid))
        settled = sorted(tid for tid, u in outcome.items() if u.status is SettlementStatus.CONFIRMED)
        failed = sorted(t.trade_id for t in batch if t.trade_id not in settled)
        logger.info("settlement batch confirmed: tx %s in block %d, %d settled, %d failed (ids %s)", tx, block,
                    len(settled), len(failed), _ids(settled))
        if failed:
            logger.warning("settlement batch tx %s: trades failed on chain (ids %s)", tx, _ids(failed))
        updates = []
        for t in batch:
            update = outcome.get(t.trade_id)
            if update is None:
                update = SettlementUpdate(
                    trade_id=t.trade_id,
                    status=SettlementStatus.FAILED,
                    tx_hash=tx,
                    block=block,
                    reason="no settlement event for this trade in the receipt",
                )
                self._notify(update, emit)
            else:
                self._decided(t, update, receipt.block_hash if update.tx_hash == tx else None, emit)
            updates.append(update)
        return updates

    def _finish(
        self,
        batch: Sequence[TradeToSettle],
        emit: UpdateCallback,
        *,
        status: SettlementStatus,
        reason: str,
        tx_hash: str | None = None,
        block: int | None = None,
    ) -> list[SettlementUpdate]:
        """Outcomes the chain did not record (the whole transaction was refused)."""
        logger.warning("settlement batch failed: %d trades %s (tx %s, ids %s): %s", len(batch), status.value,
                       tx_hash, _ids(t.trade_id for t in batch), reason)
        updates = [
            SettlementUpdate(trade_id=t.trade_id, status=status, reason=reason, tx_hash=tx_hash, block=block)
            for t in batch
        ]
        for u in updates:
            self._notify(u, emit)
        return updates


def _ids(ids: Iterable[int], limit: int = 20) -> str:
    """Trade ids for a log line: all of a small batch, the first ``limit`` of a big one."""
    listed = list(ids)
    text = ",".join(str(i) for i in listed[:limit])
    return text + (f",... ({len(listed)} in all)" if len(listed) > limit else "")


def _already(trade_id: int, settled: bool, original: SettlementUpdate | None) -> SettlementUpdate:
    """A resubmitted decided id: its earlier outcome, in the block of ``original`` (its decision event)."""
    status = SettlementStatus.CONFIRMED if settled else SettlementStatus.FAILED
    word = "settled" if settled else "failed"
    block = original.block if original is not None else None
    where = f" in block {block}" if block is not None else ""
    return SettlementUpdate(trade_id=trade_id, status=status, block=block, reason=f"already {word} on chain{where}")
def _hex(h: bytes) -> str:
    return "0x" + bytes(h).hex()


def _bumped(params: dict[str, Any]) -> dict[str, Any]:
    """Replacement fees: nodes require at least +10% on both fee fields; we add 25%."""
    out = dict(params)
    for k in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
        if k in out:
            out[k] = int(out[k]) * 5 // 4 + 1
    return out


def _batch_out_of_gas_trade(reason: str, batch: Sequence[TradeToSettle]) -> TradeToSettle | None:
    if not reason.startswith("BatchOutOfGas(tradeId="):
        return None
    try:
        tid = int(reason.removeprefix("BatchOutOfGas(tradeId=").rstrip(")"))
    except ValueError:
        return None
    return next((t for t in batch if t.trade_id == tid), None)


def settlement_abi() -> list[dict[str, Any]]:
    return artifacts.load("DvPSettlement").abi
