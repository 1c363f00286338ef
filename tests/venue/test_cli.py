"""The ``venue`` CLI's offline commands against a real store (SQLite file in a temp dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import store as store_pkg
from venue.cli import main
from venue.config import ConfigError, load_config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_participants_and_keys_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "var")
    assert run(capsys, "migrate", "--data-dir", data)[0] == 0
    code, out, _ = run(capsys, "participants", "add", "fund-a", "--data-dir", data, "--category", "US_QIB",
                       "--jurisdiction", "us", "--wallet", "0x" + "ab" * 20)
    assert code == 0 and "fund-a" in out
    code, out, _ = run(capsys, "keys", "create", "fund-a", "--data-dir", data)
    secret = json.loads(out)
    assert code == 0 and secret["participant"] == "fund-a" and len(bytes.fromhex(secret["private_key"])) == 32
    code, out, _ = run(capsys, "participants", "list", "--data-dir", data)
    row = json.loads(out.strip())
    assert row["category"] == "US_QIB" and row["jurisdiction"] == "US" and len(row["wallets"]) == 1

    store = store_pkg.Store.open(f"sqlite:///{tmp_path / 'var' / 'venue.sqlite'}")
    try:
        key = store.get_api_key(secret["key_id"])
        assert key is not None and key.public_key.hex() == secret["public_key"]  # only the public key is stored
        assert [e.action for e in store.list_audit(newest_first=False)] == ["participant.add", "key.create"]
    finally:
        store.close()


def test_bad_input_gets_specific_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "var")
    code, _, err = run(capsys, "participants", "add", "x", "--data-dir", data, "--category", "GRANDMA")
    assert code == 1 and "INVALID_CATEGORY" in err
    code, _, err = run(capsys, "keys", "create", "nobody", "--data-dir", data)
    assert code == 1 and "UNKNOWN_PARTICIPANT" in err
    assert run(capsys, "participants", "add", "x", "--data-dir", data)[0] == 0
    code, _, err = run(capsys, "participants", "add", "x", "--data-dir", data)
    assert code == 1 and "PARTICIPANT_EXISTS" in err
    code, _, err = run(capsys, "deploy", "--data-dir", data)
    assert code == 1 and "EPHEMERAL_CHAIN" in err


def test_config_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "venue.toml"
    path.write_text('[venue]\nport = 9000\nchain = "anvil"\n')
    monkeypatch.setenv("VENUE_PORT", "9100")
    config = load_config(path, {"chain": None, "host": "0.0.0.0"})
    assert (config.port, config.chain, config.host) == (9100, "anvil", "0.0.0.0")
    path.write_text("[venue]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown configuration keys: prot"):
        load_config(path)
    monkeypatch.setenv("VENUE_PORT", "eighty")
    with pytest.raises(ConfigError, match="'port'"):
        load_config(None)


def test_instruments_add_converts_decimals_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "var")
    token, cash = "0x" + "11" * 20, "0x" + "22" * 20
    code, out, err = run(capsys, "instruments", "add", "OMN-X", "--data-dir", data, "--name", "X", "--token", token,
                         "--cash-token", cash, "--tick", "0.05", "--band", "10000", "90000", "--blocked", "ru,kp")
    assert code == 0, err
    code, out, _ = run(capsys, "instruments", "list", "--data-dir", data)
    row = json.loads(out.strip())
    assert (row["symbol"], row["tick_size"], row["lot_size"]) == ("OMN-X", 50_000, 1)  # 0.05 USDC = 50,000 units
    assert row["rules"]["blocked_jurisdictions"] == ["RU", "KP"]  # in the database
    assert not (tmp_path / "var" / "listings.json").exists()


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (["--tick", "0.0000001"], "INVALID_NUMBER"),  # below one cash base unit
        (["--tick", "NaN"], "INVALID_NUMBER"),
        (["--tick", "-1"], "INVALID_NUMBER"),
        (["--tick", "abc"], "INVALID_NUMBER"),
        (["--band", "10000.001", "20000"], "INVALID_BAND"),
        (["--min-qty", "5", "--max-qty", "2"], "INVALID_SIZE"),
        (["--categories", "RETAIL,ALIENS"], "INVALID_CATEGORY"),
    ],
)
def test_instruments_add_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], code: str
) -> None:
    rc, _, err = run(capsys, "instruments", "add", "OMN-X", "--data-dir", str(tmp_path / "var"), "--name", "X",
                     "--token", "0x" + "11" * 20, "--cash-token", "0x" + "22" * 20, *flags)
    assert rc == 1 and code in err


def test_demo_refuses_a_database_that_is_not_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    assert run(capsys, "participants", "add", "someone", "--data-dir", str(tmp_path / "a"), "--db-url", db)[0] == 0
    code, _, err = run(capsys, "demo", "--data-dir", str(tmp_path / "b"), "--db-url", db, "--duration", "1",
                       "--port", "0")
    assert code == 1 and "needs an empty database" in err


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_demo_call_interval_must_be_a_positive_number_of_seconds(value: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--call-interval", value, "--duration", "1"])
    assert exited.value.code == 2
    assert f"a positive number of seconds, not {value!r}" in capsys.readouterr().err


def test_a_journal_from_other_engine_rules_is_refused(tmp_path: Path) -> None:
    from engine import RULES_VERSION
    from venue.runtime import StartupError, check_rules_version

    journal = tmp_path / "journal"
    check_rules_version(journal)  # fresh: marks it
    assert (journal / "ENGINE_RULES_VERSION").read_text().strip() == str(RULES_VERSION)
    check_rules_version(journal)  # same rules: fine
    (journal / "ENGINE_RULES_VERSION").write_text(f"{RULES_VERSION + 1}\n")
    with pytest.raises(StartupError, match="different book"):
        check_rules_version(journal)
