"""The root of the phone service's own errors (config, sync); card and link errors keep theirs."""

from __future__ import annotations

from syncproto.codes import ErrorCode

__all__ = ["DaemonError", "SyncError"]


class DaemonError(Exception):
    """A failure of the phone service itself; subclasses name the phase."""


class SyncError(DaemonError):
    """A sync that could not finish; ``code`` is one of spec/mqtt.md's error codes."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
