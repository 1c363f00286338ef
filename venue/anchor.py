"""The audit log's hash-chain head, anchored on-chain.

Every ``interval_s`` (when the head moved since the last anchor) the venue sends one transaction
from its admin account to itself, value 0, whose calldata is::

    b"OMN-AUDIT-ANCHOR" (16 bytes) || audit entry id (8 bytes, big-endian) || entry hash (32 bytes)

and records (entry id, hash, tx hash, block, chain id) in ``audit_anchors``. No contract is needed:
the chain keeps the calldata and the block time, so the head existed, with that hash, no later than
that block. The admin account sends it, not the settler: the settlement service manages the
settler's nonces itself, and a foreign transaction from that account would collide with its next
batch.

``verify_anchors`` recomputes the whole chain from the genesis, fetches every recorded anchor
transaction, decodes it, and compares the anchored hash with the recomputed hash of that entry;
``venue audit verify-anchor`` prints the result. An anchor transaction kept elsewhere (its hash)
can be checked the same way (``tx_hashes``), which still works if the anchors table itself was
rewritten. Rewriting the log before an anchored entry breaks the comparison, even when every hash
of the chain was recomputed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from settlement.chain import Chain, to_address
from store import AuditAnchor, Store

log = logging.getLogger(__name__)

MAGIC = b"OMN-AUDIT-ANCHOR"
DEFAULT_INTERVAL_S = 300.0
FIRST_ANCHOR_AFTER_S = 30.0


class AnchorError(Exception):
    """Anchoring failed; ``code`` is a stable code of ``market.codes``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def calldata(audit_id: int, head_hash: str) -> bytes:
    return MAGIC + audit_id.to_bytes(8, "big") + bytes.fromhex(head_hash)


def decode(data: bytes) -> tuple[int, str] | None:
    """(audit id, hash hex) from anchor calldata; None when ``data`` is not an anchor."""
    if len(data) != len(MAGIC) + 8 + 32 or not data.startswith(MAGIC):
        return None
    return int.from_bytes(data[16:24], "big"), data[24:].hex()


def anchor_head(store: Store, chain: Chain, sender: str) -> AuditAnchor | None:
    """Write the current head on-chain (blocking); None when there is nothing new to anchor."""
    head = store.audit_head()
    if head is None:
        return None
    last = store.list_audit_anchors(limit=1)
    if last and last[0].audit_id == head.id:
        return None
    try:
        receipt = chain.send({"to": to_address(sender), "value": 0, "data": calldata(head.id, head.hash)},  # type: ignore[typeddict-item]
                             sender, what="audit anchor")
    except Exception as exc:  # web3 / RPC errors: translated at this boundary
        raise AnchorError("ANCHOR_FAILED", f"cannot anchor audit entry {head.id}: {exc}") from exc
    anchor = store.add_audit_anchor(AuditAnchor(
        audit_id=head.id, head_hash=head.hash, tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        block=int(receipt["blockNumber"]), chain_id=int(chain.w3.eth.chain_id), ts=time.time_ns()))
    log.info("audit head %d anchored on-chain in tx %s (block %s)", anchor.audit_id, anchor.tx_hash, anchor.block)
    return anchor


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorCheck:
    tx_hash: str
    ok: bool
    audit_id: int | None = None
    block: int | None = None
    code: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorVerification:
    ok: bool
    entries: int  # audit entries recomputed
    code: str | None = None
    message: str = ""
    anchors: tuple[AnchorCheck, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "code": self.code, "message": self.message,
                "anchors": [{"tx_hash": a.tx_hash, "ok": a.ok, "audit_id": a.audit_id, "block": a.block,
                             "code": a.code, "message": a.message} for a in self.anchors]}


