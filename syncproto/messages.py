"""The messages of one sync session (frozen dataclasses) and their value checks.

Flow (phone = initiator, PDA = responder; see docs/protocol.md):
Alert → AlertReply → CardData… → PdaOps → Applied → Prepared → Committed → Done,
and Abort from either side at any time.

`check(msg)` validates one message on its own (types, bounds, anchor sizes);
checks that need the session's context (record numbers against the card's
geometry, refs against the ops sent) live in `session.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import StrEnum

__all__ = [
    "MAX_ITEMS",
    "MAX_RECORDS",
    "PROTOCOL_VERSION",
    "SET_ASIDE_SINCE",
    "Abort",
    "Alert",
    "AlertReply",
    "Applied",
    "CardData",
    "CardDeleted",
    "CardEntry",
    "CardRecord",
    "Committed",
    "Delete",
    "Done",
    "InvalidMessage",
    "Message",
    "Mode",
    "Op",
    "OpResult",
    "PdaOps",
    "Policy",
    "Prepared",
    "Put",
    "Removed",
    "RequestedMode",
    "Skipped",
    "Stored",
    "check",
    "wire_text",
]

#: (major, minor). A peer with another major is refused; minors stay wire-compatible.
PROTOCOL_VERSION: tuple[int, int] = (1, 1)
#: From this version on a phone reads Done's `set_aside`; an older one gets 5 counts.
SET_ASIDE_SINCE: tuple[int, int] = (1, 1)
#: A linear fixed EF has at most 255 records (READ RECORD's P1 is one byte).
MAX_RECORDS = 255
#: Bound on every list in a message, so a hostile peer cannot make us allocate freely.
MAX_ITEMS = 1024
MAX_NAME = 256  # characters of a full PDA name
MAX_NUMBER = 80  # EXT1 chains allow long numbers; nothing real is longer
MAX_TEXT = 512  # Abort messages, skip reasons

_NUMBER = re.compile(r"\+?[0-9*#,?!]*")  # the card's alphabet (cardio.codecs.bcd)
_CODE = re.compile(r"[a-z][a-z_]{0,31}")
_ICCID = re.compile(r"[0-9]{1,22}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def wire_text(text: str) -> str:
    """`text` as an Abort message or a skip reason may carry it: control characters made
    spaces, at most `MAX_TEXT` characters (a reason with control characters is invalid)."""
    return _CONTROL.sub(" ", text)[:MAX_TEXT]


class InvalidMessage(ValueError):  # noqa: N818 - translated into a Local/RemoteProtocolError
    """A message value out of bounds; the codec turns it into the side-specific ProtocolError."""


class RequestedMode(StrEnum):
    """What the phone asks for."""

    AUTO = "auto"
    SLOW = "slow"
    REFRESH_FROM_CARD = "refresh-from-card"
    REFRESH_FROM_PDA = "refresh-from-pda"


class Policy(StrEnum):
    """What to do when both sides changed the same pair differently."""

    DUPLICATE = "duplicate"  # keep both: nothing lost
    CARD_WINS = "card-wins"
    PDA_WINS = "pda-wins"


class Mode(StrEnum):
    """What the PDA decided."""

    FAST = "fast"
    SLOW = "slow"
    REFRESH_FROM_CARD = "refresh-from-card"
    REFRESH_FROM_PDA = "refresh-from-pda"


@dataclass(frozen=True)
class Alert:
    """Phone → PDA, first message: who the card is, its anchors and geometry."""

    iccid: str
    db: int
    last: bytes | None  # the card's last sync object for this PDA, None when it has none
    proposed: bytes
    requested: RequestedMode
    records: int
    alpha_len: int
    change_detection: bool  # False on a plain SIM where the phone emulates the three commands
    free_records: int
    version: tuple[int, int] = PROTOCOL_VERSION
    # The conflict policy configured on the phone for this PDA; None: the PDA's own default.
    policy: Policy | None = None


@dataclass(frozen=True)
class AlertReply:
    """PDA → phone: the mode it decided."""

    mode: Mode


@dataclass(frozen=True)
class CardRecord:
    """A non-empty card record (number '' when the record holds a name only)."""

    record: int
    name: str
    number: str


@dataclass(frozen=True)
class CardDeleted:
    """A record the card reports deleted (`03`)."""

    record: int


CardEntry = CardRecord | CardDeleted


@dataclass(frozen=True)
class CardData:
    """Phone → PDA: changed records (fast) or every non-empty record (`complete`), chunked."""

    entries: tuple[CardEntry, ...]
    complete: bool
    more: bool = False


@dataclass(frozen=True)
class Put:
    """Write a record: `record` None means a new one in a free slot the phone picks."""

    ref: int
    record: int | None
    name: str  # full name: the phone shortens it to the alpha field
    number: str


@dataclass(frozen=True)
class Delete:
    """Empty a record."""

    ref: int
    record: int


Op = Put | Delete


@dataclass(frozen=True)
class PdaOps:
    """PDA → phone: the operations for the card."""

    ops: tuple[Op, ...]


@dataclass(frozen=True)
class Stored:
    """A Put done: the record used and what the card holds now (name maybe shortened)."""

    ref: int
    record: int
    name: str
    number: str


@dataclass(frozen=True)
class Removed:
    """A Delete done."""

    ref: int


@dataclass(frozen=True)
class Skipped:
    """An op not done (card full, not encodable); the card is unchanged for it."""

    ref: int
    reason: str


OpResult = Stored | Removed | Skipped


@dataclass(frozen=True)
class Applied:
    """Phone → PDA: one result per op ref."""

    results: tuple[OpResult, ...]


@dataclass(frozen=True)
class Prepared:
    """PDA → phone: the proposed anchor is durably pending, with the new map."""


@dataclass(frozen=True)
class Committed:
    """Phone → PDA: the card accepted STORESYNC(proposed)."""


@dataclass(frozen=True)
class Done:
    """PDA → phone: pending promoted to last; the PDA's side of the counts."""

    added: int  # to the PDA
    modified: int
    deleted: int
    conflicts: int
    skipped: int
    # PDA files its store could not use (protocol 1.1); None: not sent (a 1.0 peer).
    set_aside: int | None = None


