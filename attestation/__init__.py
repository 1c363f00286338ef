"""On-chain attestations of a note series' economic state (EAS), their verification and a watcher.

Public API::

    dep = deploy_attestation(chain, deployer)            # EAS + SchemaRegistry (npm artifacts) + resolver
    dep = deploy_resolver(chain, deployer, eas_address)  # real chain: the chain's EAS from configuration
    # CLI: python -m attestation.deploy --rpc URL --key-file K (--eas ADDRESS | --with-eas) --out dep.json
    dep.schema_uid(Kind.NAV), dep.kind_of(uid), dep.to_json() / AttestationDeployment.from_json(text)
    pub = Publisher(chain, dep)
    pub.set_attestor(token, attestor, Role.CUSTODIAN | Role.AUDITOR, admin=token_owner)  # Role(0) removes
    pub.attest(token, CustodyStatement(as_of=..., btc_balance_sats=...), attester=addr) -> Published
    signed = pub.sign(token, NavStatement(...), private_key=key)    # EIP-712, offline
    pub.submit(signed, submitter=anyone) -> Published; pub.revoke(uid, revoker=attester) -> Published
    verify_attest_signature(domain, request, signature) / recover_attester(...) / attest_digest(...)
    w = AttestationWatcher(chain.w3, dep, series=[token], on_ignored=cb); w.poll_once(); await w.run(stop)
    w.latest(token, Kind.NAV) -> AttestationRecord | None; w.reference(token) -> SeriesReference
    demo_statements(ProductionModel(...), notes=..., issued_at=..., maturity=..., t=..., ...) (model.py)
    who = register_demo_attestors(pub, token, issuer=owner)
    DemoAttestor(pub, token, who, model, issued_at=..., maturity=..., btc_price=lambda t: Decimal(...))
        .publish(t) -> list[Published]; await .run(stop, interval_s=30)

Exceptions (``code`` attribute is stable)::

    AttestationError                 attestation_error
     ├── AttestationConfigError      attestation_config    bad deployment / watcher configuration
     ├── InvalidStatementError       invalid_statement     statement out of range / undecodable
     ├── AttestationRejectedError    attestation_rejected  refused on chain; ``reason`` decoded
     └── AttestationSyncError        attestation_sync      watcher RPC failure (cache keeps its state)

Chain errors other than refusals (node down, timeouts) come from ``settlement`` (``ChainError``).
"""

from attestation.contracts import (
    AttestationDeployment,
    deploy_attestation,
    deploy_eas,
    deploy_resolver,
    eas_abi,
    load_eas,
    registry_abi,
    resolver_abi,
)
from attestation.demo import DemoAttestor, DemoAttestors, register_demo_attestors
from attestation.errors import (
    AttestationConfigError,
    AttestationError,
    AttestationRejectedError,
    AttestationSyncError,
    InvalidStatementError,
)
from attestation.model import (
    DemoStatements,
    ProductionModel,
    block_reward_btc,
    btc_per_note_per_day,
    demo_statements,
    mined_sats_per_note,
    nav_per_note_e6,
    network_ph_s,
    realised_ph_s_e3,
)
from attestation.publish import DelegatedAttestation, Published, Publisher
from attestation.schemas import (
    ALLOWED_ROLES,
    SCHEMAS,
    AccrualStatement,
    CustodyStatement,
    HashrateStatement,
    Kind,
    NavStatement,
    Role,
    Statement,
    decode_statement,
    encode_statement,
    statement_from_fields,
)
from attestation.verify import (
    AttestRequest,
    Eip712Domain,
    Signature,
    attest_digest,
    recover_attester,
    sign_attest,
    typed_data,
    verify_attest_signature,
)
from attestation.watcher import (
    AttestationBatch,
    AttestationRecord,
    AttestationWatcher,
    DelegationProof,
    IgnoredAttestation,
    SeriesReference,
    Standing,
)

__all__ = [
    "ALLOWED_ROLES",
    "SCHEMAS",
    "AccrualStatement",
    "AttestRequest",
    "AttestationBatch",
    "AttestationConfigError",
    "AttestationDeployment",
    "AttestationError",
    "AttestationRecord",
    "AttestationRejectedError",
    "AttestationSyncError",
    "AttestationWatcher",
    "CustodyStatement",
    "DelegatedAttestation",
    "DelegationProof",
    "DemoAttestor",
    "DemoAttestors",
    "DemoStatements",
    "Eip712Domain",
    "HashrateStatement",
    "IgnoredAttestation",
    "InvalidStatementError",
    "Kind",
    "NavStatement",
    "ProductionModel",
    "Published",
    "Publisher",
    "Role",
    "SeriesReference",
    "Signature",
    "Standing",
    "Statement",
    "attest_digest",
    "block_reward_btc",
    "btc_per_note_per_day",
    "decode_statement",
    "demo_statements",
    "deploy_attestation",
    "deploy_eas",
    "deploy_resolver",
    "eas_abi",
    "encode_statement",
    "load_eas",
    "mined_sats_per_note",
    "nav_per_note_e6",
    "network_ph_s",
    "realised_ph_s_e3",
    "recover_attester",
    "register_demo_attestors",
    "registry_abi",
    "resolver_abi",
    "sign_attest",
    "statement_from_fields",
    "typed_data",
    "verify_attest_signature",
]
