"""The wire error codes: one table for the protocol's Abort, the sync result and MQTT.

spec/mqtt.md names them; an Abort on the wire carries one of them (the PDA only
ever sends the subset in ``REMOTE_CODES``). A ``StrEnum`` so that a code compares
equal to its string and serialises as it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["REMOTE_CODES", "ErrorCode"]


class ErrorCode(StrEnum):
    """spec/mqtt.md's error codes, exactly."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_PDA = "unknown_pda"
    NO_CARD = "no_card"
    CARD_BLOCKED = "card_blocked"
    PIN_REJECTED = "pin_rejected"
    BUSY = "busy"
    PDA_UNREACHABLE = "pda_unreachable"
    PEER_REJECTED = "peer_rejected"
    PROTOCOL_ERROR = "protocol_error"
    CARD_FULL = "card_full"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


# What a PDA may give as the reason of its Abort; anything else is a protocol error.
REMOTE_CODES = frozenset(
    {
        ErrorCode.PROTOCOL_ERROR,
        ErrorCode.INTERNAL,
        ErrorCode.CARD_FULL,
        ErrorCode.CANCELLED,
        ErrorCode.TIMEOUT,
        ErrorCode.BUSY,
    }
)
