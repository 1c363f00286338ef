"""EAS + SchemaRegistry from the npm package's published artifacts, and our resolver.

EAS and the SchemaRegistry are deployed from the Hardhat artifacts that
``@ethereum-attestation-service/eas-contracts`` ships (``artifacts/contracts/*.sol/*.json``): that
is the bytecode EAS itself built with solc 0.8.29 and publishes, it needs no second compiler in the
toolchain (our build pins 0.8.28 and the EAS sources pin exactly 0.8.29), and ``npm ci`` reproduces it
from the lock file. Against a real chain nothing of EAS is deployed: the chain's EAS address comes
from configuration (on Base the predeploys ``0x4200...0021`` / ``...0020``) and only our resolver is
deployed next to it (``deploy_resolver``); it registers the four schemas itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from web3.contract.contract import Contract

from attestation.errors import AttestationConfigError
from attestation.schemas import SCHEMAS, Kind
from settlement import Artifact, ArtifactError, Chain, ChainError, load
from settlement.artifacts import NODE_MODULES
from settlement.chain import rpc_errors, to_address

EAS_PACKAGE = NODE_MODULES / "@ethereum-attestation-service" / "eas-contracts"
EAS_ARTIFACTS_DIR = EAS_PACKAGE / "artifacts" / "contracts"
VENDORED_ABI_DIR = Path(__file__).resolve().parent / "abi"  # run-time ABIs, shipped in the wheel (see its README)
RESOLVER = "NoteAttestationResolver"


@cache
def load_eas(relative: str) -> Artifact:
    """An EAS artifact by path under the package's ``artifacts/contracts``, e.g. ``EAS.sol/EAS.json``."""
    path = EAS_ARTIFACTS_DIR / relative
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        vendored = _vendored_artifact(Path(relative).stem)  # an installed wheel: no node_modules
        if vendored is None:
            raise ArtifactError(f"EAS artifact not found at {path} (run npm ci)") from exc
        return vendored
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"EAS artifact at {path} is unreadable: {exc}") from exc
    if not isinstance(data.get("bytecode"), str) or not isinstance(data.get("abi"), list):
        raise ArtifactError(f"EAS artifact at {path} lacks abi/bytecode")
    return Artifact(name=str(data.get("contractName", path.stem)), abi=data["abi"], bytecode=data["bytecode"])


def _vendored_artifact(name: str) -> Artifact | None:
    """The ABI and creation bytecode shipped in ``abi/`` (same bytes as the npm artifact; checked by
    ``tests/attestation/test_vendored_abi.py``), so ``venue demo`` deploys EAS from a wheel too."""
    path = VENDORED_ABI_DIR / f"{name}.bytecode"
    if not path.exists():
        return None
    return Artifact(name=name, abi=_vendored_abi(name), bytecode=path.read_text().strip())


@cache
def _vendored_abi(name: str) -> list[dict[str, Any]]:
    path = VENDORED_ABI_DIR / f"{name}.json"
    try:
        abi = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"EAS ABI {name} at {path} is missing or unreadable: {exc}") from exc
    if not isinstance(abi, list):
        raise ArtifactError(f"EAS ABI {name} at {path} is not an ABI list")
    return abi


def eas_abi() -> list[dict[str, Any]]:
    """The EAS ABI (vendored: needs no node_modules, so it works from an installed wheel)."""
    return _vendored_abi("EAS")


def registry_abi() -> list[dict[str, Any]]:
    return _vendored_abi("SchemaRegistry")


def resolver_abi() -> list[dict[str, Any]]:
    return load(RESOLVER).abi


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationDeployment:
    """Where the attestation contracts live on one chain (JSON-serialisable for configuration)."""

    eas: str
    schema_registry: str
    resolver: str
    schemas: dict[Kind, str]  # kind -> schema UID (0x hex)
    start_block: int  # the resolver's deployment block: watchers scan from here

    def schema_uid(self, kind: Kind) -> bytes:
        return bytes.fromhex(self.schemas[kind].removeprefix("0x"))

    def kind_of(self, schema_uid: bytes) -> Kind | None:
        hexed = "0x" + schema_uid.hex()
        for kind, uid in self.schemas.items():
            if uid == hexed:
                return kind
        return None

    def to_json(self) -> str:
        data = asdict(self)
        data["schemas"] = {k.name: v for k, v in self.schemas.items()}
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AttestationDeployment:
        try:
            data = json.loads(text)
            return cls(
                eas=to_address(data["eas"]),
                schema_registry=to_address(data["schema_registry"]),
                resolver=to_address(data["resolver"]),
                schemas={Kind[name]: str(uid) for name, uid in data["schemas"].items()},
                start_block=int(data["start_block"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AttestationConfigError(f"not an attestation deployment: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> AttestationDeployment:
        try:
            return cls.from_json(Path(path).read_text())
        except OSError as exc:
            raise AttestationConfigError(f"cannot read attestation deployment {path}: {exc}") from exc


def deploy_eas(chain: Chain, deployer: str) -> tuple[str, str]:
    """Deploy the SchemaRegistry and EAS (test/demo chains); returns (eas, schema_registry)."""
    registry = chain.deploy(load_eas("SchemaRegistry.sol/SchemaRegistry.json"), deployer)
    eas = chain.deploy(load_eas("EAS.sol/EAS.json"), deployer, registry.address)
    return str(eas.address), str(registry.address)


def deploy_resolver(chain: Chain, deployer: str, eas: str) -> AttestationDeployment:
    """Deploy our resolver next to an existing EAS; it registers one schema per kind."""
    eas_contract = chain.contract(eas, eas_abi())
    try:
        with rpc_errors("getSchemaRegistry()"):
            registry_address = eas_contract.functions.getSchemaRegistry().call()
    except ChainError as exc:
        raise AttestationConfigError(f"no EAS contract at {eas}: {exc}") from exc
    factory = chain.w3.eth.contract(abi=resolver_abi(), bytecode=load(RESOLVER).bytecode)
    receipt = chain.send({"data": factory.constructor(to_address(eas)).data_in_transaction}, deployer,
                         what=f"deploy {RESOLVER}")
    address = receipt["contractAddress"]
    if address is None:
        raise ChainError(f"deploy {RESOLVER}: receipt has no contract address")
    resolver = chain.contract(address, resolver_abi())
    schemas = {kind: "0x" + bytes(resolver.functions.schemaUid(int(kind)).call()).hex() for kind in Kind}
    registry = chain.contract(registry_address, registry_abi())
    for kind, uid in schemas.items():
        record = registry.functions.getSchema(bytes.fromhex(uid[2:])).call()
        if record[3] != SCHEMAS[kind]:
            raise AttestationConfigError(
                f"resolver registered {record[3]!r} for {kind.name}, expected {SCHEMAS[kind]!r}"
            )
    return AttestationDeployment(
        eas=to_address(eas),
        schema_registry=to_address(registry_address),
        resolver=to_address(address),
        schemas=schemas,
        start_block=int(receipt["blockNumber"]),
    )


def deploy_attestation(chain: Chain, deployer: str) -> AttestationDeployment:
    """EAS + SchemaRegistry + our resolver + the four schemas, on a test or demo chain."""
    eas, _ = deploy_eas(chain, deployer)
    return deploy_resolver(chain, deployer, eas)


def contracts_of(chain: Chain, deployment: AttestationDeployment) -> tuple[Contract, Contract]:
    """(EAS, resolver) web3 contract objects."""
    return chain.contract(deployment.eas, eas_abi()), chain.contract(deployment.resolver, resolver_abi())
