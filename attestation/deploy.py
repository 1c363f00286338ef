"""``python -m attestation.deploy``: deploy our resolver (and its four schemas) next to a chain's EAS,
or EAS + SchemaRegistry + resolver on a test chain, and write the deployment JSON that the watcher,
``venue attest`` and the venue configuration read.

    python -m attestation.deploy --rpc URL --key-file deployer.key \
        --eas 0x4200000000000000000000000000000000000021 --out attestation.json
    python -m attestation.deploy --rpc http://127.0.0.1:8545 --key-file deployer.key --with-eas \
        --out attestation.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from attestation.contracts import deploy_attestation, deploy_resolver
from attestation.errors import AttestationError
from settlement import SettlementError, connect


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attestation.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpc", required=True, help="JSON-RPC URL")
    parser.add_argument("--key-file", type=Path, required=True, help="file with the deployer's private key (hex)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--eas", help="the chain's EAS address (e.g. Base: 0x4200...0021)")
    where.add_argument("--with-eas", action="store_true", help="deploy EAS + SchemaRegistry too (test chains)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the deployment JSON")
    args = parser.parse_args(argv)
    try:
        key = bytes.fromhex(args.key_file.read_text().strip().removeprefix("0x"))
        with connect(args.rpc, private_keys=[key]) as chain:
            deployer = chain.accounts[0]
            dep = deploy_attestation(chain, deployer) if args.with_eas else deploy_resolver(chain, deployer, args.eas)
        dep.save(args.out)
    except (AttestationError, SettlementError) as exc:
        print(f"attestation.deploy: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"attestation.deploy: invalid_input: {exc}", file=sys.stderr)
        return 2
    print(dep.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
