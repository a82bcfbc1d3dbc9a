"""The sync protocol's one error tree.

`SyncProtoError` is the root. A `ProtocolError` names the side at fault, the
way h11 does: `LocalProtocolError` when *we* tried to send something the
protocol forbids, `RemoteProtocolError` when the peer sent it. Either kills
the session; nothing of it may be committed.
"""

from __future__ import annotations

from syncproto.codes import ErrorCode

__all__ = [
    "LocalProtocolError",
    "PlanError",
    "ProtocolError",
    "RemoteProtocolError",
    "SyncProtoError",
    "VersionError",
]


class SyncProtoError(Exception):
    """Root of every error raised by `syncproto`."""


class ProtocolError(SyncProtoError):
    """A message broke the protocol (shape, types, bounds or ordering); the session is dead."""

    #: The `Abort` code that tells the peer about it (spec/mqtt.md error codes).
    code = ErrorCode.PROTOCOL_ERROR


class LocalProtocolError(ProtocolError):
    """We tried to send a message the protocol does not allow now (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent malformed CBOR, a wrong type, a bad value or an out-of-order message."""


class VersionError(RemoteProtocolError):
    """The peer speaks a protocol major version we do not know."""


class PlanError(SyncProtoError):
    """The planner got inputs that contradict each other (e.g. a map naming a record twice)."""
