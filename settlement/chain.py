"""One interface over EVM backends: in-process eth-tester/py-evm, a venue-managed anvil, any JSON-RPC URL.

Every state-changing call is signed locally with a known key (``Chain.transact``), so the same code
works on nodes without unlocked accounts. web3/RPC exceptions are translated into ``ChainError``s here.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import EthereumTesterProvider, Web3
from web3.contract.contract import Contract, ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception, Web3RPCError
from web3.types import TxParams, TxReceipt, Wei

from settlement import artifacts
from settlement.errors import (
    ChainError,
    ChainUnavailableError,
    InvalidAddressError,
    TransactionRevertedError,
    TransactionTimeoutError,
    UnknownAccountError,
)
from settlement.revert import decode_revert

try:  # the in-process EVM is the optional `embedded` extra; without it no eth-tester revert can occur
    from eth_tester.exceptions import TransactionFailed as _TesterTransactionFailed
except ImportError:  # pragma: no cover - exercised by the production install (no extra)
    class _TesterTransactionFailed(Exception):  # type: ignore[no-redef]
        """Never raised: eth-tester is not installed."""

EMBEDDED_EXTRA_HINT = (
    "the embedded chain (in-process EVM) needs the `embedded` extra: pip install 'omn-venue[embedded]'; "
    "or run against a node instead (chain = anvil or an http(s) JSON-RPC URL)"
)

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_BIN = artifacts.NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def to_address(value: object) -> ChecksumAddress:
    """Checksummed address, or ``InvalidAddressError`` for anything that is not a 20-byte address."""
    if isinstance(value, str) and Web3.is_address(value):
        return Web3.to_checksum_address(value)
    raise InvalidAddressError(f"not an EVM address: {value!r}")


def _revert_data(exc: ContractLogicError) -> str | None:
    data = exc.data
    if isinstance(data, str):
        return data
    if isinstance(data, dict):  # some providers nest it
        inner = data.get("data")
        return inner if isinstance(inner, str) else None
    return None


def revert_reason(exc: ContractLogicError) -> str:
    data = _revert_data(exc)
    if data and data.startswith("0x") and len(data) >= 10:
        return decode_revert(data)
    return str(exc.message or exc)


def _tester_reason(exc: Exception) -> str:
    """eth-tester reports reverts from eth_estimateGas as ``execution reverted: b'<raw data>'``."""
    first: Any = exc.args[0] if exc.args else ""
    if isinstance(first, Exception) and first.args:
        first = first.args[0]
    if isinstance(first, bytes):
        return decode_revert(first)
    text = str(first).removeprefix("execution reverted: ")
    if text.startswith(("b'", 'b"')):
        try:
            raw = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(raw, bytes):
            return decode_revert(raw)
    return text


@contextmanager
def rpc_errors(what: str) -> Iterator[None]:
    """Translate web3/RPC/transport exceptions raised inside the block into our tree."""
    try:
        yield
    except ContractLogicError as exc:
        reason = revert_reason(exc)
        raise TransactionRevertedError(f"{what} reverted: {reason}", reason=reason) from exc
    except _TesterTransactionFailed as exc:
        reason = _tester_reason(exc)
        raise TransactionRevertedError(f"{what} reverted: {reason}", reason=reason) from exc
    except TimeExhausted as exc:
        raise TransactionTimeoutError(f"{what}: timed out: {exc}") from exc
    except (ConnectionError, OSError) as exc:
        raise ChainUnavailableError(f"{what}: node unreachable: {exc}") from exc
    except Web3RPCError as exc:
        raise ChainError(f"{what}: RPC error: {exc}") from exc
    except Web3Exception as exc:
        raise ChainError(f"{what}: {exc}") from exc
    except ValueError as exc:  # eth-tester and older providers raise ValueError for RPC errors
        raise ChainError(f"{what}: {exc}") from exc


class Chain:
    """A connected EVM chain plus the private keys we know (dev accounts or given keys)."""

    def __init__(
        self,
        w3: Web3,
        keys: Mapping[str, bytes],
        *,
        name: str,
        on_close: Callable[[], None] | None = None,
        mine: Callable[[int], None] | None = None,
        snapshots: tuple[Callable[[], str], Callable[[str], None]] | None = None,
    ) -> None:
        self.w3 = w3
        self.name = name
        self._keys = {Web3.to_checksum_address(a): k for a, k in keys.items()}
        self.accounts: list[ChecksumAddress] = list(self._keys)
        self._on_close = on_close
        self._mine = mine
        self._snapshots = snapshots
        self._closed = False
        self._sender_locks: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"Chain({self.name})"

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def private_key(self, address: str) -> bytes:
        try:
            return self._keys[Web3.to_checksum_address(address)]
        except (KeyError, ValueError) as exc:
            raise UnknownAccountError(f"no private key known for {address}") from exc

    def add_key(self, key: bytes) -> ChecksumAddress:
        """Remember a key (e.g. a generated investor wallet) so the chain can sign for it."""
        address = Web3.to_checksum_address(Account.from_key(key).address)
        if address not in self._keys:
            self._keys[address] = key
        return address

    def new_account(self, *, fund_wei: int = 10**19, funder: str | None = None) -> ChecksumAddress:
        """Generate a key, fund it with ETH from a dev account, and remember it."""
        acct = Account.create()
        address = self.add_key(bytes(acct.key))
        self.transfer_eth(funder or self.accounts[0], address, fund_wei)
        return address

    def transfer_eth(self, sender: str, to: str, wei: int) -> TxReceipt:
        return self.send({"to": to_address(to), "value": Wei(wei)}, sender, what="ETH transfer")

    def mine(self, blocks: int = 1) -> None:
        """Mine blocks now (needed with anvil ``--no-mining`` or to reach confirmations)."""
        if self._mine is None:
            raise ChainError(f"{self.name} cannot mine on demand")
        with rpc_errors("mine"):
            self._mine(blocks)

    def snapshot(self) -> str:
        """Remember the chain's state (``evm_snapshot``); ``revert_to`` drops every later block,
        which is how tests make a reorg remove a transaction."""
        if self._snapshots is None:
            raise ChainError(f"{self.name} cannot take snapshots")
        with rpc_errors("snapshot"):
            return self._snapshots[0]()

    def revert_to(self, snapshot: str) -> None:
        if self._snapshots is None:
            raise ChainError(f"{self.name} cannot revert to a snapshot")
        with rpc_errors("revert"):
            self._snapshots[1](snapshot)

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Contract:
        return self.w3.eth.contract(address=to_address(address), abi=abi)

    def our_contract(self, name: str, address: str) -> Contract:
        return self.contract(address, artifacts.load(name).abi)

    def send(
        self,
        tx: TxParams,
        sender: str,
        *,
        what: str = "transaction",
        timeout: float = 120.0,
        gas: int | None = None,
    ) -> TxReceipt:
        """Sign ``tx`` with ``sender``'s key, send it, wait for the receipt; raise if it reverted."""
        key = self.private_key(sender)
        sender = to_address(sender)
        params: dict[str, Any] = dict(tx)
        params["from"] = sender
        # One transaction at a time per sender: the nonce comes from the node's pending count.
        with self._sender_locks.setdefault(sender, threading.Lock()), rpc_errors(what):
            params.setdefault("chainId", self.w3.eth.chain_id)
            params["nonce"] = self.w3.eth.get_transaction_count(sender, "pending")
            params["gas"] = gas if gas is not None else _with_margin(self.w3.eth.estimate_gas(params))  # type: ignore[arg-type]
            params.update(fee_params(self.w3))
            signed = Account.sign_transaction(params, key)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.01)
        if receipt["status"] != 1:
            reason = self.replay_reason(params, receipt["blockNumber"])
            raise TransactionRevertedError(
                f"{what} reverted: {reason}", reason=reason, tx_hash="0x" + bytes(tx_hash).hex()
            )
        return receipt

    def transact(self, fn: ContractFunction, sender: str, **kwargs: Any) -> TxReceipt:
        what = f"{fn.fn_name}()"
        with rpc_errors(what):
            tx = fn.build_transaction({"from": to_address(sender), "gas": 0})
        tx.pop("gas", None)
        for fee_key in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
            tx.pop(fee_key, None)  # type: ignore[misc]
        return self.send(tx, sender, what=what, **kwargs)

    def deploy(self, artifact: artifacts.Artifact, sender: str, *args: Any) -> Contract:
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        constructor: ContractConstructor = factory.constructor(*args)
        with rpc_errors(f"deploy {artifact.name}"):
            data = constructor.data_in_transaction
        receipt = self.send({"data": data}, sender, what=f"deploy {artifact.name}")
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploy {artifact.name}: receipt has no contract address")
        return self.contract(address, artifact.abi)

    def replay_reason(self, tx: Mapping[str, Any], block: int) -> str:
        """Re-run a mined, reverted transaction as a call to recover its revert reason."""
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        try:
            self.w3.eth.call(call, block)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            return revert_reason(exc)
        except (Web3Exception, ValueError, OSError) as exc:
            return f"reverted (reason unavailable: {exc})"
        return "reverted (out of gas or state changed since)"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close()


