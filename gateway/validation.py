"""Pydantic / JSON problems -> one stable error code with a message naming the field.

``parse_object`` is on every websocket frame and REST body: it parses with orjson and proves the
absence of duplicate keys by counting (see ``_fast_object``); anything the fast path cannot prove
valid goes through the strict standard-library parser, which decides (and words) every error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.errors import ApiError

DECIMAL_FIELDS = frozenset({"price", "qty"})
_LOC_ROOTS = frozenset({"body", "query", "path", "header"})


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in _LOC_ROOTS]
    return ".".join(parts) or "body"


def from_validation_errors(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """The first problem as an ApiError (pydantic lists them in field order)."""
    if not errors:
        return ApiError("INVALID_FIELD", "invalid request")
    err = errors[0]
    kind = str(err.get("type", ""))
    loc = tuple(err.get("loc", ()))
    field = _field(loc)
    last = str(loc[-1]) if loc else ""
    if kind == "json_invalid":
        return ApiError("MALFORMED_JSON", "body is not valid JSON")
    if kind == "extra_forbidden":
        return ApiError("UNKNOWN_FIELD", f"unknown field {field!r}")
    if kind == "missing":
        if field == "body":
            return ApiError("MISSING_FIELD", "request body is required")
        return ApiError("MISSING_FIELD", f"missing field {field!r}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return ApiError("MALFORMED_JSON", "body must be a JSON object")
    if last in DECIMAL_FIELDS and kind == "string_type":
        return ApiError("INVALID_DECIMAL", f"{field} must be a decimal string like \"12.34\", not a JSON number")
    if loc and loc[0] == "query" and kind in ("less_than_equal", "less_than"):
        return ApiError("INVALID_FIELD", f"{field}: {err.get('msg', 'out of range')}")  # a bound, like ge=1
    if kind in ("less_than_equal", "less_than", "string_too_long", "too_long") or (
        kind == "int_parsing_size"
    ):
        return ApiError("VALUE_TOO_LARGE", f"{field}: {err.get('msg', 'too large')}")
    return ApiError("INVALID_FIELD", f"{field}: {err.get('msg', 'invalid value')}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ApiError("DUPLICATE_JSON_KEY", f"key {name[:64]!r} appears more than once in one object")
            seen.add(name)
    return obj


def _keys(value: Any) -> int:
    """Keys of every object in ``value``, at any depth; -1 when it holds a float anywhere (orjson
    reads integers beyond 64 bits as floats, losing digits: such text goes to the strict parser)."""
    if isinstance(value, dict):
        items: Any = value.values()
        total = len(value)
    elif isinstance(value, list):
        items, total = value, 0
    else:
        return -1 if isinstance(value, float) else 0
    for item in items:
        if isinstance(item, dict | list | float):
            inner = _keys(item)
            if inner < 0:
                return -1
            total += inner
    return total


def _fast_object(raw: bytes | str) -> dict[str, Any] | None:
    """The object ``raw`` holds when orjson parses it and it provably has no duplicate key, else
    None (then the strict parser decides). Proof by counting: in valid JSON every key is followed
    by exactly one structural ``:``, and orjson keeps one entry per distinct key, so the parsed
    objects hold as many keys as there are structural colons iff no object repeats a key. All
    colons of the text bound the structural ones from above (equal: done); otherwise, for text
    without backslashes, the colons outside strings are the structural ones (split at quotes).
    orjson refuses NaN/Infinity (the strict parser then answers); text with a float goes to the
    strict parser too (see ``_keys``)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    keys = _keys(value)
    if keys < 0:
        return None
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if text.count(":") == keys:
        return value
    if "\\" in text:
        return None  # escaped quotes: leave the tokenising to the strict parser
    if sum(part.count(":") for part in text.split('"')[0::2]) == keys:
        return value
    return None


def parse_object(raw: bytes | str) -> dict[str, Any]:
    """Strict JSON object: no NaN/Infinity literals, no key twice in one object (at any depth:
    ``{"side": "buy", "side": "sell"}`` is DUPLICATE_JSON_KEY, never "last one wins"); any other
    parse failure is MALFORMED_JSON."""
    fast = _fast_object(raw)
    if fast is not None:
        return fast
    try:
        value = json.loads(raw, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise ApiError("MALFORMED_JSON", "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError("MALFORMED_JSON", "body must be a JSON object")
    return value
