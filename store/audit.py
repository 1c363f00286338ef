"""Hash chain of the audit log: ``hash = sha256(prev_hash + canonical record)``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from store.errors import InvalidRecordError

GENESIS = "0" * 64


def canonical_details(details: dict[str, Any]) -> str:
    """One text per value: sorted keys, no whitespace, ASCII. What is hashed is what is stored."""
    try:
        return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"audit details must be JSON-serialisable: {exc}") from None


def entry_hash(prev_hash: str, *, id: int, ts: int, actor: str, action: str, details: str) -> str:
    record = json.dumps(
        {"id": id, "ts": ts, "actor": actor, "action": action, "details": details},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256((prev_hash + record).encode()).hexdigest()
