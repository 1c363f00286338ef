"""Operator tool for a journal directory (the venue must be stopped: the journal is locked).

    python -m journal info DIR               segments, last seq/ts, snapshots, tail repair
    python -m journal dump DIR [--after N] [--limit K]   one JSON line per command
    python -m journal verify DIR             replay everything through a fresh engine; every
                                             snapshot must equal the replayed state at its seq
Exit status: 0 ok, 1 verification failed, 2 the journal cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from journal import codec
from journal.errors import JournalError
from journal.journal import Journal
from journal.snapshot import Snapshot, default_engine_factory, list_snapshots, load_snapshot


def _info(journal: Journal, directory: Path) -> dict[str, Any]:
    return {
        "directory": str(directory),
        "segments": sorted(p.name for p in directory.glob("journal-*.log")),
        "last_seq": journal.last_seq,
        "last_ts": journal.last_ts,
        "snapshots": [int(p.name[9:29]) for p in list_snapshots(directory)],
        "repaired": journal.repaired,
    }


def _verify(journal: Journal, directory: Path) -> list[str]:
    problems: list[str] = []
    snapshots: dict[int, Snapshot] = {}
    for path in list_snapshots(directory):
        try:
            snap = load_snapshot(path)
        except JournalError as exc:
            problems.append(str(exc))
            continue
        snapshots[snap.command_seq] = snap
    engine = default_engine_factory().new()

    def compare(seq: int) -> None:
        snap = snapshots.pop(seq, None)
        # Through JSON so tuples/lists compare as they were written.
        if snap is not None and snap.engine != json.loads(json.dumps(engine.snapshot())):
            problems.append(
                f"{snap.path.name}: differs from the replayed engine state at seq {seq}"
                " (written by another engine version, or damaged)"
            )

    compare(0)
    for seq, cmd in journal.replay():
        engine.process(cmd)
        compare(seq)
    problems += [f"{s.path.name}: beyond the end of the journal ({journal.last_seq})" for s in snapshots.values()]
    try:
        engine.validate()
    except Exception as exc:  # an engine invariant broken by replay is exactly what to report
        problems.append(f"replayed engine fails validate(): {exc}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m journal", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("info", "verify", "dump"):
        p = sub.add_parser(name)
        p.add_argument("directory", type=Path)
        if name == "dump":
            p.add_argument("--after", type=int, default=0, help="only commands after this seq")
            p.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"error: {args.directory} is not a directory", file=sys.stderr)
        return 2
    try:
        with Journal.open(args.directory) as journal:
            if args.command == "info":
                print(json.dumps(_info(journal, args.directory), indent=2))
                return 0
            if args.command == "dump":
                for n, (seq, payload) in enumerate(journal.replay_raw(args.after)):
                    if args.limit is not None and n >= args.limit:
                        break
                    codec.decode(payload)  # a dump line is always a valid command
                    print(json.dumps({"seq": seq, "cmd": json.loads(payload)}, separators=(",", ":")))
                return 0
            problems = _verify(journal, args.directory)
    except JournalError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"ok": not problems, "last_seq": journal.last_seq, "problems": problems}, indent=2))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
