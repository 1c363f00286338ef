"""Operating the venue (issue 19): onboarding validated and atomic, participants updated and
offboarded, keys revoked, listing rules in the database, logging. CLI against a real SQLite store."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import store as store_pkg
from venue.cli import main
from venue.listings import PROFESSIONAL_CATEGORIES
from venue.logconfig import JsonFormatter, RepeatFilter, configure

TOKEN, CASH = "0x" + "11" * 20, "0x" + "22" * 20
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # the EIP-55 example address


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def open_store(data: Path) -> store_pkg.Store:
    return store_pkg.Store.open(f"sqlite:///{data / 'venue.sqlite'}")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


def test_an_unknown_country_code_is_refused_and_nothing_is_stored(data: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "participants", "add", "p1", "--data-dir", str(data), "--jurisdiction", "XX")
    assert code == 1 and "INVALID_JURISDICTION" in err
    code, out, _ = run(capsys, "participants", "list", "--data-dir", str(data))
    assert code == 0 and out.strip() == ""


@pytest.mark.parametrize(("wallet", "code"), [
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "INVALID_WALLET"),  # one letter's case off: bad checksum
    ("0x1234", "INVALID_WALLET"),
    ("not-an-address", "INVALID_WALLET"),
])
def test_a_bad_wallet_leaves_no_half_created_participant(data: Path, capsys: pytest.CaptureFixture[str],
                                                          wallet: str, code: str) -> None:
    rc, _, err = run(capsys, "participants", "add", "p1", "--data-dir", str(data), "--wallet", wallet)
    assert rc == 1 and code in err
    assert run(capsys, "participants", "add", "p1", "--data-dir", str(data), "--wallet", CHECKSUMMED)[0] == 0


def test_a_wallet_belongs_to_one_participant(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "participants", "add", "p1", "--data-dir", str(data), "--wallet", CHECKSUMMED)[0] == 0
    rc, _, err = run(capsys, "participants", "add", "p2", "--data-dir", str(data), "--wallet", CHECKSUMMED.lower())
    assert rc == 1 and "WALLET_IN_USE" in err and "p1" in err
    rows = [json.loads(line) for line in run(capsys, "participants", "list", "--data-dir", str(data))[1].splitlines()]
    assert [r["id"] for r in rows] == ["p1"]  # p2 was not created


def test_participants_are_updated_and_offboarded_with_audit(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(data)
    assert run(capsys, "participants", "add", "p1", "--data-dir", d, "--jurisdiction", "de")[0] == 0
    key = json.loads(run(capsys, "keys", "create", "p1", "--data-dir", d)[1])
    code, out, _ = run(capsys, "participants", "update", "p1", "--data-dir", d, "--jurisdiction", "fr",
                       "--category", "ELIGIBLE_COUNTERPARTY", "--wallet", CHECKSUMMED)
    row = json.loads(out)
    assert code == 0 and (row["jurisdiction"], row["category"]) == ("FR", "ELIGIBLE_COUNTERPARTY")
    assert row["wallets"] == [CHECKSUMMED.lower()]
    code, _, err = run(capsys, "participants", "update", "p1", "--data-dir", d, "--jurisdiction", "XX")
    assert code == 1 and "INVALID_JURISDICTION" in err
    code, out, _ = run(capsys, "participants", "offboard", "p1", "--data-dir", d)
    assert code == 0 and key["key_id"] in out
    code, _, err = run(capsys, "participants", "update", "p1", "--data-dir", d, "--status", "active")
    assert code == 1 and "PARTICIPANT_CLOSED" in err
    code, _, err = run(capsys, "keys", "create", "p1", "--data-dir", d)
    assert code == 1 and "PARTICIPANT_CLOSED" in err
    s = open_store(data)
    try:
        assert s.get_participant("p1").status is store_pkg.ParticipantStatus.CLOSED  # type: ignore[union-attr]
        assert s.list_api_keys("p1") == []  # revoked
        actions = [e.action for e in s.list_audit(newest_first=False)]
        assert actions == ["participant.add", "key.create", "participant.update", "participant.offboard"]
        assert s.verify_audit_chain().ok
    finally:
        s.close()


def test_keys_revoke(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(data)
    assert run(capsys, "participants", "add", "p1", "--data-dir", d)[0] == 0
    key = json.loads(run(capsys, "keys", "create", "p1", "--data-dir", d)[1])
    code, out, _ = run(capsys, "keys", "revoke", key["key_id"], "--data-dir", d)
    assert code == 0 and "revoked" in out
    code, _, err = run(capsys, "keys", "revoke", "nobody-123", "--data-dir", d)
    assert code == 1 and "KEY_NOT_FOUND" in err
    s = open_store(data)
    try:
        record = s.get_api_key(key["key_id"])
        assert record is not None and record.revoked_ts is not None
        assert s.list_audit(limit=1)[0].action == "key.revoke"
    finally:
        s.close()


def _list(capsys: pytest.CaptureFixture[str], d: str, *flags: str) -> tuple[int, str, str]:
    return run(capsys, "instruments", "add", "OMN-X", "--data-dir", d, "--name", "X", "--token", TOKEN,
               "--cash-token", CASH, *flags)


def test_every_listing_rule_is_settable_and_stored_in_the_database(data: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    d = str(data)
    code, _, err = _list(capsys, d, "--allowed", "lu,de,fr", "--blocked", "ru", "--holding-cap", "500",
                         "--max-holders", "150", "--lockup-until", "2027-01-01", "--trading-end", "2029-06-01T00:00",
                         "--maturity-date", "2029-06-08", "--nav-collar", "20", "10", "--attestation-max-age", "600",
                         "--rule", "identifier=XSOMN2029A07")
    assert code == 0, err
    rules = json.loads(run(capsys, "instruments", "list", "--data-dir", d)[1])["rules"]
    assert rules["allowed_jurisdictions"] == ["LU", "DE", "FR"] and rules["blocked_jurisdictions"] == ["RU"]
    assert (rules["holding_cap"], rules["max_holders"]) == (500, 150)
    assert rules["lockup_until_ts"] == 1_798_761_600 * 10**9  # 2027-01-01T00:00Z
    assert rules["trading_end_ts"] == 1_874_966_400 * 10**9  # 2029-06-01T00:00Z
    assert (rules["maturity_date"], rules["nav_collar_below_pct"], rules["nav_collar_above_pct"]) == (
        "2029-06-08", "20", "10")
    assert (rules["attestation_max_age_s"], rules["identifier"]) == (600, "XSOMN2029A07")
    assert list(rules["allowed_categories"]) == list(PROFESSIONAL_CATEGORIES)

    code, out, _ = run(capsys, "instruments", "rules", "OMN-X", "--data-dir", d, "--holding-cap", "none",
                       "--categories", "MIFID_PROFESSIONAL,US_QIB")
    changed = json.loads(out)
    assert code == 0 and changed["holding_cap"] is None and changed["allowed_categories"] == [
        "MIFID_PROFESSIONAL", "US_QIB"]
    assert changed["max_holders"] == 150  # untouched
    for flags, expected in [(["--allowed", "XX"], "INVALID_JURISDICTION"),
                            (["--max-holders", "-1"], "INVALID_LISTING_RULE"),
                            (["--rule", "colour=blue"], "INVALID_LISTING_RULE"),
                            (["--lockup-until", "soon"], "INVALID_LISTING_RULE")]:
        rc, _, err = run(capsys, "instruments", "rules", "OMN-X", "--data-dir", d, *flags)
        assert rc == 1 and expected in err, flags
    assert not (data / "listings.json").exists()
    s = open_store(data)
    try:
        assert [e.action for e in s.list_audit(newest_first=False)] == ["instrument.add", "instrument.rules"]
    finally:
        s.close()


def test_default_categories_are_the_mifid_professional_ones_only(data: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _list(capsys, str(data))[0] == 0
    rules = json.loads(run(capsys, "instruments", "list", "--data-dir", str(data))[1])["rules"]
    assert rules["allowed_categories"] == ["MIFID_PROFESSIONAL", "ELIGIBLE_COUNTERPARTY"]


def test_a_bad_listing_leaves_nothing_behind(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _list(capsys, str(data), "--blocked", "RU,XX")
    assert rc == 1 and "INVALID_JURISDICTION" in err
    assert run(capsys, "instruments", "list", "--data-dir", str(data))[1].strip() == ""


def test_listings_json_of_an_older_version_moves_into_the_database_once(data: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from venue.listings import migrate_file

    assert _list(capsys, str(data))[0] == 0
    s = open_store(data)
    try:
        s.engine.dispose()
        import sqlalchemy as sa

        with s.engine.begin() as conn:  # as an older version left it: rules only in the file
            conn.execute(sa.text("DELETE FROM listing_rules"))
        (data / "listings.json").write_text(json.dumps({"OMN-X": {"blocked_jurisdictions": ["KP"], "max_holders": 9},
                                                        "GONE": {"max_holders": 1}}))
        assert migrate_file(data, s) == ["OMN-X"]
        assert json.loads(s.list_listing_rules()["OMN-X"])["max_holders"] == 9
        assert not (data / "listings.json").exists() and (data / "listings.json.migrated").exists()
        assert migrate_file(data, s) == []  # once
        assert s.list_audit(limit=1)[0].action == "listings.migrate"
    finally:
        s.close()


# ---------------------------------------------------------------- logging


def test_repeated_errors_are_rate_limited_and_lose_their_tracebacks() -> None:
    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(burst=3, window_s=60, clock=lambda: now[0]))
    logger = logging.getLogger("test.storm")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(50):
            try:
                raise RuntimeError(f"boom {i}")
            except RuntimeError:
                logger.exception("settlement of trade %d failed", i)
        lines = stream.getvalue()
        assert lines.count("settlement of trade") == 3
        assert lines.count("Traceback") == 1  # only the first of the kind
        now[0] = 61.0
        logger.error("settlement of trade %d failed", 99)
        assert "[47 similar lines suppressed in the last 60 s]" in stream.getvalue()
        logger.info("info lines are never limited")
    finally:
        logger.removeHandler(handler)


def test_json_lines_carry_level_logger_message_and_ids() -> None:
    record = logging.LogRecord("venue.trades", logging.WARNING, __file__, 1, "trade %d failed", (7,), None)
    record.trade_id = 7
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["msg"], line["trade_id"]) == ("WARNING", "venue.trades",
                                                                              "trade 7 failed", 7)
    assert line["ts"].endswith("Z")
    with pytest.raises(ValueError, match="log format"):
        configure("INFO", "xml")


def test_the_cli_writes_log_lines_in_the_configured_format(data: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "venue.cli", "participants", "add", "p1", "--data-dir", str(data),
         "--jurisdiction", "LU", "--log-format", "json"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    onboarded = [x for x in lines if x["msg"].startswith("participant p1 onboarded")]
    assert onboarded and onboarded[0]["level"] == "INFO" and onboarded[0]["logger"] == "venue.registry"


def test_chain_watcher_lag_is_logged_when_it_passes_the_limit_and_when_it_recovers(
        caplog: pytest.LogCaptureFixture) -> None:
    from compliance.sync import ChainLag
    from venue.safeguards import LagLog

    lag_log = LagLog(10.0, every_s=300.0)
    with caplog.at_level(logging.INFO, logger="venue.safeguards"):
        lag_log.observe(ChainLag(blocks=0, seconds=0.5, synced=True), now=0.0)
        lag_log.observe(ChainLag(blocks=3, seconds=12.0, synced=True), now=12.0)
        lag_log.observe(ChainLag(blocks=5, seconds=20.0, synced=True), now=20.0)  # still behind: no repeat
        lag_log.observe(ChainLag(blocks=0, seconds=0.2, synced=True), now=25.0)
        lag_log.observe(ChainLag(blocks=0, seconds=0.2, synced=True), now=400.0)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == ["INFO", "WARNING", "INFO", "INFO"]
    assert "lagging" in lines[1][1] and "3 blocks" in lines[1][1]
    assert "caught up after 13.0 s" in lines[2][1]
