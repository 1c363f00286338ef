"""Attestation benchmark: gas per attestation, direct and EIP-712 delegated, through our resolver,
against the same EAS attestation on the same schema string without a resolver (the reference: what
EAS alone costs), plus a revocation and the watcher's full sync of N attestations.

    .venv/bin/python benchmarks/attestation.py [--attestations 50] [--chain anvil|in-process]

"first" is the series' first statement of a kind (the resolver writes a fresh ``lastAsOf`` slot),
"next" a later one (slot already set); gas is each transaction's ``gasUsed``, median over the runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and its name would shadow the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from attestation import (  # noqa: E402
    SCHEMAS,
    AttestationDeployment,
    AttestationWatcher,
    CustodyStatement,
    Kind,
    Publisher,
    Role,
    deploy_attestation,
    encode_statement,
    registry_abi,
)
from attestation.verify import AttestRequest, sign_attest  # noqa: E402
from settlement import Chain, DemoAdmin, deploy_demo, in_process_chain, start_anvil  # noqa: E402

ZERO = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20


def _baseline_schema(chain: Chain, dep: AttestationDeployment, sender: str) -> bytes:
    """The Custody schema string registered again without a resolver (EAS alone)."""
    registry = chain.contract(dep.schema_registry, registry_abi())
    receipt = chain.transact(registry.functions.register(SCHEMAS[Kind.CUSTODY], ZERO_ADDRESS, True), sender)
    return bytes(registry.events.Registered().process_log(receipt["logs"][0])["args"]["uid"])


def run(chain: Chain, n: int) -> list[tuple[str, str]]:
    issuer = chain.accounts[0]
    demo = deploy_demo(chain, admin=issuer, settler=chain.accounts[1])
    token = demo.token
    DemoAdmin(chain, demo).onboard(chain.new_account(), country=756, notes=1_000)
    dep = deploy_attestation(chain, issuer)
    pub = Publisher(chain, dep)
    custodian, submitter = chain.new_account(), chain.new_account()
    pub.set_attestor(token, custodian, Role.CUSTODIAN, admin=issuer)
    eas = chain.contract(dep.eas, __import__("attestation").eas_abi())
    baseline = _baseline_schema(chain, dep, issuer)
    key = chain.private_key(custodian)
    t0 = int(chain.w3.eth.get_block("latest")["timestamp"]) - 10 * n - 100

    def custody(i: int) -> CustodyStatement:
        return CustodyStatement(as_of=t0 + i, btc_balance_sats=150_000_000 + i)

    gas: dict[str, list[int]] = {k: [] for k in ("direct first", "direct next", "delegated next", "revoke",
                                                 "EAS alone direct", "EAS alone delegated")}
    gas["direct first"].append(pub.attest(token, custody(0), attester=custodian).gas_used)
    uids: list[bytes] = []
    for i in range(1, n + 1):
        p = pub.attest(token, custody(2 * i), attester=custodian)
        gas["direct next"].append(p.gas_used)
        uids.append(p.uid)
        gas["delegated next"].append(pub.submit(pub.sign(token, custody(2 * i + 1), private_key=key),
                                                submitter=submitter).gas_used)
        data = encode_statement(custody(i))
        gas["EAS alone direct"].append(int(chain.transact(
            eas.functions.attest((baseline, (token, 0, True, ZERO, data, 0))), custodian)["gasUsed"]))
        req = AttestRequest(attester=custodian, schema=baseline, recipient=token, expiration_time=0, revocable=True,
                            ref_uid=ZERO, data=data, value=0, nonce=pub.nonce(custodian), deadline=0)
        sig = sign_attest(pub.domain(), req, key)
        gas["EAS alone delegated"].append(int(chain.transact(eas.functions.attestByDelegation(
            (baseline, (token, 0, True, ZERO, data, 0), (sig.v, sig.r, sig.s), custodian, 0)), submitter)["gasUsed"]))
    for uid in uids[: max(1, n // 5)]:
        gas["revoke"].append(pub.revoke(uid, revoker=custodian).gas_used)

    rows = [(f"gas: {name} (median of {len(v)})", f"{int(statistics.median(v)):,}") for name, v in gas.items()]
    rows.append(("resolver overhead, direct next (vs EAS alone)",
                 f"{int(statistics.median(gas['direct next']) - statistics.median(gas['EAS alone direct'])):,}"))
    w = AttestationWatcher(chain.w3, dep, series=[token])
    start = time.perf_counter()
    w.poll_once()
    elapsed = time.perf_counter() - start
    rows.append((f"watcher full sync of {len(w.records())} attestations", f"{elapsed * 1000:.0f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attestations", type=int, default=50)
    parser.add_argument("--chain", choices=["anvil", "in-process"], default="anvil")
    args = parser.parse_args()
    chain = start_anvil() if args.chain == "anvil" else in_process_chain()
    try:
        rows = run(chain, args.attestations)
    finally:
        chain.close()
    print(f"## attestation ({args.chain}, {args.attestations} per kind)\n")
    print("| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
