"""The version of the engine's matching rules.

The journal stores commands, not events: replaying it reproduces the book only if the engine makes
the same decisions. Bump ``RULES_VERSION`` whenever the same command stream could produce different
events (a rule, a code, an event's order or content); a venue refuses to replay a journal written
under another version instead of silently building a different book.
"""

RULES_VERSION = 1
