"""Statement encoding round-trips; out-of-range statements and bad CLI fields get stable errors."""

from __future__ import annotations

import pytest

from attestation import (
    AccrualStatement,
    CustodyStatement,
    HashrateStatement,
    InvalidStatementError,
    Kind,
    NavStatement,
    decode_statement,
    encode_statement,
    statement_from_fields,
)


@pytest.mark.parametrize("statement", [
    HashrateStatement(period_start=1, period_end=2, realised_ph_s_e3=98_000, uptime_bps=9_800),
    CustodyStatement(as_of=5, btc_balance_sats=2**64 - 1),
    AccrualStatement(as_of=5, accrued_sats_per_note=0),
    NavStatement(as_of=5, nav_per_note_e6=10**30, currency="USD"),
])
def test_round_trip(statement: HashrateStatement | CustodyStatement | AccrualStatement | NavStatement) -> None:
    assert decode_statement(statement.kind, encode_statement(statement)) == statement


@pytest.mark.parametrize(("statement", "match"), [
    (HashrateStatement(period_start=2, period_end=2, realised_ph_s_e3=1, uptime_bps=1), "before"),
    (HashrateStatement(period_start=1, period_end=2, realised_ph_s_e3=1, uptime_bps=10_001), "uptime_bps"),
    (CustodyStatement(as_of=-1, btc_balance_sats=1), "as_of"),
    (AccrualStatement(as_of=1, accrued_sats_per_note=2**64), "accrued_sats_per_note"),
    (NavStatement(as_of=1, nav_per_note_e6=1, currency=""), "currency"),
])
def test_out_of_range_statements_are_refused(statement: object, match: str) -> None:
    with pytest.raises(InvalidStatementError, match=match) as err:
        encode_statement(statement)  # type: ignore[arg-type]
    assert err.value.code == "invalid_statement"


def test_undecodable_data_is_an_invalid_statement() -> None:
    with pytest.raises(InvalidStatementError, match="NAV data does not decode"):
        decode_statement(Kind.NAV, b"\x01\x02")


def test_statement_from_cli_fields() -> None:
    assert statement_from_fields(Kind.CUSTODY, {"btc_balance_sats": "7"}, now=100) == \
        CustodyStatement(as_of=100, btc_balance_sats=7)
    assert statement_from_fields(Kind.HASHRATE, {"period_start": "10", "realised_ph_s_e3": "5", "uptime_bps": "1"},
                                 now=20).period_end == 20
    with pytest.raises(InvalidStatementError, match="has no field nav"):
        statement_from_fields(Kind.NAV, {"nav": "1"}, now=1)
    with pytest.raises(InvalidStatementError, match="needs currency"):
        statement_from_fields(Kind.NAV, {"nav_per_note_e6": "1"}, now=1)
    with pytest.raises(InvalidStatementError, match="must be an integer"):
        statement_from_fields(Kind.ACCRUAL, {"accrued_sats_per_note": "1.5"}, now=1)