def _with_margin(gas: int) -> int:
    return gas * 5 // 4 + 10_000


def fee_params(w3: Web3) -> dict[str, int]:
    """EIP-1559 fees: tip from the node, cap at twice the pending base fee plus tip."""
    block = w3.eth.get_block("pending")
    base = block.get("baseFeePerGas")
    if base is None:
        return {"gasPrice": w3.eth.gas_price}
    tip = w3.eth.max_priority_fee
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}


def _gas_in_one_run(state: Any, transaction: Any) -> int:
    """Gas estimate from one execution at the block gas limit: the gas it consumed (before refunds).
    py-evm's default estimator is a binary search to within 1 gas, ~25 executions of the transaction:
    for a settlement batch it was most of the in-process venue's CPU under load. Callers add their
    margin (``_with_margin``, the settlement service's), which covers the 1/64 of gas a call keeps
    back (EIP-150) when the limit is tight."""
    from eth.vm.spoof import SpoofTransaction  # the embedded extra: only imported with an in-process chain

    spoofed = SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0)
    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(spoofed)
        if computation.is_error:
            raise computation.error
        return int(transaction.intrinsic_gas + computation.get_gas_used())
    finally:
        state.revert(snapshot)


def in_process_chain() -> Chain:
    """eth-tester + py-evm in this process; every transaction is mined into its own block at once."""
    try:
        provider = EthereumTesterProvider()
    except ImportError as exc:
        raise ChainUnavailableError(f"{EMBEDDED_EXTRA_HINT} ({exc})") from exc
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    # py-evm sets its estimator on the chain object when it is built (reverting to a snapshot keeps it)
    tester.backend.chain.gas_estimator = _gas_in_one_run
    keys = {k.public_key.to_checksum_address(): k.to_bytes() for k in tester.backend.account_keys}

    def mine(blocks: int) -> None:
        tester.mine_blocks(blocks)

    def take() -> str:
        return str(tester.take_snapshot())

    def revert(snapshot: str) -> None:
        tester.revert_to_snapshot(int(snapshot))

    return Chain(w3, keys, name="in-process", mine=mine, snapshots=(take, revert))


