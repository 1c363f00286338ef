"""Versioned, compact encoding of engine commands for the journal.

A payload is UTF-8 JSON: ``[version, tag, {field: value}]``. Fields equal to their dataclass
default are omitted (compact, and adding a defaulted field later stays readable); enums are
written as their integer value, an ``InstrumentSpec`` as a nested object. Keys are sorted so the
same command always encodes to the same bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable
from typing import Any

from engine.instrument import InstrumentSpec
from engine.messages import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    CancelOrder,
    Command,
    Cross,
    MassCancel,
    NewOrder,
    SetInstrumentStatus,
)
from journal.errors import CodecError

VERSION = 1

# Tags are part of the on-disk format: never renumber, only add.
_TAGS: dict[type[Any], int] = {
    AddInstrument: 1,
    SetInstrumentStatus: 2,
    NewOrder: 3,
    AmendOrder: 4,
    CancelOrder: 5,
    MassCancel: 6,
    AdvanceTime: 7,
    Cross: 9,  # negotiated trades (venue.rfq, venue.blocks)
}
_BY_TAG: dict[int, type[Any]] = {tag: cls for cls, tag in _TAGS.items()}

_Decoder = Callable[[Any], Any]


def _field_decoder(annotation: Any) -> _Decoder:
    """Turn a JSON value back into the field's type (enums, nested spec), rejecting wrong types."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {annotation!r}")
        decode_inner = _field_decoder(inner[0])
        return lambda v: None if v is None else decode_inner(v)
    if isinstance(annotation, type) and issubclass(annotation, enum.IntEnum):
        enum_cls = annotation
        return lambda v: enum_cls(_expect(v, int))
    if annotation is InstrumentSpec:
        return _decode_spec
    if annotation in (int, str, bool):
        expected = annotation
        return lambda v: _expect(v, expected)
    raise TypeError(f"unsupported field type {annotation!r}")


def _expect(value: Any, expected: type[Any]) -> Any:
    # bool is an int subclass in Python: keep the two apart so a corrupt payload cannot slip through.
    if type(value) is not expected:
        raise CodecError(f"expected {expected.__name__}, got {type(value).__name__}")
    return value


def _field_decoders(cls: type[Any]) -> dict[str, _Decoder]:
    hints = typing.get_type_hints(cls)
    return {f.name: _field_decoder(hints[f.name]) for f in dataclasses.fields(cls)}


_SPEC_DECODERS: dict[str, _Decoder] = {}
_DECODERS: dict[type[Any], dict[str, _Decoder]] = {}


def _decode_spec(value: Any) -> InstrumentSpec:
    spec: InstrumentSpec = _build(InstrumentSpec, value, _SPEC_DECODERS)
    return spec


def _build(cls: type[Any], raw: Any, decoders: dict[str, _Decoder]) -> Any:
    if not isinstance(raw, dict):
        raise CodecError(f"{cls.__name__}: expected an object")
    unknown = raw.keys() - decoders.keys()
    if unknown:
        raise CodecError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    try:
        kwargs = {name: decoders[name](value) for name, value in raw.items()}
        return cls(**kwargs)
    except CodecError as exc:
        raise CodecError(f"{cls.__name__}: {exc}") from None
    except (TypeError, ValueError) as exc:  # missing field, bad enum value
        raise CodecError(f"{cls.__name__}: {exc}") from None


_MISSING = object()
# Per class, in sorted name order (so the output equals sort_keys=True without sorting every
# record): (field name, default or _MISSING, is nested spec, exact types allowed).
_Layout = tuple[tuple[str, Any, bool, tuple[type[Any], ...]], ...]
_LAYOUT: dict[type[Any], _Layout] = {}
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _allowed_types(annotation: Any) -> tuple[type[Any], ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(annotation) for t in _allowed_types(arg))
    return (annotation,)


def _layout(cls: type[Any]) -> _Layout:
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            f.default if f.default is not dataclasses.MISSING else _MISSING,
            hints[f.name] is InstrumentSpec,
            _allowed_types(hints[f.name]),
        )
        for f in sorted(dataclasses.fields(cls), key=lambda f: f.name)
    )


def _to_plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, default, nested, allowed in _LAYOUT[type(obj)]:
        value = getattr(obj, name)
        if type(value) not in allowed:
            # Exact types: a float price or a bool quantity must never reach the journal, where
            # it would fail to decode at the next recovery.
            names = " | ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise CodecError(f"{type(obj).__name__}.{name}: expected {names}, got {type(value).__name__} {value!r}")
        if value is default or (value == default and type(value) is type(default)):
            continue
        if nested:
            out[name] = _to_plain(value)
        elif isinstance(value, enum.IntEnum):
            out[name] = int(value)
        else:
            out[name] = value
    return out


def encode(cmd: Command) -> bytes:
    """Serialise one command. Raises ``CodecError`` for anything that is not an engine command
    or has a field of the wrong type (checked exactly: ``bool`` is not an ``int`` here)."""
    tag = _TAGS.get(type(cmd))
    if tag is None:
        raise CodecError(f"not an engine command: {type(cmd).__name__}")
    return _ENCODER.encode([VERSION, tag, _to_plain(cmd)]).encode()


def decode(payload: bytes) -> Command:
    """Parse bytes written by ``encode``. Raises ``CodecError`` with the reason on any mismatch."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"payload is not JSON: {exc}") from None
    if not (isinstance(doc, list) and len(doc) == 3):
        raise CodecError("payload is not a [version, tag, fields] triple")
    version, tag, fields = doc
    if version != VERSION:
        raise CodecError(f"unsupported codec version {version!r} (this build reads {VERSION})")
    cls = _BY_TAG.get(tag) if type(tag) is int else None
    if cls is None:
        raise CodecError(f"unknown command tag {tag!r}")
    cmd: Command = _build(cls, fields, _DECODERS[cls])
    return cmd


def _init() -> None:
    _SPEC_DECODERS.update(_field_decoders(InstrumentSpec))
    _LAYOUT[InstrumentSpec] = _layout(InstrumentSpec)
    for cls in _TAGS:
        _DECODERS[cls] = _field_decoders(cls)
        _LAYOUT[cls] = _layout(cls)


_init()


_NEW_ORDER_PREFIX = b"[%d,%d," % (VERSION, _TAGS[NewOrder])


def client_order_id_of(payload: bytes) -> tuple[str, str] | None:
    """``(participant, client_order_id)`` of an encoded new order with a client order id, else None.
    Recovery reads every journaled order this way: it skips the other commands without parsing them
    and builds no command object (about 2.5x faster than ``decode``)."""
    if not payload.startswith(_NEW_ORDER_PREFIX):
        return None
    try:
        fields = json.loads(payload)[2]
        participant, coid = fields["participant"], fields.get("client_order_id", "")
    except (ValueError, LookupError, TypeError) as exc:
        raise CodecError(f"bad new order payload: {exc}") from None
    if type(participant) is not str or type(coid) is not str:
        raise CodecError("new order: participant and client_order_id must be strings")
    return (participant, coid) if coid else None

