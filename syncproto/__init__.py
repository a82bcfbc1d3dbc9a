"""Sans-IO sync session: messages (CBOR), state machines, the planner.

Imports nothing of ours and does no I/O; docs/protocol.md is the wire contract.
Importing the package loads only the error codes and errors: every other name comes
from its module on first use (PEP 562), so the phone, which never plans, does not
load the planner, and a config check loads neither messages nor cbor2.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .codes import REMOTE_CODES, ErrorCode
from .errors import (
    LocalProtocolError,
    PlanError,
    ProtocolError,
    RemoteProtocolError,
    SyncProtoError,
    VersionError,
)

if TYPE_CHECKING:
    from .codec import MAX_FRAME, decode, encode
    from .messages import (
        MAX_ITEMS,
        MAX_RECORDS,
        PROTOCOL_VERSION,
        SET_ASIDE_SINCE,
        Abort,
        Alert,
        AlertReply,
        Applied,
        CardData,
        CardDeleted,
        CardEntry,
        CardRecord,
        Committed,
        Delete,
        Done,
        Message,
        Mode,
        Op,
        OpResult,
        PdaOps,
        Policy,
        Prepared,
        Put,
        Removed,
        RequestedMode,
        Skipped,
        Stored,
    )
    from .planner import (
        CardDelete,
        CardPut,
        CreateContact,
        DeleteContact,
        Entry,
        Plan,
        Settled,
        Synced,
        UpdateContact,
        equivalent,
        plan,
        settle,
    )
    from .session import TRANSITIONS, PdaSession, PhoneSession, Role, Session, State

#: name -> the module that defines it, imported when the name is first asked for.
_LAZY = {
    "MAX_FRAME": "syncproto.codec",
    "decode": "syncproto.codec",
    "encode": "syncproto.codec",
    "MAX_ITEMS": "syncproto.messages",
    "MAX_RECORDS": "syncproto.messages",
    "PROTOCOL_VERSION": "syncproto.messages",
    "SET_ASIDE_SINCE": "syncproto.messages",
    "Abort": "syncproto.messages",
    "Alert": "syncproto.messages",
    "AlertReply": "syncproto.messages",
    "Applied": "syncproto.messages",
    "CardData": "syncproto.messages",
    "CardDeleted": "syncproto.messages",
    "CardEntry": "syncproto.messages",
    "CardRecord": "syncproto.messages",
    "Committed": "syncproto.messages",
    "Delete": "syncproto.messages",
    "Done": "syncproto.messages",
    "Message": "syncproto.messages",
    "Mode": "syncproto.messages",
    "Op": "syncproto.messages",
    "OpResult": "syncproto.messages",
    "PdaOps": "syncproto.messages",
    "Policy": "syncproto.messages",
    "Prepared": "syncproto.messages",
    "Put": "syncproto.messages",
    "Removed": "syncproto.messages",
    "RequestedMode": "syncproto.messages",
    "Skipped": "syncproto.messages",
    "Stored": "syncproto.messages",
    "CardDelete": "syncproto.planner",
    "CardPut": "syncproto.planner",
    "CreateContact": "syncproto.planner",
    "DeleteContact": "syncproto.planner",
    "Entry": "syncproto.planner",
    "Plan": "syncproto.planner",
    "Settled": "syncproto.planner",
    "Synced": "syncproto.planner",
    "UpdateContact": "syncproto.planner",
    "equivalent": "syncproto.planner",
    "plan": "syncproto.planner",
    "settle": "syncproto.planner",
    "TRANSITIONS": "syncproto.session",
    "PdaSession": "syncproto.session",
    "PhoneSession": "syncproto.session",
    "Role": "syncproto.session",
    "Session": "syncproto.session",
    "State": "syncproto.session",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'syncproto' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups never come back here
    return value


__all__ = [
    "MAX_FRAME",
    "MAX_ITEMS",
    "MAX_RECORDS",
    "PROTOCOL_VERSION",
    "REMOTE_CODES",
    "SET_ASIDE_SINCE",
    "TRANSITIONS",
    "Abort",
    "Alert",
    "AlertReply",
    "Applied",
    "CardData",
    "CardDelete",
    "CardDeleted",
    "CardEntry",
    "CardPut",
    "CardRecord",
    "Committed",
    "CreateContact",
    "Delete",
    "DeleteContact",
    "Done",
    "Entry",
    "ErrorCode",
    "LocalProtocolError",
    "Message",
    "Mode",
    "Op",
    "OpResult",
    "PdaOps",
    "PdaSession",
    "PhoneSession",
    "Plan",
    "PlanError",
    "Policy",
    "Prepared",
    "ProtocolError",
    "Put",
    "RemoteProtocolError",
    "Removed",
    "RequestedMode",
    "Role",
    "Session",
    "Settled",
    "Skipped",
    "State",
    "Stored",
    "SyncProtoError",
    "Synced",
    "UpdateContact",
    "VersionError",
    "decode",
    "encode",
    "equivalent",
    "plan",
    "settle",
]
