"""Audit anchoring (``venue.anchor``) on the in-process EVM: the head goes on-chain in calldata, a
verification recomputes the log and compares; a log rewritten after its anchor is caught even when
the rewriter recomputed every hash of the chain, and so is a forged or missing anchor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from settlement.chain import Chain, in_process_chain, to_address
from store import Store, audit
from venue.anchor import anchor_head, calldata, decode, verify_anchors


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    with in_process_chain() as c:
        yield c


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'venue.sqlite'}")
    yield s
    s.close()


def test_calldata_round_trips_and_other_data_is_not_an_anchor() -> None:
    head = "ab" * 32
    assert decode(calldata(7, head)) == (7, head)
    assert decode(b"") is None and decode(b"x" * 56) is None


def test_an_anchored_head_verifies_and_nothing_new_is_not_anchored_twice(store: Store, chain: Chain) -> None:
    sender = chain.accounts[0]
    assert verify_anchors(store, chain).code == "ANCHOR_NONE"
    store.append_audit("op", "listing.add", {"symbol": "OMN1"})
    head = store.append_audit("op", "instrument.halt", {"symbol": "OMN1"})
    anchored = anchor_head(store, chain, sender)
    assert anchored is not None and anchored.audit_id == head.id and anchored.head_hash == head.hash
    tx = chain.w3.eth.get_transaction(anchored.tx_hash)  # type: ignore[arg-type]
    assert decode(bytes(tx["input"])) == (head.id, head.hash) and to_address(tx["to"]) == sender
    assert anchor_head(store, chain, sender) is None  # the head did not move
    result = verify_anchors(store, chain, sender=sender)
    assert result.ok and result.entries == 2 and result.anchors[0].audit_id == head.id
    assert verify_anchors(store, chain, sender=chain.accounts[1]).code == "ANCHOR_MISMATCH"  # not the venue's


def _rewrite(store: Store, audit_id: int, details: str, *, rehash: bool) -> None:
    """What an attacker with database access does: change an entry (and re-chain every later hash)."""
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        rows = conn.execute(sa.text("SELECT id, ts, actor, action, details FROM audit_log ORDER BY id")).all()
        prev = audit.GENESIS
        for row in rows:
            text = details if row.id == audit_id else row.details
            new = audit.entry_hash(prev, id=row.id, ts=row.ts, actor=row.actor, action=row.action, details=text)
            if row.id == audit_id or (rehash and row.id > audit_id):
                values = {"d": text, "p": prev, "h": new if rehash else None, "i": row.id}
                conn.execute(sa.text("UPDATE audit_log SET details = :d, prev_hash = :p, hash = COALESCE(:h, hash) "
                                     "WHERE id = :i"), values)
            prev = new if rehash else conn.execute(sa.text("SELECT hash FROM audit_log WHERE id = :i"),
                                                    {"i": row.id}).scalar_one()


def test_a_rewritten_log_is_caught_by_the_chain_or_by_the_anchor(store: Store, chain: Chain) -> None:
    sender = chain.accounts[0]
    first = store.append_audit("op", "participant.add", {"participant": "alice"})
    store.append_audit("op", "keys.create", {"participant": "alice"})
    assert anchor_head(store, chain, sender) is not None
    _rewrite(store, first.id, '{"participant":"mallory"}', rehash=False)
    assert verify_anchors(store, chain, sender=sender).code == "ANCHOR_CHAIN_BROKEN"
    _rewrite(store, first.id, '{"participant":"mallory"}', rehash=True)  # a consistent forgery
    assert store.verify_audit_chain().ok  # the chain alone cannot tell
    result = verify_anchors(store, chain, sender=sender)
    assert not result.ok and result.code == "ANCHOR_MISMATCH" and "rewritten" in result.message


def test_an_anchor_transaction_that_is_not_on_the_chain_fails(store: Store, chain: Chain) -> None:
    store.append_audit("op", "x", {})
    result = verify_anchors(store, chain, tx_hashes=["0x" + "00" * 32])
    assert not result.ok and result.code == "ANCHOR_TX_NOT_FOUND"
