"""The dependency direction is executable: each package imports only what its layer allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "attestation", "engine", "journal", "store", "compliance", "settlement", "gateway", "venueclient", "venue",
    "loadtests",
}
ALLOWED: dict[str, set[str]] = {
    "engine": set(),  # pure: nothing of ours
    "settlement": set(),
    "attestation": {"settlement"},
    "venueclient": set(),
    "compliance": {"engine"},
    "journal": {"engine"},
    "store": {"engine", "journal"},
    "gateway": {"engine", "venueclient"},
    "venue": OURS - {"venue", "loadtests"},
}
EXCEPTIONS = {"journal/node.py": {"store"}}  # the crash-test node process also writes the store


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_its_allowed_layers(package: str) -> None:
    bad: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        extra = imported_packages(path) - {package} - ALLOWED[package] - EXCEPTIONS.get(rel, set())
        if extra:
            bad.append(f"{rel} imports {sorted(extra)}")
    assert not bad, bad


def test_engine_does_no_io() -> None:
    forbidden = {"asyncio", "socket", "os", "time", "random", "threading", "subprocess", "pathlib", "io"}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        used = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                used.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                used.add(node.module.split(".")[0])
        assert not used & forbidden, f"{path.name} imports {sorted(used & forbidden)}"