@dataclass(frozen=True)
class Abort:
    """Either way, any time: the session ends, nothing is committed."""

    code: str
    message: str

    def __post_init__(self) -> None:
        # An ErrorCode (a str subclass) travels as its plain string, so the strict
        # type check in `check` and the CBOR encoding see exactly a str.
        if isinstance(self.code, str) and type(self.code) is not str:
            object.__setattr__(self, "code", str(self.code))


Message = Alert | AlertReply | CardData | PdaOps | Applied | Prepared | Committed | Done | Abort


def _int(value: object, what: str, lo: int, hi: int) -> None:
    if type(value) is not int or not lo <= value <= hi:
        raise InvalidMessage(f"{what} must be an integer in {lo}..{hi}, got {value!r}")


def _bool(value: object, what: str) -> None:
    if type(value) is not bool:
        raise InvalidMessage(f"{what} must be a boolean, got {value!r}")


def _text(value: object, what: str, limit: int, *, empty: bool = True) -> None:
    if type(value) is not str:
        raise InvalidMessage(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit or (not empty and not value):
        raise InvalidMessage(f"{what} must be {0 if empty else 1}..{limit} characters")
    if _CONTROL.search(value):
        raise InvalidMessage(f"{what} holds control characters")


def _number(value: object, what: str) -> None:
    _text(value, what, MAX_NUMBER)
    assert isinstance(value, str)
    if not _NUMBER.fullmatch(value):
        raise InvalidMessage(f"{what} {value!r} holds characters other than + 0-9 * # , ? !")


def _anchor(value: object, what: str) -> None:
    if type(value) is not bytes or len(value) != 8:
        raise InvalidMessage(f"{what} must be 8 bytes, got {value!r}")


def _items(value: object, what: str) -> None:
    if type(value) is not tuple or len(value) > MAX_ITEMS:
        raise InvalidMessage(f"{what} must be a list of at most {MAX_ITEMS} items")


def _record(value: object, what: str) -> None:
    _int(value, what, 1, MAX_RECORDS)


def _check_alert(m: Alert) -> None:
    v = m.version
    if type(v) is not tuple or len(v) != 2:
        raise InvalidMessage(f"version must be [major, minor], got {v!r}")
    _int(v[0], "version major", 0, 0xFFFF)
    _int(v[1], "version minor", 0, 0xFFFF)
    if type(m.iccid) is not str or not _ICCID.fullmatch(m.iccid):
        raise InvalidMessage(f"iccid must be 1-22 decimal digits, got {m.iccid!r}")
    _int(m.db, "db", 0, 0xFFFF)
    if m.last is not None:
        _anchor(m.last, "last")
    _anchor(m.proposed, "proposed")
    if m.last is not None and m.last == m.proposed:
        raise InvalidMessage("proposed anchor equals the last one")
    if type(m.requested) is not RequestedMode:
        raise InvalidMessage(f"requested mode must be a RequestedMode, got {m.requested!r}")
    _int(m.records, "records", 1, MAX_RECORDS)
    _int(m.alpha_len, "alpha_len", 0, 241)  # record length ≤ 255 = X + 14
    _bool(m.change_detection, "change_detection")
    _int(m.free_records, "free_records", 0, m.records)
    # A plain str from a config file is fine as long as it names a policy.
    if m.policy is not None and (
        not isinstance(m.policy, str) or m.policy not in {p.value for p in Policy}
    ):
        raise InvalidMessage(f"policy must be one of {[p.value for p in Policy]}, got {m.policy!r}")


def _check_card_data(m: CardData) -> None:
    _items(m.entries, "entries")
    _bool(m.complete, "complete")
    _bool(m.more, "more")
    seen: set[int] = set()
    for e in m.entries:
        if type(e) is CardRecord:
            _record(e.record, "record")
            _text(e.name, "name", MAX_NAME)
            _number(e.number, "number")
            if not e.name and not e.number:
                raise InvalidMessage(f"record {e.record} is empty: send it as deleted")
        elif type(e) is CardDeleted:
            _record(e.record, "record")
            if m.complete:
                raise InvalidMessage("a complete listing holds no deleted records")
        else:
            raise InvalidMessage(f"unknown card entry {e!r}")
        if e.record in seen:
            raise InvalidMessage(f"record {e.record} listed twice")
        seen.add(e.record)


def _check_ops(m: PdaOps) -> None:
    _items(m.ops, "ops")
    refs: set[int] = set()
    for op in m.ops:
        if type(op) is Put:
            if op.record is not None:
                _record(op.record, "record")
            _text(op.name, "name", MAX_NAME)
            _number(op.number, "number")
        elif type(op) is Delete:
            _record(op.record, "record")
        else:
            raise InvalidMessage(f"unknown op {op!r}")
        _int(op.ref, "ref", 0, 0xFFFFFFFF)
        if op.ref in refs:
            raise InvalidMessage(f"ref {op.ref} used twice")
        refs.add(op.ref)


def _check_applied(m: Applied) -> None:
    _items(m.results, "results")
    refs: set[int] = set()
    for r in m.results:
        if type(r) is Stored:
            _record(r.record, "record")
            _text(r.name, "name", MAX_NAME)
            _number(r.number, "number")
        elif type(r) is Skipped:
            _text(r.reason, "reason", MAX_TEXT)
        elif type(r) is not Removed:
            raise InvalidMessage(f"unknown result {r!r}")
        _int(r.ref, "ref", 0, 0xFFFFFFFF)
        if r.ref in refs:
            raise InvalidMessage(f"ref {r.ref} answered twice")
        refs.add(r.ref)


def check(msg: object) -> None:
    """Raise InvalidMessage unless `msg` is a well-formed message of this protocol."""
    if type(msg) is Alert:
        _check_alert(msg)
    elif type(msg) is AlertReply:
        if type(msg.mode) is not Mode:
            raise InvalidMessage(f"mode must be a Mode, got {msg.mode!r}")
    elif type(msg) is CardData:
        _check_card_data(msg)
    elif type(msg) is PdaOps:
        _check_ops(msg)
    elif type(msg) is Applied:
        _check_applied(msg)
    elif type(msg) is Done:
        for f in fields(msg):
            if f.name != "set_aside" or msg.set_aside is not None:
                _int(getattr(msg, f.name), f.name, 0, 1_000_000)
    elif type(msg) is Abort:
        if type(msg.code) is not str or not _CODE.fullmatch(msg.code):
            raise InvalidMessage(f"abort code must be snake_case, got {msg.code!r}")
        # Diagnostic text only: any characters, so an abort path never fails on its message.
        if type(msg.message) is not str or len(msg.message) > MAX_TEXT:
            raise InvalidMessage(f"abort message must be a string of at most {MAX_TEXT} characters")
    elif type(msg) not in (Prepared, Committed):
        raise InvalidMessage(f"not a message: {type(msg).__name__}")
