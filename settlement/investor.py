"""An investor's own transactions on the DvP contract (signed mode) and on the cash token (permit).

Each is sent from the investor's wallet (its key must be known to the ``Chain``); the settler
cannot make them. For a contract wallet, send the same calls through the wallet::

    inv = InvestorActions(chain, dep.settlement)
    inv.set_signed_only(wallet)               # from now on, only orders the wallet signed move its assets
    inv.cancel_orders(wallet, [order_hash])   # cancel by hash
    inv.raise_min_nonce(wallet, 7)            # cancel every order with nonce < 7
    inv.submit_permit(cash_token, permit)     # EIP-2612 approval signed off-chain (any sender)
    inv.order_state(wallet, order_hash)       # (registered, cancelled, filled) of the per-order slot
    inv.order_status(signed_order)            # (cancelled, filled), counting a consumed nonce as filled

``ContractWalletSignatures`` asks a contract wallet (ERC-1271, e.g. a Safe) whether it accepts a
signature over an order digest: the venue's check of contract-wallet orders before the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.contract import Contract
from web3.types import TxReceipt

from settlement.chain import Chain, rpc_errors, to_address
from settlement.errors import TransactionRevertedError


class PermitLike(Protocol):
    owner: str

    def args(self) -> tuple[str, str, int, int, int, bytes, bytes]: ...


class OrderLike(Protocol):
    def as_tuple(self) -> tuple[str, str, str, bool, int, int, int, int]: ...


class InvestorActions:
    def __init__(self, chain: Chain, settlement: str) -> None:
        self.chain = chain
        self.contract: Contract = chain.our_contract("DvPSettlement", settlement)

    def set_signed_only(self, wallet: str, on: bool = True) -> TxReceipt:
        return self.chain.transact(self.contract.functions.setSignedOnly(on), wallet)

    def cancel_orders(self, wallet: str, order_hashes: Sequence[bytes]) -> TxReceipt:
        return self.chain.transact(self.contract.functions.cancelOrders(list(order_hashes)), wallet)

    def raise_min_nonce(self, wallet: str, min_nonce: int) -> TxReceipt:
        return self.chain.transact(self.contract.functions.raiseMinNonce(min_nonce), wallet)

    def submit_permit(self, cash_token: str, permit: PermitLike, sender: str | None = None) -> TxReceipt:
        token = self.chain.our_contract("DemoStablecoin", cash_token)
        return self.chain.transact(token.functions.permit(*permit.args()), sender or permit.owner)

    def order_state(self, wallet: str, order_hash: bytes) -> tuple[bool, bool, int]:
        with rpc_errors("orderState"):
            registered, cancelled, filled = self.contract.functions.orderState(to_address(wallet), order_hash).call()
        return bool(registered), bool(cancelled), int(filled)

    def order_status(self, order: OrderLike) -> tuple[bool, int]:
        """(cancelled, filled) of a signed order; filled is its maximum once a complete fill consumed its nonce."""
        with rpc_errors("orderStatus"):
            cancelled, filled = self.contract.functions.orderStatus(order.as_tuple()).call()
        return bool(cancelled), int(filled)

    def signed_only(self, wallet: str) -> bool:
        with rpc_errors("signedOnly"):
            return bool(self.contract.functions.signedOnly(to_address(wallet)).call())


ERC1271_MAGIC = bytes.fromhex("1626ba7e")  # IERC1271.isValidSignature.selector
_IS_VALID_SIGNATURE = keccak(text="isValidSignature(bytes32,bytes)")[:4]


class ContractWalletSignatures:
    """``accepts(wallet, digest, signature)``: the wallet has code and its ``isValidSignature`` returns
    the ERC-1271 magic value (a read; blocking RPC, run it off the event loop). A wallet without
    code, a revert or another answer is a refusal; a node that cannot be reached raises ``ChainError``."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def accepts(self, wallet: str, digest: bytes, signature: bytes) -> bool:
        address = to_address(wallet)
        with rpc_errors("getCode"):
            code = self.chain.w3.eth.get_code(address)
        if not code:
            return False  # an EOA: only its own key signs for it
        data = _IS_VALID_SIGNATURE + encode(["bytes32", "bytes"], [digest, signature])
        try:
            with rpc_errors("isValidSignature"):
                answer = bytes(self.chain.w3.eth.call({"to": address, "data": HexBytes(data)}))
        except TransactionRevertedError:
            return False  # the wallet refuses by reverting
        # an ABI-encoded bytes4 is left-aligned in one word; anything else (no such function) refuses
        return len(answer) == 32 and answer[:4] == ERC1271_MAGIC and not any(answer[4:])


class DvPCancelLogs:
    """The DvP contract's cancel logs (``OrderCancelled`` by hash, ``MinNonceRaised``), for the venue's
    cancel watcher: ``("hash", wallet, digest)`` / ``("nonce", wallet, min_nonce)`` in chain order."""

    def __init__(self, chain: Chain, settlement: str) -> None:
        self.chain = chain
        self.address = to_address(settlement)
        self._by_hash = "0x" + keccak(text="OrderCancelled(address,bytes32)").hex()
        self._by_nonce = "0x" + keccak(text="MinNonceRaised(address,uint256)").hex()
        self._dvp: Contract | None = None

    def head(self) -> int:
        with rpc_errors("blockNumber"):
            return int(self.chain.w3.eth.block_number)

    def state(self, wallet: str, digest: bytes) -> tuple[bool, int]:
        """(cancelled by hash, the wallet's minimum nonce), as the contract holds them now."""
        contract = self._contract()
        with rpc_errors("orderState"):
            _, cancelled, _ = contract.functions.orderState(to_address(wallet), digest).call()
        with rpc_errors("minNonce"):
            min_nonce = contract.functions.minNonce(to_address(wallet)).call()
        return bool(cancelled), int(min_nonce)

    def _contract(self) -> Contract:
        if self._dvp is None:
            self._dvp = self.chain.our_contract("DvPSettlement", self.address)
        return self._dvp

    def cancels(self, from_block: int, to_block: int) -> list[tuple[str, str, Any]]:
        with rpc_errors("getLogs"):
            logs = self.chain.w3.eth.get_logs({
                "address": self.address, "fromBlock": from_block, "toBlock": to_block,
                "topics": [[self._by_hash, self._by_nonce]],
            })
        out: list[tuple[str, str, Any]] = []
        for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            topic0 = "0x" + bytes(entry["topics"][0]).hex()
            wallet = to_address("0x" + bytes(entry["topics"][1])[-20:].hex())
            if topic0 == self._by_hash:
                out.append(("hash", wallet, bytes(entry["topics"][2])))
            else:
                out.append(("nonce", wallet, int.from_bytes(bytes(entry["data"])[:32], "big")))
        return out
