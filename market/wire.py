"""A typed JSON encoding of the venue's own values (``engine`` and ``market`` dataclasses and
enums), for the messages between a ``venue gateway`` process and the leader (``venue.remote``).

A dataclass is ``{"$t": "module:Class", "f": {field: value}}``, an enum ``{"$e": "module:Class",
"v": value}``; tuples, bytes, decimals and non-string-keyed dicts are tagged too, so a value
decodes to exactly what was encoded. Decoding builds only dataclasses and enums defined in the
``engine`` and ``market`` packages (never an arbitrary class, unlike pickle): a peer on the bus
cannot make the decoder run anything else.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
from decimal import Decimal
from typing import Any

import orjson

_PACKAGES = ("engine", "market")


class WireError(ValueError):
    """A message that is not a well-formed encoding of an allowed value."""


def _name(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


_PLAIN = frozenset({str, int, float, bool, type(None)})  # exact types: an IntEnum is not one of them
# per class: its tag and the names of its init fields (``dataclasses.fields`` per object is slow)
_DATACLASSES: dict[type[Any], tuple[str, tuple[str, ...]]] = {}
_ENUMS: dict[type[Any], str] = {}
_RESOLVED: dict[str, type[Any]] = {}  # tag -> class, for tags that passed ``_resolve``'s checks


def _encode(obj: Any) -> Any:
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    spec = _DATACLASSES.get(cls)
    if spec is not None:
        return {"$t": spec[0], "f": {name: _encode(getattr(obj, name)) for name in spec[1]}}
    if isinstance(obj, enum.Enum):  # first: a StrEnum is a str, an IntEnum an int
        tag = _ENUMS.get(cls)
        if tag is None:
            tag = _ENUMS[cls] = _name(cls)
        return {"$e": tag, "v": obj.value}
    if isinstance(obj, (bool, str, int, float)):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _DATACLASSES[cls] = (_name(cls), tuple(f.name for f in dataclasses.fields(obj) if f.init))
        return _encode(obj)
    if isinstance(obj, tuple):
        return {"$tu": [_encode(x) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x) for x in obj]
    if isinstance(obj, (bytes, bytearray)):
        return {"$b": bytes(obj).hex()}
    if isinstance(obj, Decimal):
        return {"$d": str(obj)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v) for k, v in obj.items()}
        return {"$m": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    raise WireError(f"cannot encode a {type(obj).__name__}")


def _resolve(name: Any) -> type[Any]:
    if isinstance(name, str):
        known = _RESOLVED.get(name)
        if known is not None:
            return known
    if not isinstance(name, str) or ":" not in name:
        raise WireError(f"bad type name {name!r}")
    module, qual = name.split(":", 1)
    if module.split(".")[0] not in _PACKAGES or "." in qual:
        raise WireError(f"type {name!r} is not one the venue exchanges")
    try:
        cls = getattr(importlib.import_module(module), qual)
    except (ImportError, AttributeError) as exc:
        raise WireError(f"unknown type {name!r}") from exc
    if not isinstance(cls, type) or not (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum)):
        raise WireError(f"type {name!r} is not a dataclass or an enum")
    _RESOLVED[name] = cls
    return cls


def _decode(obj: Any) -> Any:
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    if cls is list:
        return [_decode(x) for x in obj]
    if cls is not dict:
        return obj
    if "$t" in obj:
        cls = _resolve(obj["$t"])
        fields = obj.get("f")
        if not dataclasses.is_dataclass(cls) or not isinstance(fields, dict):
            raise WireError(f"bad dataclass value for {obj['$t']!r}")
        try:
            return cls(**{k: _decode(v) for k, v in fields.items()})
        except TypeError as exc:
            raise WireError(f"bad fields for {obj['$t']!r}: {exc}") from exc
    if "$e" in obj:
        cls = _resolve(obj["$e"])
        if not issubclass(cls, enum.Enum):
            raise WireError(f"{obj['$e']!r} is not an enum")
        try:
            return cls(obj.get("v"))
        except ValueError as exc:
            raise WireError(str(exc)) from exc
    if "$tu" in obj:
        return tuple(_decode(x) for x in obj["$tu"])
    if "$b" in obj:
        return bytes.fromhex(obj["$b"])
    if "$d" in obj:
        return Decimal(obj["$d"])
    if "$m" in obj:
        return {_decode(k): _decode(v) for k, v in obj["$m"]}
    return {k: _decode(v) for k, v in obj.items()}


def dumps(obj: Any) -> bytes:
    encoded = _encode(obj)
    try:
        return orjson.dumps(encoded)
    except TypeError:  # an integer beyond 64 bits (raw token amounts): the standard library
        return json.dumps(encoded, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    try:
        raw = json.loads(data)  # not orjson: it reads an integer beyond 64 bits as a float
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from exc
    return _decode(raw)
