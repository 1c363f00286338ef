from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from store import InvalidRecordError, Store, StoreError
from store.audit import GENESIS


def _disable_append_only(store: Store) -> None:
    """What an attacker with DDL rights would do first; the hash chain must still catch them."""
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))


def _fill(store: Store, n: int) -> None:
    for i in range(n):
        store.append_audit("ops", "instrument.halt", {"symbol": "OMN1", "i": i, "note": "ünïcode"}, ts=1000 + i)


def test_entries_chain_from_the_genesis(store: Store) -> None:
    first = store.append_audit("ops", "participant.suspend", {"participant": "bob", "why": "kyc"}, ts=5)
    second = store.append_audit("ops", "instrument.halt", {"symbol": "OMN1"}, ts=6)
    assert (first.id, first.prev_hash) == (1, GENESIS)
    assert (second.id, second.prev_hash) == (2, first.hash)
    assert first.details == '{"participant":"bob","why":"kyc"}'
    assert store.list_audit() == [second, first]
    assert store.list_audit(newest_first=False, limit=1) == [first]
    assert store.verify_audit_chain().ok and store.verify_audit_chain().checked == 2


def test_empty_chain_verifies(store: Store) -> None:
    result = store.verify_audit_chain()
    assert result.ok and result.checked == 0


def test_details_must_be_json(store: Store) -> None:
    with pytest.raises(InvalidRecordError, match="JSON-serialisable"):
        store.append_audit("ops", "x", {"value": object()})
    with pytest.raises(InvalidRecordError, match="JSON-serialisable"):
        store.append_audit("ops", "x", {"value": float("nan")})


def test_the_database_refuses_update_and_delete(store: Store) -> None:
    _fill(store, 2)
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log WHERE id = 1"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(sa.text(stmt))
    assert store.verify_audit_chain().ok


@pytest.mark.parametrize(
    ("tamper", "bad_id", "reason"),
    [
        ('UPDATE audit_log SET details = \'{"symbol":"OMN2"}\' WHERE id = 3', 3, "content"),
        ("UPDATE audit_log SET actor = 'mallory' WHERE id = 5", 5, "content"),
        ("UPDATE audit_log SET ts = ts + 1 WHERE id = 1", 1, "content"),
        ("DELETE FROM audit_log WHERE id = 2", 3, "entry 2 is missing"),
        ("UPDATE audit_log SET hash = 'f' || substr(hash, 2) WHERE id = 4", 4, "content"),
    ],
)
def test_tampering_is_detected(store: Store, tamper: str, bad_id: int, reason: str) -> None:
    _fill(store, 6)
    _disable_append_only(store)
    with store.engine.begin() as conn:
        conn.execute(sa.text(tamper))
    result = store.verify_audit_chain()
    assert not result.ok
    assert result.first_bad_id == bad_id
    assert result.reason is not None and reason in result.reason


def test_rewriting_the_whole_tail_consistently_still_breaks_the_link(store: Store) -> None:
    _fill(store, 3)
    _disable_append_only(store)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET prev_hash = :h WHERE id = 2"), {"h": "e" * 64})
    result = store.verify_audit_chain()
    assert (result.ok, result.first_bad_id) == (False, 2)
    assert result.reason is not None and "prev_hash" in result.reason


def test_concurrent_writers_never_fork_the_chain(db_url: sa.URL) -> None:
    stores = [Store.open(db_url) for _ in range(3)]  # separate engines, like separate processes
    errors: list[BaseException] = []

    def work(s: Store, who: int) -> None:
        try:
            for i in range(15):
                s.append_audit(f"w{who}", "tick", {"i": i})
        except StoreError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        result = stores[0].verify_audit_chain()
        assert result.ok and result.checked == 45
    finally:
        for s in stores:
            s.close()
