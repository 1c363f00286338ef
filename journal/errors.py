"""Exceptions of the journal package (the tree is drawn in ``journal/__init__``)."""


class JournalError(Exception):
    """Root of every error raised by ``journal``."""


class CodecError(JournalError):
    """A command cannot be encoded, or a payload cannot be decoded."""


class JournalCorruptError(JournalError):
    """Damage the journal must not repair silently: a bad record before the tail, a sequence gap."""


class JournalWriteError(JournalError):
    """An append failed (I/O error); the journal refuses further appends until reopened."""


class JournalFencedError(JournalWriteError):
    """Another writer appended to the replicated journal since this one last did (the stream's
    expected-last-sequence check refused the append): this process is no longer the leader and
    must stop writing."""


class SnapshotError(JournalError):
    """A snapshot cannot be written, or no usable snapshot/journal state can be loaded."""


class SequencerError(JournalError):
    """The sequencer cannot accept or complete a command."""


class SequencerStoppedError(SequencerError):
    """``submit`` was called while the sequencer is not running."""


class SequencerFailedError(SequencerError):
    """The sequencer stopped after a journal or engine failure (fail-stop); restart and recover."""
