"""Settlement service: batches venue trades into DvP transactions and reports each trade's fate.

Each batch is one ``settle(Trade[])`` transaction signed with the settler key. The service manages
the settler nonce and EIP-1559 fees (re-broadcasting the same nonce with bumped fees when a receipt
is late), waits for the receipt and ``confirmations`` more blocks, and reports every trade as
``CONFIRMED`` or ``FAILED`` (with a readable reason). Exactly-once: the contract refuses a trade id
twice, so after a crash ``recover()`` asks the chain which trades settled and resubmits the rest;
even a stale in-flight transaction landing later cannot settle a trade twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from settlement import artifacts
from settlement.chain import Chain, fee_params, rpc_errors
from settlement.errors import (
    ChainError,
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
_TRADE_SETTLED = keccak(text="TradeSettled(uint256,address,address,address,uint256,address,uint256)")
_TRADE_FAILED = keccak(text="TradeFailed(uint256,bytes)")
_TRADE_ALREADY_SETTLED = keccak(text="TradeAlreadySettled(uint256,uint256)")


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeToSettle:
    """One matched trade: ``quantity`` token base units seller->buyer, ``cash_amount`` cash units back."""

    trade_id: int
    token: str
    seller: str
    buyer: str
    quantity: int
    cash_token: str
    cash_amount: int

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
            trade_id=self.trade_id, quantity=self.quantity, cash_amount=self.cash_amount, **addresses
        )

    def as_tuple(self) -> tuple[int, str, str, str, int, str, int]:
        return (self.trade_id, self.token, self.seller, self.buyer, self.quantity, self.cash_token, self.cash_amount)


# The settlement state machine is the venue's (``market``); the old name stays for callers.
SettlementStatus = SettlementState

UpdateCallback = Callable[[SettlementUpdate], None]


@dataclass(frozen=True, slots=True)
class _Receipt:
    block: int
    status: int
    gas_used: int
    logs: list[tuple[str, list[bytes], bytes]]  # (lower-case address, topics, data)

    @classmethod
    def from_json(cls, raw: Any) -> _Receipt | None:
        if not raw or raw.get("blockNumber") is None:
            return None
        return cls(
            block=int(raw["blockNumber"], 16),
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

    ``on_update`` is called on the event-loop thread when driven by ``run``; when ``settle_batch`` or
    ``recover`` is called directly it runs on the caller's thread.
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
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if confirmations < 0:
            raise ValueError("confirmations must be >= 0")
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
        self._queue: deque[TradeToSettle] = deque()
        self._queued_ids: set[int] = set()
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._busy = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._chain_id: int | None = None

    # ---- queue
    def submit(self, trade: TradeToSettle) -> None:
        """Enqueue a trade (validated now, so bad input never reaches the chain)."""
        trade = trade.normalized()
        with self._lock:
            if trade.trade_id in self._queued_ids:
                raise InvalidTradeError(f"trade {trade.trade_id} is already queued")
            self._queue.append(trade)
            self._queued_ids.add(trade.trade_id)
        self._on_update(SettlementUpdate(trade_id=trade.trade_id, status=SettlementStatus.PENDING))
        self._wake()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

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
        """Settle queued trades batch after batch until ``stop()``."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._stopping = False
        loop = self._loop

        def emit(update: SettlementUpdate) -> None:
            loop.call_soon_threadsafe(self._on_update, update)

        while not self._stopping:
            if not self.pending:
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            if self.linger:
                await asyncio.sleep(self.linger)
            batch = self._take_batch()
            self._busy = True
            try:
                await asyncio.to_thread(self.settle_batch, batch, emit=emit)
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

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every submitted trade has been settled or failed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending or self._busy:
            if deadline is not None and time.monotonic() > deadline:
                raise TransactionTimeoutError(f"settlement not drained within {timeout}s")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)

    # ---- crash recovery
    def recover(self, unfinished: Iterable[TradeToSettle]) -> list[SettlementUpdate]:
        """After a restart: trades already settled on chain are reported CONFIRMED (returned and
        emitted); the others are queued again."""
        confirmed: list[SettlementUpdate] = []
        for trade in unfinished:
            trade = trade.normalized()
            with rpc_errors("settledBlock"):
                block = int(self.contract.functions.settledBlock(trade.trade_id).call())
            if block:
                update = SettlementUpdate(
                    trade_id=trade.trade_id,
                    status=SettlementStatus.CONFIRMED,
                    block=block,
                    reason=f"already settled on chain in block {block}",
                )
                confirmed.append(update)
                self._on_update(update)
            else:
                self.submit(trade)
        return confirmed

    def is_settled(self, trade_id: int) -> bool:
        with rpc_errors("settled"):
            return bool(self.contract.functions.settled(trade_id).call())

    # ---- blocking core
    def settle_batch(
        self, trades: Sequence[TradeToSettle], *, emit: UpdateCallback | None = None
    ) -> list[SettlementUpdate]:
        """Settle ``trades`` in one transaction (blocking). Returns the final update of every trade.

        Raises ``ChainError`` only for node trouble (the caller may retry the same trades safely);
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
        return final

    def _build(self, batch: Sequence[TradeToSettle]) -> dict[str, Any]:
        # Encoded with eth_abi directly: web3's contract encoder is ~2.5 ms per trade.
        data = _SETTLE_SELECTOR + abi_encode([_TRADES_TYPE], [[t.as_tuple() for t in batch]])
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
        for t in batch:
            emit(
                SettlementUpdate(trade_id=t.trade_id, status=SettlementStatus.SUBMITTED, tx_hash=_hex(first))
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

    def _wait_confirmations(self, block: int) -> None:
        if self.confirmations == 0:
            return
        deadline = time.monotonic() + self.confirmation_timeout
        while True:
            with rpc_errors("block number"):
                head = self.chain.w3.eth.block_number
            if head >= block + self.confirmations:
                return
            if time.monotonic() >= deadline:
                raise TransactionTimeoutError(
                    f"block {block} did not reach {self.confirmations} confirmations in {self.confirmation_timeout}s"
                )
            time.sleep(0.05)

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
        self._wait_confirmations(block)
        outcome: dict[int, SettlementUpdate] = {}
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
            elif topic == _TRADE_ALREADY_SETTLED:
                earlier = int.from_bytes(data[:32], "big")
                outcome.setdefault(
                    tid,
                    SettlementUpdate(
                        trade_id=tid,
                        status=SettlementStatus.CONFIRMED,
                        block=earlier,
                        reason=f"already settled on chain in block {earlier}",
                    ),
                )
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
        updates = []
        for t in batch:
            update = outcome.get(t.trade_id) or SettlementUpdate(
                trade_id=t.trade_id,
                status=SettlementStatus.FAILED,
                tx_hash=tx,
                block=block,
                reason="no settlement event for this trade in the receipt",
            )
            updates.append(update)
            emit(update)
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
        updates = [
            SettlementUpdate(trade_id=t.trade_id, status=status, reason=reason, tx_hash=tx_hash, block=block)
            for t in batch
        ]
        for u in updates:
            emit(u)
        return updates


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
