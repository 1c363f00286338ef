"""Load compiled contract artifacts (ours from ``contracts/artifacts``; T-REX from node_modules).

In a source checkout ours are read from ``contracts/artifacts``; an installed wheel has no
``contracts/`` directory and carries a copy as package data, ``settlement/contract_artifacts``
(put there by the build hook in ``setup.py``), which wins when present.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from settlement.errors import ArtifactError

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "contracts" / "artifacts"
NODE_MODULES = REPO_ROOT / "node_modules"
PACKAGED_ARTIFACTS = "contract_artifacts"  # inside the settlement package, in a wheel only
TREX_ARTIFACTS_DIR = NODE_MODULES / "@tokenysolutions" / "t-rex" / "artifacts" / "contracts"

OUR_CONTRACTS = ("DvPSettlement", "DemoSecurityToken", "DemoIdentityRegistry", "DemoCompliance", "DemoStablecoin",
                 "DemoSmartWallet")


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def _read(path: Path, name: str) -> Artifact:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"artifact {name} not found at {path}") from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact {name} at {path} is unreadable: {exc}") from exc
    bytecode = data.get("bytecode")
    if not isinstance(bytecode, str) or not isinstance(data.get("abi"), list):
        raise ArtifactError(f"artifact {name} at {path} lacks abi/bytecode")
    return Artifact(name=name, abi=data["abi"], bytecode=bytecode)


def artifacts_dir() -> Path:
    """Where our artifacts are: the installed package's copy, else the checkout's ``contracts/artifacts``."""
    packaged = resources.files("settlement") / PACKAGED_ARTIFACTS
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return ARTIFACTS_DIR


@cache
def load(name: str) -> Artifact:
    """One of our contracts, from ``<artifacts_dir()>/<name>.json``."""
    return _read(artifacts_dir() / f"{name}.json", name)


@cache
def load_trex(relative: str) -> Artifact:
    """A T-REX artifact by path under its ``artifacts/contracts``, e.g. ``token/Token.sol/Token.json``.

    Test/benchmark-time only: the T-REX suite is GPL, we load its published artifacts, never its code.
    """
    path = TREX_ARTIFACTS_DIR / relative
    return _read(path, path.stem)


def check_artifacts() -> None:
    """Recompile the sources with the pinned solc and compare with the committed artifacts."""
    try:
        proc = subprocess.run(
            ["node", str(REPO_ROOT / "contracts" / "build.mjs"), "--check"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArtifactError(f"could not run the contract build: {exc}") from exc
    if proc.returncode != 0:
        raise ArtifactError(f"artifacts do not match sources: {proc.stderr.strip() or proc.stdout.strip()}")