def verify_anchors(store: Store, chain: Chain, *, sender: str | None = None,
                   tx_hashes: Iterable[str] = (), limit: int = 1000) -> AnchorVerification:
    """Recompute the audit chain, then check every recorded anchor (newest ``limit``) and every
    anchor transaction in ``tx_hashes`` against it. ``sender``: the account that must have sent them."""
    chain_check = store.verify_audit_chain()
    if not chain_check.ok:
        return AnchorVerification(ok=False, entries=chain_check.checked, code="ANCHOR_CHAIN_BROKEN",
                                  message=f"audit entry {chain_check.first_bad_id}: {chain_check.reason}")
    hashes = [*dict.fromkeys([a.tx_hash for a in store.list_audit_anchors(limit=limit)] + list(tx_hashes))]
    if not hashes:
        return AnchorVerification(ok=False, entries=chain_check.checked, code="ANCHOR_NONE",
                                  message="the audit log has no on-chain anchor yet")
    checks = tuple(_check(store, chain, h, sender) for h in hashes)
    bad = [c for c in checks if not c.ok]
    if bad:
        return AnchorVerification(ok=False, entries=chain_check.checked, code=bad[0].code,
                                  message=bad[0].message, anchors=checks)
    newest = max(c.audit_id or 0 for c in checks)
    return AnchorVerification(ok=True, entries=chain_check.checked, anchors=checks, message=(
        f"{chain_check.checked} audit entries recomputed; {len(checks)} anchor{'' if len(checks) == 1 else 's'} "
        f"match (newest: entry {newest})"))


def _check(store: Store, chain: Chain, tx_hash: str, sender: str | None) -> AnchorCheck:
    try:
        tx = chain.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        receipt = chain.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except Exception as exc:  # TransactionNotFound and RPC errors alike: the anchor cannot be shown
        return AnchorCheck(tx_hash=tx_hash, ok=False, code="ANCHOR_TX_NOT_FOUND",
                           message=f"anchor transaction {tx_hash} not found on the chain: {exc}")
    block = int(receipt["blockNumber"])
    decoded = decode(bytes(tx["input"]))
    if decoded is None or receipt["status"] != 1:
        return AnchorCheck(tx_hash=tx_hash, ok=False, block=block, code="ANCHOR_MISMATCH",
                           message=f"transaction {tx_hash} does not carry an audit anchor")
    if sender is not None and to_address(tx["from"]) != to_address(sender):
        return AnchorCheck(tx_hash=tx_hash, ok=False, block=block, code="ANCHOR_MISMATCH",
                           message=f"anchor {tx_hash} was sent by {tx['from']}, not by the venue's {sender}")
    audit_id, anchored = decoded
    entry = store.get_audit_entry(audit_id)
    if entry is None:
        return AnchorCheck(tx_hash=tx_hash, ok=False, audit_id=audit_id, block=block, code="ANCHOR_MISMATCH",
                           message=f"anchor {tx_hash} names audit entry {audit_id}, which the log does not hold")
    if entry.hash != anchored:
        return AnchorCheck(tx_hash=tx_hash, ok=False, audit_id=audit_id, block=block, code="ANCHOR_MISMATCH",
                           message=(f"audit entry {audit_id} hashes to {entry.hash[:16]}..., the chain anchored "
                                    f"{anchored[:16]}... in block {block}: the log was rewritten"))
    return AnchorCheck(tx_hash=tx_hash, ok=True, audit_id=audit_id, block=block)


class AuditAnchorer:
    """The periodic task: anchors the head every ``interval_s`` when it moved (failures are logged
    and retried at the next interval; the venue keeps running)."""

    def __init__(self, store: Store, chain: Chain, sender: str, *, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._store, self._chain, self._sender, self.interval_s = store, chain, sender, interval_s
        self.last: AuditAnchor | None = None
        self.last_error: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        wait = min(self.interval_s, FIRST_ANCHOR_AFTER_S)  # a fresh venue shows an anchor soon
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            wait = self.interval_s
            if stop.is_set():
                return
            try:
                anchored = await asyncio.to_thread(anchor_head, self._store, self._chain, self._sender)
            except Exception as exc:  # a chain or database outage: try again at the next interval
                self.last_error = str(exc)
                log.warning("audit anchor failed, retrying in %.0f s: %s", self.interval_s, exc)
                continue
            self.last_error = None
            if anchored is not None:
                self.last = anchored


__all__ = ["MAGIC", "AnchorCheck", "AnchorError", "AnchorVerification", "AuditAnchorer", "anchor_head",
           "calldata", "decode", "verify_anchors"]