def anvil_keys(count: int = 10) -> dict[str, bytes]:
    """The well-known anvil/hardhat dev accounts (public test keys, never for real funds)."""
    Account.enable_unaudited_hdwallet_features()
    keys: dict[str, bytes] = {}
    for i in range(count):
        acct = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        keys[acct.address] = bytes(acct.key)
    return keys


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_anvil(
    *,
    port: int | None = None,
    block_time: float | None = None,
    no_mining: bool = False,
    binary: str | os.PathLike[str] | None = None,
    startup_timeout: float = 20.0,
) -> Chain:
    """Spawn anvil from node_modules on 127.0.0.1 with HOME in a temp dir; ``close()`` stops it."""
    exe = Path(binary or os.environ.get("OMN_ANVIL_BIN") or ANVIL_BIN)
    if not exe.exists():
        raise ChainUnavailableError(f"anvil binary not found at {exe} (run npm install)")
    port = port or free_port()
    home = tempfile.mkdtemp(prefix="omn-anvil-")
    cmd = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--silent", "--accounts", "10"]
    if block_time is not None:
        cmd += ["--block-time", str(block_time)]
    if no_mining:
        cmd += ["--no-mining"]
    env = {**os.environ, "HOME": home}
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as exc:
        shutil.rmtree(home, ignore_errors=True)
        raise ChainUnavailableError(f"could not start anvil: {exc}") from exc

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(home, ignore_errors=True)

    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 60}))
    deadline = time.monotonic() + startup_timeout
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            stop()
            raise ChainUnavailableError(f"anvil exited with {proc.returncode}: {err.strip()[:500]}")
        try:
            w3.eth.chain_id  # noqa: B018 - readiness probe
            break
        except (OSError, Web3Exception, ValueError) as exc:
            if time.monotonic() > deadline:
                stop()
                raise ChainUnavailableError(
                    f"anvil did not answer on port {port} within {startup_timeout}s"
                ) from exc
            time.sleep(0.05)

    def mine(blocks: int) -> None:
        w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    return Chain(w3, anvil_keys(), name=f"anvil:{port}", on_close=stop, mine=mine, snapshots=_rpc_snapshots(w3))


def connect(rpc_url: str, *, private_keys: Iterable[bytes] = (), timeout: float = 30.0) -> Chain:
    """Any HTTP(S) JSON-RPC node; ``private_keys`` are the keys we may sign with (settler, admin)."""
    if not rpc_url.startswith(("http://", "https://")):
        # web3 8 has no synchronous websocket provider, and the service is built on blocking calls.
        raise ChainUnavailableError(f"only http(s) JSON-RPC URLs are supported, not {rpc_url!r}")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    with rpc_errors(f"connect {rpc_url}"):
        w3.eth.chain_id  # noqa: B018 - fail fast if unreachable
    keys = {Account.from_key(k).address: bytes(k) for k in private_keys}

    def mine(blocks: int) -> None:
        for _ in range(blocks):
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    return Chain(w3, keys, name=rpc_url, mine=mine, snapshots=_rpc_snapshots(w3))


def _rpc_snapshots(w3: Web3) -> tuple[Callable[[], str], Callable[[str], None]]:
    """``evm_snapshot`` / ``evm_revert`` (anvil, hardhat; refused by production nodes)."""

    def take() -> str:
        response = w3.provider.make_request("evm_snapshot", [])  # type: ignore[arg-type]
        if "error" in response:
            raise ChainError(f"evm_snapshot: {response['error']}")
        return str(response["result"])

    def revert(snapshot: str) -> None:
        response = w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
        if "error" in response or response.get("result") is not True:
            raise ChainError(f"evm_revert {snapshot}: {response.get('error', response.get('result'))}")

    return take, revert
