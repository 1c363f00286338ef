"""The EAS ABIs shipped with the package equal the ones in the pinned npm package."""

from __future__ import annotations

import json

import pytest

from attestation.contracts import EAS_ARTIFACTS_DIR, eas_abi, registry_abi


@pytest.mark.parametrize(("relative", "vendored"), [("EAS.sol/EAS.json", eas_abi),
                                                    ("SchemaRegistry.sol/SchemaRegistry.json", registry_abi)])
def test_vendored_abi_equals_the_npm_artifact(relative: str, vendored: object) -> None:
    path = EAS_ARTIFACTS_DIR / relative
    if not path.exists():
        pytest.skip(f"{path} missing (npm ci not run): cannot compare the vendored EAS ABI")
    assert callable(vendored)
    assert vendored() == json.loads(path.read_text())["abi"]
