"""Engine exceptions: only for broken invariants and misuse, never for expected rejections."""


class EngineError(Exception):
    """Root of every exception the engine raises."""


class InvariantError(EngineError):
    """``Engine.validate()`` found a broken book invariant."""


class UnknownInstrumentError(EngineError, LookupError):
    """A query named an instrument the engine does not know."""


class SnapshotError(EngineError, ValueError):
    """``Engine.from_snapshot()`` got data that is not a valid engine snapshot."""
