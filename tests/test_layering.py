"""The dependency direction is executable: each package imports only what its layer allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "attestation", "engine", "market", "journal", "store", "compliance", "settlement", "gateway", "venueclient",
    "venue", "loadtests",
}
ALLOWED: dict[str, set[str]] = {
    "engine": set(),  # pure: nothing of ours
    "market": {"engine"},  # the shared vocabulary and code registry, just above the engine
    "settlement": {"market"},
    "attestation": {"settlement"},
    "venueclient": set(),
    "compliance": {"engine", "market"},
    "journal": {"engine"},
    "store": {"engine", "journal", "market"},
    "gateway": {"engine", "market", "venueclient"},
    "venue": OURS - {"venue", "loadtests"},
}


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
        extra = imported_packages(path) - {package} - ALLOWED[package]
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


# Roles inside ``venue``: the order path and what it hands trades and operator actions to never
# depend on the gateway (the gateway depends on them, through ``gateway/ports.py``).
ORDER_PATH = ("venue/core.py", "venue/pipeline.py", "venue/trades.py", "venue/reference.py", "venue/operations.py")


@pytest.mark.parametrize("module", ORDER_PATH)
def test_the_order_path_imports_no_gateway_module(module: str) -> None:
    assert "gateway" not in imported_packages(ROOT / module), f"{module} imports the gateway"

