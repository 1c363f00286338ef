"""Committed artifacts must be exactly what the pinned solc makes of the sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from settlement import ArtifactError, check_artifacts, load
from settlement.artifacts import ARTIFACTS_DIR, NODE_MODULES, OUR_CONTRACTS, REPO_ROOT


def test_committed_artifacts_match_sources() -> None:
    check_artifacts()


def test_every_contract_has_abi_and_bytecode() -> None:
    for name in OUR_CONTRACTS:
        artifact = load(name)
        assert artifact.bytecode[:4] in ("0x60", "0x61") and len(artifact.bytecode) > 1000
        assert any(item.get("type") == "function" for item in artifact.abi)


def test_missing_artifact_is_a_clear_error() -> None:
    with pytest.raises(ArtifactError, match="NoSuchContract not found"):
        load("NoSuchContract")


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "contracts", tmp_path / "contracts")
    shutil.copy(REPO_ROOT / "package.json", tmp_path / "package.json")
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    return tmp_path / "contracts"


def _check(contracts: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(contracts / "build.mjs"), "--check"], capture_output=True, text=True, timeout=300, check=False
    )


def test_check_detects_an_edited_source(contracts_copy: Path) -> None:
    src = contracts_copy / "src" / "DvPSettlement.sol"
    src.write_text(src.read_text().replace('"trade id is zero"', '"trade id must not be zero"'))
    result = _check(contracts_copy)
    assert result.returncode == 1
    assert "artifact out of date: contracts/artifacts/DvPSettlement.json" in result.stderr


def test_check_detects_a_stale_artifact(contracts_copy: Path) -> None:
    shutil.copy(ARTIFACTS_DIR / "DemoStablecoin.json", contracts_copy / "artifacts" / "Removed.json")
    result = _check(contracts_copy)
    assert result.returncode == 1
    assert "artifact without a source: contracts/artifacts/Removed.json" in result.stderr
