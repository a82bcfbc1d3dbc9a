"""CBOR encoding: round trips for every message, strict decoding of bad frames."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given

from syncproto import (
    Abort,
    Alert,
    CardData,
    CardDeleted,
    CardRecord,
    Done,
    LocalProtocolError,
    Message,
    Policy,
    RemoteProtocolError,
    RequestedMode,
    VersionError,
    decode,
    encode,
)

from .strategies import messages

A8 = bytes(range(8))
B8 = bytes(range(8, 16))


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = {
        "iccid": "8949000000000000001",
        "db": 0x6F3A,
        "last": A8,
        "proposed": B8,
        "requested": RequestedMode.AUTO,
        "records": 250,
        "alpha_len": 18,
        "change_detection": True,
        "free_records": 10,
    }
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


@given(messages)
def test_every_message_round_trips(msg: Message) -> None:
    assert decode(encode(msg)) == msg


def test_encoding_is_deterministic_and_compact() -> None:
    frame = encode(_alert())
    assert frame == encode(_alert())
    assert cbor2.loads(frame)[0] == 0
    assert len(frame) < 64


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (b"", "malformed CBOR"),
        (b"\xff\xff", "malformed CBOR"),
        (cbor2.dumps({"type": 0}), "must be an array"),
        (cbor2.dumps([]), "unknown message type"),
        (cbor2.dumps([99]), "unknown message type"),
        (cbor2.dumps([5, 1]), "must have 0 fields"),
        (cbor2.dumps([1, "turbo"]), "unknown mode"),
        (cbor2.dumps([1, 3]), "mode must be a string"),
        (cbor2.dumps([6]) + b"\x00", "bytes after the CBOR item"),
        (cbor2.dumps([2, [[0, "a", "1"]], False, False]), "record must be an integer in 1..255"),
        (cbor2.dumps([2, [[1, "a", "12x"]], False, False]), "holds characters other than"),
        (cbor2.dumps([2, [[1, "a", "1"], [1]], False, False]), "listed twice"),
        (cbor2.dumps([2, [[1]], True, False]), "complete listing holds no deleted"),
        (cbor2.dumps([2, [[1, 2, "1"]], False, False]), "name must be a string"),
        (cbor2.dumps([2, [[1, "a", "1"]] * 1025, False, False]), "more than 1024"),
        (cbor2.dumps([3, [[0, 1, None, "a", "1"], [1, 1, 2]]]), "ref 1 used twice"),
        (cbor2.dumps([4, [[7, 1]]]), "result must be"),
        (cbor2.dumps([7, 1, 2, 3, 4, True]), "skipped must be an integer"),
        (cbor2.dumps([8, "Bad Code", "x"]), "abort code"),
        (
            cbor2.dumps([0, [1, 0], "89", 0x6F3A, b"short", B8, "auto", 250, 18, True, 1]),
            "last must be 8 bytes",
        ),
        (
            cbor2.dumps([0, [1, 0], "89", 0x6F3A, None, B8, "auto", 250, 18, True, 251]),
            "free_records must be an integer in 0..250",
        ),
        (cbor2.dumps([0, [1, 0], "89A", 0x6F3A, None, B8, "auto", 250, 18, True, 1]), "iccid"),
        (cbor2.dumps([0, [1, 0], "89", 0x6F3A, None, B8, "auto", 250, 18]), "10 or 11 fields"),
        (
            cbor2.dumps([0, [1, 0], "89", 0x6F3A, None, B8, "auto", 250, 18, True, 1, "lww"]),
            "unknown policy 'lww'",
        ),
    ],
)
def test_bad_frames_are_the_peers_fault(frame: bytes, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError, match=fragment):
        decode(frame)


def test_unknown_major_version_is_a_version_error_whatever_follows() -> None:
    frame = cbor2.dumps([0, [2, 0], "a layout we do not know"])
    with pytest.raises(VersionError, match=r"peer speaks protocol 2\.0, we speak 1\.1"):
        decode(frame)


def test_newer_minor_version_is_accepted() -> None:
    got = decode(encode(_alert(version=(1, 7))))
    assert isinstance(got, Alert)
    assert got.version == (1, 7)


@pytest.mark.parametrize(
    "msg",
    [
        _alert(last=b"1234567"),
        _alert(last=A8, proposed=A8),
        _alert(alpha_len=242),
        CardData((CardRecord(1, "", ""),), complete=False),
        CardData((CardRecord(1, "x", "1"), CardDeleted(1)), complete=False),
        Abort("internal", "x" * 513),
        Abort("Internal", "bad code"),
    ],
)
def test_sending_an_invalid_message_is_our_fault(msg: Message) -> None:
    with pytest.raises(LocalProtocolError, match="refusing to send"):
        encode(msg)


def test_abort_text_is_free_form_so_an_abort_path_cannot_fail_on_it() -> None:
    msg = Abort("internal", "Traceback\n\tline 1\x00")
    assert decode(encode(msg)) == msg


def test_alert_policy_is_optional_on_the_wire_and_may_be_given_as_config_text() -> None:
    ten = cbor2.dumps([0, [1, 0], "89", 0x6F3A, None, B8, "auto", 250, 18, True, 1])
    got = decode(ten)
    assert isinstance(got, Alert)
    assert got.policy is None
    from_config = _alert(policy="card-wins")
    got = decode(encode(from_config))
    assert isinstance(got, Alert)
    assert got.policy is Policy.CARD_WINS
    with pytest.raises(LocalProtocolError, match="policy must be one of"):
        encode(_alert(policy="newest-wins"))


def test_done_carries_set_aside_from_11_and_reads_a_10_done() -> None:
    """Protocol 1.1 adds Done's 6th field; a 1.0 PDA's five counts still decode."""
    assert decode(encode(Done(1, 2, 3, 4, 5, 6))) == Done(1, 2, 3, 4, 5, 6)
    assert cbor2.loads(encode(Done(1, 2, 3, 4, 5))) == [7, 1, 2, 3, 4, 5]
    assert decode(cbor2.dumps([7, 1, 2, 3, 4, 5])).set_aside is None  # type: ignore[union-attr]
    with pytest.raises(RemoteProtocolError, match="set_aside"):
        decode(cbor2.dumps([7, 1, 2, 3, 4, 5, -1]))


def test_wire_text_makes_any_reason_sendable_as_a_skip_or_an_abort() -> None:
    from syncproto import Applied, Skipped
    from syncproto.messages import MAX_TEXT, wire_text

    reason = "card said\x00no\r\n\x7f" + "x" * 1000
    text = wire_text(reason)
    assert text.startswith("card said no   ")
    assert len(text) == MAX_TEXT
    with pytest.raises(LocalProtocolError):  # the raw reason is not a valid skip reason
        encode(Applied(results=(Skipped(1, reason[:100]),)))
    applied = Applied(results=(Skipped(1, text),))
    assert decode(encode(applied)) == applied
    abort = Abort("internal", text)
    assert decode(encode(abort)) == abort
