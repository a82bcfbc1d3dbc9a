"""APDU values, status words, and the mapping of status words onto the error tree.

A ``Command`` is what the layers above ask for; the link turns it into bytes and
deals with the T=0 procedure bytes (``61xx``/``9Fxx``/``6Cxx``) so a ``Response``
always holds the final data and the final status word.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cardio import errors as e

# Status words both classes share, and the procedure bytes the link consumes.
SW_OK = 0x9000
SW1_MORE_DATA = 0x61  # CLA 0X/8X: xx bytes waiting for GET RESPONSE
SW1_GSM_MORE_DATA = 0x9F  # CLA A0: same, GSM flavour
SW1_WRONG_LE = 0x6C  # re-send with Le = SW2

# CLA A0 (TS 51.011)
SW_GSM_FILE_NOT_FOUND = 0x9404
SW_GSM_OUT_OF_RANGE = 0x9402
SW_GSM_FILE_INCONSISTENT = 0x9408
SW_GSM_ACCESS_DENIED = 0x9804  # no CHV, or wrong CHV when verifying
SW_GSM_CHV_BLOCKED = 0x9840
SW_GSM_CONTRADICTION = 0x9808
SW_GSM_INCREASE_FAILED = 0x9850
SW_GSM_MEMORY_PROBLEM = 0x9240

# CLA 00/8X (ISO 7816-4, TS 102 221)
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_NO_CURRENT_EF = 0x6986
SW_INCOMPATIBLE_FILE = 0x6981
SW_WRONG_DATA = 0x6A80
SW_FUNCTION_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_WRONG_P1P2 = 0x6A86
SW_WRONG_P1P2_OFFSET = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_MEMORY_FAILURE = 0x6581
SW_UNKNOWN = 0x6F00


@dataclass(frozen=True)
class Command:
    """One C-APDU. ``le`` None means no Le byte; ``le`` 256 is sent as ``00``."""

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise e.InvalidRequest(f"APDU {name} must be a byte, got {value}")
        if len(self.data) > 255:
            raise e.InvalidRequest(f"APDU data of {len(self.data)} bytes exceeds short Lc")
        if self.le is not None and not 1 <= self.le <= 256:
            raise e.InvalidRequest(f"APDU Le must be 1..256, got {self.le}")

    def to_bytes(self) -> bytes:
        """Short-APDU encoding; a case-1 command gets ``P3 = 00`` as T=0 requires."""
        head = bytes((self.cla, self.ins, self.p1, self.p2))
        le = b"" if self.le is None else bytes((self.le & 0xFF,))
        if self.data:
            return head + bytes((len(self.data),)) + self.data + le
        return head + (le or b"\x00")

    def with_le(self, le: int) -> Command:
        """The same command re-sent with another Le (the ``6Cxx`` retry)."""
        return Command(self.cla, self.ins, self.p1, self.p2, self.data, le)

    @property
    def channel(self) -> int:
        """Logical channel coded in b1-b2 of CLA (always 0 for CLA ``A0``)."""
        return 0 if self.cla == 0xA0 else self.cla & 0x03


@dataclass(frozen=True)
class Response:
    """One final R-APDU: data and the status word."""

    data: bytes
    sw: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        """Split an R-APDU; fewer than 2 bytes is a link protocol error."""
        if len(raw) < 2:
            raise e.LinkProtocolError(f"card answer of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])

    @property
    def sw1(self) -> int:
        """First status byte."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """Second status byte."""
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        """True for ``9000`` and the GSM "OK, with a note" words ``91xx``/``92xx``."""
        return self.sw == SW_OK or self.sw1 == 0x91 or (self.sw1 == 0x92 and self.sw2 < 0x40)


class Op(Enum):
    """What a command was, where the same status word means different things."""

    GENERIC = "command"
    SELECT = "SELECT"
    READ = "READ"
    UPDATE = "UPDATE"
    VERIFY = "VERIFY"
    UNBLOCK = "UNBLOCK"
    CHANNEL = "MANAGE CHANNEL"
    NEWSYNC = "NEWSYNC"
    GETCHANGES = "GETCHANGES"
    STORESYNC = "STORESYNC"


_SYNC_OPS = frozenset({Op.NEWSYNC, Op.GETCHANGES, Op.STORESYNC})
_SECRET_OPS = frozenset({Op.VERIFY, Op.UNBLOCK})

# Status word -> error class, for words whose meaning does not depend on the command.
_PLAIN: dict[int, type[e.CardStatusError]] = {
    SW_GSM_FILE_NOT_FOUND: e.FileNotFound,
    SW_FILE_NOT_FOUND: e.FileNotFound,
    SW_GSM_OUT_OF_RANGE: e.RecordNotFound,
    SW_RECORD_NOT_FOUND: e.RecordNotFound,
    SW_GSM_FILE_INCONSISTENT: e.WrongFileType,
    SW_INCOMPATIBLE_FILE: e.WrongFileType,
    SW_NO_CURRENT_EF: e.WrongFileType,
    SW_GSM_CHV_BLOCKED: e.CardBlocked,
    SW_AUTH_BLOCKED: e.CardBlocked,
    SW_SECURITY_NOT_SATISFIED: e.SecurityNotSatisfied,
    SW_GSM_CONTRADICTION: e.ConditionsNotSatisfied,
    SW_GSM_INCREASE_FAILED: e.ConditionsNotSatisfied,
    SW_CONDITIONS_NOT_SATISFIED: e.ConditionsNotSatisfied,
    SW_WRONG_LENGTH: e.WrongLength,
    SW_WRONG_DATA: e.WrongData,
    SW_FUNCTION_NOT_SUPPORTED: e.NotSupported,
    SW_WRONG_P1P2: e.WrongParameters,
    SW_WRONG_P1P2_OFFSET: e.WrongParameters,
    SW_INS_NOT_SUPPORTED: e.NotSupported,
    SW_CLA_NOT_SUPPORTED: e.NotSupported,
    SW_MEMORY_FAILURE: e.CardMemoryFailure,
    SW_GSM_MEMORY_PROBLEM: e.CardMemoryFailure,
}


def status_error(sw: int, op: Op = Op.GENERIC) -> e.CardStatusError:
    """The error for a failing status word ``sw`` answered to a command of kind ``op``."""
    name = op.value
    if op in _SYNC_OPS:
        if sw in (SW_INS_NOT_SUPPORTED, SW_CLA_NOT_SUPPORTED):
            return e.SyncUnsupported(sw, name, "card has no sync-object applet")
        if sw == SW_CONDITIONS_NOT_SATISFIED:
            return e.NoSession(sw, name, "no NEWSYNC session on this channel")
        if sw == SW_WRONG_DATA and op is Op.STORESYNC:
            return e.WrongSyncObject(sw, name, "not the proposed sync object")
    if op in _SECRET_OPS:
        if sw == SW_GSM_ACCESS_DENIED:
            return e.PinRejected(sw, name)
        if sw & 0xFFF0 == 0x63C0:
            if sw == 0x63C0:  # zero tries left: the code is now blocked
                return e.CardBlocked(sw, name, "no tries left")
            return e.PinRejected(sw, name, tries_left=sw & 0x0F)
    if sw == SW_GSM_ACCESS_DENIED:
        return e.SecurityNotSatisfied(sw, name, "PIN not verified")
    if sw & 0xFFF0 == 0x63C0:
        return e.SecurityNotSatisfied(sw, name, f"{sw & 0x0F} tries left")
    if sw == SW_FILE_NOT_FOUND and op in _SYNC_OPS:
        return e.FileNotFound(sw, name, "no such database under DF.TELECOM")
    cls = _PLAIN.get(sw)
    if cls is not None:
        return cls(sw, name)
    if sw >> 8 == SW1_WRONG_LE:
        return e.WrongLength(sw, name, f"card wants Le={sw & 0xFF}")
    return e.CardStatusError(sw, name)


def check(response: Response, op: Op = Op.GENERIC) -> Response:
    """Return ``response`` if it succeeded, else raise its mapped ``CardStatusError``."""
    if response.ok:
        return response
    raise status_error(response.sw, op)


__all__ = [
    "SW_OK",
    "Command",
    "Op",
    "Response",
    "check",
    "status_error",
]
