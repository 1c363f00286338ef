"""Faster constructors for the frozen slotted message dataclasses (the engine's hot path).

A frozen dataclass ``__init__`` sets every field through ``object.__setattr__`` by name; calling the
slots' member descriptors directly builds an identical object about 2.5x faster. The constructor is
generated from ``dataclasses.fields`` (keyword-only, same defaults), so a field added to a message
class is picked up automatically and a caller that omits a required one fails loudly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fast_constructor(cls: type[T]) -> Callable[..., T]:
    if not (dataclasses.is_dataclass(cls) and "__slots__" in cls.__dict__):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    params = []
    for f in fields:
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: default factories are not supported")
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "\n".join(f"    _set_{name}(o, {name})" for name in names)
    source = f"def make(*, {', '.join(params)}):\n    o = _new(_cls)\n{body}\n    return o\n"
    exec(source, namespace)  # same technique as dataclasses' own generated __init__
    make: Callable[..., T] = namespace["make"]
    make.__qualname__ = make.__name__ = f"make_{cls.__name__}"
    return make
