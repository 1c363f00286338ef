"""``venue export``, ``venue holders``, ``venue confirmations`` and ``venue audit`` (records commands).

    venue export rts22|rts24 --date YYYY-MM-DD [--mic XOFF] [--lei LEI] [--currency USD] [--out FILE]
    venue confirmations PARTICIPANT [--date YYYY-MM-DD]
    venue holders SYMBOL                  register of holders, reconciled with the chain (--chain URL)
    venue audit verify-anchor [--tx HASH ...]   recompute the audit chain, check the on-chain anchors
    venue audit anchor --key-file F       write the current audit head on-chain now (admin key)

Exports and confirmations read only the store. ``holders`` and ``audit`` also read the chain, so
they need a chain that outlives the venue process: a JSON-RPC URL (``--chain``). With the embedded
in-process chain (or a venue-started anvil) use the operator API or the console instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from venue.config import VenueConfig

if TYPE_CHECKING:
    from settlement.chain import Chain
    from store import Store

Common = Callable[[argparse.ArgumentParser], None]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: Common) -> None:
    exp = sub.add_parser("export", help="a day's records as CSV: rts22 (transactions) or rts24 (orders)")
    common(exp)
    exp.add_argument("kind", choices=["rts22", "rts24"])
    exp.add_argument("--date", required=True, help="UTC day, YYYY-MM-DD")
    exp.add_argument("--mic", default=None, help="the venue's segment MIC (default XOFF)")
    exp.add_argument("--lei", default="", help="LEI of the executing/operating entity")
    exp.add_argument("--currency", default="USD", help="ISO 4217 code of the cash token's unit")
    exp.add_argument("--out", type=Path, help="write the CSV here (default: stdout)")

    conf = sub.add_parser("confirmations", help="a participant's trade confirmations (JSON lines)")
    common(conf)
    conf.add_argument("participant")
    conf.add_argument("--date", default=None, help="UTC day, YYYY-MM-DD (default: all, newest first)")

    hold = sub.add_parser("holders", help="register of holders of a note series, reconciled with the chain")
    common(hold)
    hold.add_argument("symbol")
    hold.add_argument("--since-block", type=int, default=None, help="baseline block (default: before the "
                      "series' first settled trade)")

    audit = sub.add_parser("audit", help="audit log: on-chain anchors")
    asub = audit.add_subparsers(dest="action", required=True)
    verify = asub.add_parser("verify-anchor", help="recompute the audit chain and check every on-chain anchor")
    common(verify)
    verify.add_argument("--tx", action="append", default=[], help="also check this anchor transaction hash")
    anchor = asub.add_parser("anchor", help="write the audit chain's head on-chain now")
    common(anchor)
    anchor.add_argument("--key-file", type=Path, required=True,
                        help="file with the admin account's private key (hex): the anchor's sender")


COMMANDS = ("export", "confirmations", "holders", "audit")


def run(args: argparse.Namespace, config: VenueConfig) -> int:
    """Run one records command; prints its result, returns the exit code."""
    from venue import exports
    from venue.anchor import AnchorError, anchor_head, verify_anchors
    from venue.holders import RegisterError, build_register
    from venue.records import Records

    try:
        with _store(config) as store:
            if args.command == "export":
                options = exports.ExportOptions(mic=args.mic or exports.DEFAULT_MIC, executing_entity=args.lei,
                                                currency=args.currency)
                text = exports.export(store, args.kind, args.date, options)
                if args.out:
                    args.out.write_text(text)
                    print(f"{args.kind} {args.date}: {text.count(chr(10)) - 1} rows written to {args.out}")
                else:
                    sys.stdout.write(text)
                return 0
            if args.command == "confirmations":
                for row in Records(store, None).confirmations(args.participant, day=args.date):
                    print(json.dumps(row))
                return 0
            with _chain(config, args) as (chain, sender):
                if args.command == "holders":
                    register = build_register(store, chain, args.symbol, since_block=args.since_block)
                    print(json.dumps(register.to_json(), indent=2))
                    return 0 if not register.flagged else 3
                if args.action == "anchor":
                    if sender is None:
                        print("venue: ANCHOR_FAILED: no deployment file names the venue's account", file=sys.stderr)
                        return 1
                    anchored = anchor_head(store, chain, sender)
                    print(json.dumps(None if anchored is None else {
                        "audit_id": anchored.audit_id, "hash": anchored.head_hash, "tx_hash": anchored.tx_hash,
                        "block": anchored.block}))
                    return 0
                result = verify_anchors(store, chain, sender=sender, tx_hashes=args.tx)
                print(json.dumps(result.to_json(), indent=2))
                return 0 if result.ok else 3
    except (exports.ExportError, RegisterError, AnchorError, _CliError) as exc:
        print(f"venue: {exc.code}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, exports.ExportError) else 1


class _CliError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def _store(config: VenueConfig) -> Iterator[Store]:
    import store as store_pkg

    try:
        opened = store_pkg.Store.open(config.database_url)
    except store_pkg.StoreError as exc:
        raise _CliError("STORE_UNAVAILABLE", str(exc)) from exc
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def _chain(config: VenueConfig, args: argparse.Namespace) -> Iterator[tuple[Chain, str | None]]:
    from settlement import SettlementError, connect
    from settlement.deploy import DemoDeployment

    if not config.chain.startswith(("http://", "https://")):
        raise _CliError("REGISTER_CHAIN_ERROR", f"a {config.chain} chain lives only inside the venue process: give "
                        "--chain a JSON-RPC URL, or use the operator API / console of the running venue")
    keys = [bytes.fromhex(config.settler_key.removeprefix("0x"))] if config.settler_key else []
    key_file: Path | None = getattr(args, "key_file", None)
    if key_file is not None:
        try:
            keys.append(bytes.fromhex(key_file.read_text().strip().removeprefix("0x")))
        except (OSError, ValueError) as exc:
            raise _CliError("ANCHOR_FAILED", f"cannot read the key file {key_file}: {exc}") from exc
    try:
        chain = connect(config.chain, private_keys=keys)
    except SettlementError as exc:
        raise _CliError("REGISTER_CHAIN_ERROR", str(exc)) from exc
    sender = DemoDeployment.load(config.deployment_path).admin if config.deployment_path.exists() else None
    try:
        yield chain, sender
    finally:
        chain.close()
