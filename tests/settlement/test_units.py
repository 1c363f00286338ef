"""Revert decoding, deployment config files, trade validation: no chain needed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from settlement import (
    ChainUnavailableError,
    DemoDeployment,
    DeploymentError,
    InvalidTradeError,
    TradeToSettle,
    connect,
    decode_revert,
)

ADDR = "0x" + "ab" * 20


def _err(signature: str, types: list[str], values: list[object]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, values)


def test_decode_error_string() -> None:
    assert decode_revert(_err("Error(string)", ["string"], ["Transfer not possible"])) == "Transfer not possible"


def test_decode_panic() -> None:
    assert decode_revert(_err("Panic(uint256)", ["uint256"], [0x11])) == "panic: arithmetic overflow or underflow"


def test_decode_custom_error_with_checksummed_address() -> None:
    data = _err("WalletFrozen(address)", ["address"], [ADDR])
    assert decode_revert("0x" + data.hex()) == "WalletFrozen(wallet=0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB)"


def test_decode_nested_leg_failure() -> None:
    inner = _err("ERC20InsufficientBalance(address,uint256,uint256)", ["address", "uint256", "uint256"], [ADDR, 1, 2])
    outer = _err("PaymentFailed(bytes)", ["bytes"], [inner])
    assert decode_revert(outer).startswith("payment leg (cash) failed: ERC20InsufficientBalance(sender=0x")
    assert decode_revert(outer).endswith("balance=1, needed=2)")


def test_decode_invalid_trade() -> None:
    data = _err("InvalidTrade(uint256,string)", ["uint256", "string"], [5, "quantity is zero"])
    assert decode_revert(data) == "invalid trade: quantity is zero"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "reverted without reason"),
        (None, "reverted without reason"),
        (bytes.fromhex("deadbeef"), "unknown revert 0xdeadbeef"),
        (bytes.fromhex("08c379a0") + b"\x01", "undecodable revert 0x08c379a001"),
        ("execution reverted", "execution reverted"),
    ],
)
def test_decode_never_raises(data: bytes | str | None, expected: str) -> None:
    assert decode_revert(data) == expected


def _deployment() -> DemoDeployment:
    a = "0x" + "11" * 20
    from web3 import Web3

    c = Web3.to_checksum_address(a)
    return DemoDeployment(
        chain_id=31337,
        settlement=c,
        token=c,
        identity_registry=c,
        compliance=c,
        stablecoin=c,
        admin=c,
        settler=c,
    )


def test_deployment_round_trips_through_a_file(tmp_path: Path) -> None:
    dep = _deployment()
    dep.save(tmp_path / "d.json")
    assert DemoDeployment.load(tmp_path / "d.json") == dep
    assert DemoDeployment.from_json(dep.to_json()) == dep


@pytest.mark.parametrize(
    "text", ["not json", "{}", '{"chain_id": 1}', _deployment().to_json().replace("0x1111", "0xzz11", 1)]
)
def test_bad_deployment_config_is_a_deployment_error(text: str) -> None:
    with pytest.raises(DeploymentError, match="invalid deployment config"):
        DemoDeployment.from_json(text)


def test_missing_deployment_file(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="cannot read"):
        DemoDeployment.load(tmp_path / "absent.json")


def test_trade_normalisation() -> None:
    trade = TradeToSettle(
        trade_id=1, token=ADDR, seller="0x" + "01" * 20, buyer="0x" + "02" * 20, quantity=1, cash_token=ADDR,
        cash_amount=1,
    )
    assert trade.normalized().token == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
    with pytest.raises(InvalidTradeError, match="quantity must be a positive uint256"):
        replace(trade, quantity=True).normalized()
    with pytest.raises(InvalidTradeError, match="trade_id must be a positive uint256"):
        replace(trade, trade_id=2**256).normalized()


def test_connect_refuses_non_http_urls() -> None:
    with pytest.raises(ChainUnavailableError, match="only http"):
        connect("ws://127.0.0.1:8546")
