"""Results of ``Engine.process_many``: one call for a batch of commands, results read back by index.

``batch[i]`` is the ``Result`` of the i-th command, equal to what ``process`` would have returned.
``code(i)``, ``order_id(i)`` and ``event_count()`` read the compact results without building event
objects; the compiled engine keeps events in a C buffer and builds a command's event objects only
when ``batch[i]`` is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from engine.codes import ResultCode
from engine.messages import Result


class ResultBatch(Sequence[Result]):
    """The reference implementation: a plain list of ``Result`` objects."""

    __slots__ = ("_results",)

    def __init__(self, results: list[Result]) -> None:
        self._results = results

    def __len__(self) -> int:
        return len(self._results)

    @overload
    def __getitem__(self, index: int) -> Result: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | Sequence[Result]:
        return self._results[index]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    def code(self, index: int) -> ResultCode:
        return self._results[index].code

    def order_id(self, index: int) -> int | None:
        return self._results[index].order_id

    def event_count(self) -> int:
        return sum(len(r.events) for r in self._results)
