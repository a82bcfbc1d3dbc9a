"""The host side of the card: PC/SC link, SIM files, EF codecs, the three sync commands.

Every name is imported on first use (PEP 562), so ``import cardio.codecs`` (the PDA
does) or an ``errors`` import loads neither pyscard nor the card-event thread nor
anything else a program does not call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cardio.apdu import (
        Command,
        Op,
        Response,
        check,
        status_error,
    )
    from cardio.errors import (
        AmbiguousReader,
        CardBlocked,
        CardioError,
        CardMemoryFailure,
        CardRemoved,
        CardReset,
        CardStatusError,
        CardTimeout,
        ConditionsNotSatisfied,
        FileNotFound,
        InvalidRequest,
        LinkClosed,
        LinkError,
        LinkProtocolError,
        MalformedResponse,
        NoCard,
        NoReader,
        NoSession,
        NotSupported,
        PinRejected,
        ReaderGone,
        RecordNotFound,
        SecurityNotSatisfied,
        SyncUnsupported,
        WrongData,
        WrongFileType,
        WrongLength,
        WrongParameters,
        WrongSyncObject,
    )
    from cardio.events import (
        CardEvent,
        CardEvents,
        EventKind,
    )
    from cardio.files import (
        FileInfo,
        FileKind,
        FileStructure,
        parse_fcp,
        parse_gsm_select,
    )
    from cardio.inproc import (
        InProcessLink,
        RawCard,
    )
    from cardio.link import (
        CardLink,
    )
    from cardio.pcsc import (
        PcscLink,
    )
    from cardio.sim import (
        Sim,
        decode_iccid,
    )
    from cardio.sync import (
        CardSync,
        Change,
        ChangeKind,
        NewSyncResult,
    )
    from cardio.timing import (
        TimedLink,
        tpdu_bytes,
    )

# Which module holds each public name.
_HOMES: dict[str, str] = {
    "AmbiguousReader": "cardio.errors",
    "CardBlocked": "cardio.errors",
    "CardEvent": "cardio.events",
    "CardEvents": "cardio.events",
    "CardLink": "cardio.link",
    "CardMemoryFailure": "cardio.errors",
    "CardRemoved": "cardio.errors",
    "CardReset": "cardio.errors",
    "CardStatusError": "cardio.errors",
    "CardSync": "cardio.sync",
    "CardTimeout": "cardio.errors",
    "CardioError": "cardio.errors",
    "Change": "cardio.sync",
    "ChangeKind": "cardio.sync",
    "Command": "cardio.apdu",
    "ConditionsNotSatisfied": "cardio.errors",
    "EventKind": "cardio.events",
    "FileInfo": "cardio.files",
    "FileKind": "cardio.files",
    "FileNotFound": "cardio.errors",
    "FileStructure": "cardio.files",
    "InProcessLink": "cardio.inproc",
    "InvalidRequest": "cardio.errors",
    "LinkClosed": "cardio.errors",
    "LinkError": "cardio.errors",
    "LinkProtocolError": "cardio.errors",
    "MalformedResponse": "cardio.errors",
    "NewSyncResult": "cardio.sync",
    "NoCard": "cardio.errors",
    "NoReader": "cardio.errors",
    "NoSession": "cardio.errors",
    "NotSupported": "cardio.errors",
    "Op": "cardio.apdu",
    "PcscLink": "cardio.pcsc",
    "PinRejected": "cardio.errors",
    "RawCard": "cardio.inproc",
    "ReaderGone": "cardio.errors",
    "RecordNotFound": "cardio.errors",
    "Response": "cardio.apdu",
    "SecurityNotSatisfied": "cardio.errors",
    "Sim": "cardio.sim",
    "SyncUnsupported": "cardio.errors",
    "TimedLink": "cardio.timing",
    "WrongData": "cardio.errors",
    "WrongFileType": "cardio.errors",
    "WrongLength": "cardio.errors",
    "WrongParameters": "cardio.errors",
    "WrongSyncObject": "cardio.errors",
    "check": "cardio.apdu",
    "decode_iccid": "cardio.sim",
    "parse_fcp": "cardio.files",
    "parse_gsm_select": "cardio.files",
    "status_error": "cardio.apdu",
    "tpdu_bytes": "cardio.timing",
}

__all__ = [
    "AmbiguousReader",
    "CardBlocked",
    "CardEvent",
    "CardEvents",
    "CardLink",
    "CardMemoryFailure",
    "CardRemoved",
    "CardReset",
    "CardStatusError",
    "CardSync",
    "CardTimeout",
    "CardioError",
    "Change",
    "ChangeKind",
    "Command",
    "ConditionsNotSatisfied",
    "EventKind",
    "FileInfo",
    "FileKind",
    "FileNotFound",
    "FileStructure",
    "InProcessLink",
    "InvalidRequest",
    "LinkClosed",
    "LinkError",
    "LinkProtocolError",
    "MalformedResponse",
    "NewSyncResult",
    "NoCard",
    "NoReader",
    "NoSession",
    "NotSupported",
    "Op",
    "PcscLink",
    "PinRejected",
    "RawCard",
    "ReaderGone",
    "RecordNotFound",
    "Response",
    "SecurityNotSatisfied",
    "Sim",
    "SyncUnsupported",
    "TimedLink",
    "WrongData",
    "WrongFileType",
    "WrongLength",
    "WrongParameters",
    "WrongSyncObject",
    "check",
    "decode_iccid",
    "parse_fcp",
    "parse_gsm_select",
    "status_error",
    "tpdu_bytes",
]


def __getattr__(name: str) -> Any:
    """Import the module that holds ``name`` on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cardio' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
