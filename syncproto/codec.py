"""CBOR encoding of the messages: one array per message, its first item a type tag.

The schema (CDDL) is in docs/protocol.md. Decoding is strict: exact arity,
exact CBOR types, no tags; anything else is the peer's fault.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from .errors import LocalProtocolError, RemoteProtocolError, VersionError
from .messages import (
    PROTOCOL_VERSION,
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
    InvalidMessage,
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
    check,
)

__all__ = ["MAX_FRAME", "decode", "encode"]

#: Largest frame we decode: 255 records × (256-char name + number) with room to spare.
MAX_FRAME = 1 << 20

_TAGS: dict[type[Any], int] = {
    Alert: 0,
    AlertReply: 1,
    CardData: 2,
    PdaOps: 3,
    Applied: 4,
    Prepared: 5,
    Committed: 6,
    Done: 7,
    Abort: 8,
}


def _entry_out(e: CardEntry) -> list[Any]:
    return [e.record, e.name, e.number] if isinstance(e, CardRecord) else [e.record]


def _op_out(op: Op) -> list[Any]:
    if isinstance(op, Put):
        return [0, op.ref, op.record, op.name, op.number]
    return [1, op.ref, op.record]


def _result_out(r: OpResult) -> list[Any]:
    if isinstance(r, Stored):
        return [0, r.ref, r.record, r.name, r.number]
    if isinstance(r, Removed):
        return [1, r.ref]
    return [2, r.ref, r.reason]


def _body(msg: Message) -> list[Any]:
    match msg:
        case Alert():
            return [
                list(msg.version),
                msg.iccid,
                msg.db,
                msg.last,
                msg.proposed,
                str(msg.requested),
                msg.records,
                msg.alpha_len,
                msg.change_detection,
                msg.free_records,
                None if msg.policy is None else str(msg.policy),
            ]
        case AlertReply():
            return [str(msg.mode)]
        case CardData():
            return [[_entry_out(e) for e in msg.entries], msg.complete, msg.more]
        case PdaOps():
            return [[_op_out(op) for op in msg.ops]]
        case Applied():
            return [[_result_out(r) for r in msg.results]]
        case Done():
            counts = [msg.added, msg.modified, msg.deleted, msg.conflicts, msg.skipped]
            return counts if msg.set_aside is None else [*counts, msg.set_aside]
        case Abort():
            return [msg.code, msg.message]
        case _:
            return []


def encode(msg: Message) -> bytes:
    """The CBOR frame for `msg`; LocalProtocolError if the message is not valid."""
    try:
        check(msg)
    except InvalidMessage as exc:
        raise LocalProtocolError(f"refusing to send {type(msg).__name__}: {exc}") from exc
    return cbor2.dumps([_TAGS[type(msg)], *_body(msg)], canonical=True)


class _Shape(Exception):  # noqa: N818 - internal, always translated
    pass


def _arr(value: object, n: int | None, what: str) -> list[Any]:
    if type(value) is not list or (n is not None and len(value) != n):
        raise _Shape(f"{what} must be an array" + (f" of {n} items" if n is not None else ""))
    return value


def _tuple_of(value: object, what: str) -> list[Any]:
    items = _arr(value, None, what)
    if len(items) > 1024:  # messages.MAX_ITEMS, checked before building anything
        raise _Shape(f"{what} holds more than 1024 items")
    return items


def _entry_in(v: object) -> CardEntry:
    a = _arr(v, None, "card entry")
    if len(a) == 3:
        return CardRecord(a[0], a[1], a[2])
    if len(a) == 1:
        return CardDeleted(a[0])
    raise _Shape("card entry must be [record, name, number] or [record]")


def _op_in(v: object) -> Op:
    a = _arr(v, None, "op")
    if len(a) == 5 and a[0] == 0:
        return Put(a[1], a[2], a[3], a[4])
    if len(a) == 3 and a[0] == 1:
        return Delete(a[1], a[2])
    raise _Shape("op must be [0, ref, record/null, name, number] or [1, ref, record]")


def _result_in(v: object) -> OpResult:
    a = _arr(v, None, "result")
    if len(a) == 5 and a[0] == 0:
        return Stored(a[1], a[2], a[3], a[4])
    if len(a) == 2 and a[0] == 1:
        return Removed(a[1])
    if len(a) == 3 and a[0] == 2:
        return Skipped(a[1], a[2])
    raise _Shape("result must be [0, ref, record, name, number], [1, ref] or [2, ref, reason]")


def _enum(cls: type[Mode] | type[RequestedMode] | type[Policy], value: object) -> Any:
    what = "policy" if cls is Policy else "mode"
    if type(value) is not str:
        raise _Shape(f"{what} must be a string, got {value!r}")
    try:
        return cls(value)
    except ValueError as exc:
        raise _Shape(f"unknown {what} {value!r}") from exc


def _alert_in(b: list[Any]) -> Alert:
    # The version comes first and is checked before the rest: a peer of another
    # major version may lay the message out differently.
    if not b:
        raise _Shape("Alert without a version")
    ver = _arr(b[0], 2, "version")
    if not all(type(x) is int for x in ver):
        raise _Shape("version must be [major, minor] integers")
    if ver[0] != PROTOCOL_VERSION[0]:
        raise VersionError(
            f"peer speaks protocol {ver[0]}.{ver[1]}, we speak "
            f"{PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}"
        )
    if len(b) not in (10, 11):  # the policy (11th) may be left out
        raise _Shape("Alert must have 10 or 11 fields")
    policy = None if len(b) == 10 or b[10] is None else _enum(Policy, b[10])
    return Alert(
        b[1],
        b[2],
        b[3],
        b[4],
        _enum(RequestedMode, b[5]),
        b[6],
        b[7],
        b[8],
        b[9],
        version=(ver[0], ver[1]),
        policy=policy,
    )


def _message_in(tag: object, b: list[Any]) -> Message:
    arity = {1: 1, 2: 3, 3: 1, 4: 1, 5: 0, 6: 0, 7: 5, 8: 2}
    if tag == 0:
        return _alert_in(b)
    if tag == 7 and len(b) == 6:  # Done with set_aside (1.1); 5 counts from a 1.0 PDA
        return Done(*b)
    if type(tag) is not int or tag not in arity:
        raise _Shape(f"unknown message type {tag!r}")
    if len(b) != arity[tag]:
        raise _Shape(f"message type {tag} must have {arity[tag]} fields, got {len(b)}")
    match tag:
        case 1:
            return AlertReply(_enum(Mode, b[0]))
        case 2:
            return CardData(tuple(_entry_in(e) for e in _tuple_of(b[0], "entries")), b[1], b[2])
        case 3:
            return PdaOps(tuple(_op_in(o) for o in _tuple_of(b[0], "ops")))
        case 4:
            return Applied(tuple(_result_in(r) for r in _tuple_of(b[0], "results")))
        case 5:
            return Prepared()
        case 6:
            return Committed()
        case 7:
            return Done(*b)
        case _:
            return Abort(b[0], b[1])


def decode(frame: bytes) -> Message:
    """The message in one frame; RemoteProtocolError (or VersionError) when it is not valid."""
    if len(frame) > MAX_FRAME:
        raise RemoteProtocolError(f"frame of {len(frame)} bytes exceeds {MAX_FRAME}")
    stream = io.BytesIO(frame)
    try:
        raw = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise RemoteProtocolError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(frame):  # one frame is one data item: trailing bytes are an error
        raise RemoteProtocolError(f"{len(frame) - stream.tell()} bytes after the CBOR item")
    try:
        top = _arr(raw, None, "message") or [None]
        msg = _message_in(top[0], top[1:])
        check(msg)
    except (_Shape, InvalidMessage) as exc:
        raise RemoteProtocolError(f"bad message: {exc}") from exc
    return msg
