"""Durable sequencer, command journal, engine snapshots and crash recovery.

The journal is the source of truth: a command is acknowledged only after it is fsynced, and
``recover`` (latest snapshot + replay) rebuilds the exact engine state after any crash.

Exception tree::

    JournalError
    ├── CodecError              command cannot be encoded / payload cannot be decoded
    ├── JournalCorruptError     damage before the tail or a sequence gap (never repaired silently)
    ├── JournalWriteError       append failed (I/O); reopen the journal
    │   └── JournalFencedError  another writer appended first (replicated journal): stop, a standby leads
    ├── SnapshotError           snapshot cannot be written or loaded
    └── SequencerError
        ├── SequencerStoppedError   submit while not running
        └── SequencerFailedError    fail-stop after a journal/engine failure
"""

from journal.backend import CommandJournal
from journal.codec import decode, encode
from journal.errors import (
    CodecError,
    JournalCorruptError,
    JournalError,
    JournalFencedError,
    JournalWriteError,
    SequencerError,
    SequencerFailedError,
    SequencerStoppedError,
    SnapshotError,
)
from journal.journal import Journal, read_commands
from journal.sequencer import Listener, Sequencer
from journal.snapshot import EngineFactory, EngineLike, Snapshot, latest_snapshot, recover

__all__ = [
    "CodecError",
    "CommandJournal",
    "EngineFactory",
    "EngineLike",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalFencedError",
    "JournalWriteError",
    "Listener",
    "Sequencer",
    "SequencerError",
    "SequencerFailedError",
    "SequencerStoppedError",
    "Snapshot",
    "SnapshotError",
    "decode",
    "encode",
    "latest_snapshot",
    "read_commands",
    "recover",
]
