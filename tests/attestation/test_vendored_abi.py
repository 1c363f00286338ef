"""The EAS ABIs and bytecode shipped with the package equal the ones in the pinned npm package."""

from __future__ import annotations

import json

import pytest

from attestation.contracts import EAS_ARTIFACTS_DIR, _vendored_artifact, eas_abi, registry_abi


@pytest.mark.parametrize(("relative", "vendored"), [("EAS.sol/EAS.json", eas_abi),
                                                    ("SchemaRegistry.sol/SchemaRegistry.json", registry_abi)])
def test_vendored_abi_equals_the_npm_artifact(relative: str, vendored: object) -> None:
    path = EAS_ARTIFACTS_DIR / relative
    if not path.exists():
        pytest.skip(f"{path} missing (npm ci not run): cannot compare the vendored EAS ABI")
    assert callable(vendored)
    assert vendored() == json.loads(path.read_text())["abi"]


@pytest.mark.parametrize("name", ["EAS", "SchemaRegistry"])
def test_vendored_bytecode_equals_the_npm_artifact(name: str) -> None:
    path = EAS_ARTIFACTS_DIR / f"{name}.sol" / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} missing (npm ci not run): cannot compare the vendored EAS bytecode")
    vendored = _vendored_artifact(name)
    assert vendored is not None
    npm = json.loads(path.read_text())
    assert (vendored.abi, vendored.bytecode) == (npm["abi"], npm["bytecode"])
