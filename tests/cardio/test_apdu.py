from __future__ import annotations

import pytest

from cardio import errors
from cardio.apdu import Command, Op, Response, check, status_error


def test_command_encodings_per_case() -> None:
    assert Command(0xA0, 0xA4, 0, 0, b"\x3f\x00").to_bytes().hex() == "a0a40000023f00"
    assert Command(0x00, 0xB2, 1, 4, le=32).to_bytes().hex() == "00b2010420"
    assert Command(0x00, 0xB0, 0, 0, le=256).to_bytes().hex() == "00b0000000"
    # Case 1 carries P3 = 00 as T=0 needs a 5-byte header.
    assert Command(0x00, 0x70, 0x80, 0x01).to_bytes().hex() == "0070800100"
    newsync = Command(0x81, 0x3A, 0, 0, b"\xc0\x01\x01", le=256)
    assert newsync.to_bytes().hex() == "813a000003c0010100"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"cla": 256, "ins": 0}, "cla"),
        ({"cla": 0, "ins": -1}, "ins"),
        ({"cla": 0, "ins": 0, "data": bytes(256)}, "256 bytes"),
        ({"cla": 0, "ins": 0, "le": 0}, "Le"),
        ({"cla": 0, "ins": 0, "le": 257}, "Le"),
    ],
)
def test_bad_commands_are_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=fragment):
        Command(**kwargs)  # type: ignore[arg-type]


def test_channel_from_cla() -> None:
    assert Command(0xA0, 0xB2).channel == 0
    assert Command(0x02, 0xB2).channel == 2
    assert Command(0x83, 0x3C).channel == 3


def test_response_split_and_short_answer() -> None:
    r = Response.from_bytes(bytes.fromhex("0102 9000"))
    assert (r.data, r.sw, r.sw1, r.sw2, r.ok) == (b"\x01\x02", 0x9000, 0x90, 0x00, True)
    assert Response(b"", 0x9100).ok
    with pytest.raises(errors.LinkProtocolError, match="no status word"):
        Response.from_bytes(b"\x90")


MAPPED = [
    # (sw, op, error class)
    (0x9404, Op.SELECT, errors.FileNotFound),
    (0x6A82, Op.SELECT, errors.FileNotFound),
    (0x6A82, Op.NEWSYNC, errors.FileNotFound),
    (0x9402, Op.READ, errors.RecordNotFound),
    (0x6A83, Op.UPDATE, errors.RecordNotFound),
    (0x9408, Op.READ, errors.WrongFileType),
    (0x6981, Op.READ, errors.WrongFileType),
    (0x6986, Op.READ, errors.WrongFileType),
    (0x9804, Op.READ, errors.SecurityNotSatisfied),
    (0x6982, Op.READ, errors.SecurityNotSatisfied),
    (0x6982, Op.NEWSYNC, errors.SecurityNotSatisfied),
    (0x9804, Op.VERIFY, errors.PinRejected),
    (0x63C2, Op.VERIFY, errors.PinRejected),
    (0x63C9, Op.UNBLOCK, errors.PinRejected),
    (0x63C0, Op.VERIFY, errors.CardBlocked),
    (0x9840, Op.VERIFY, errors.CardBlocked),
    (0x6983, Op.VERIFY, errors.CardBlocked),
    (0x9808, Op.GENERIC, errors.ConditionsNotSatisfied),
    (0x6985, Op.GENERIC, errors.ConditionsNotSatisfied),
    (0x6985, Op.GETCHANGES, errors.NoSession),
    (0x6985, Op.STORESYNC, errors.NoSession),
    (0x6A80, Op.STORESYNC, errors.WrongSyncObject),
    (0x6A80, Op.NEWSYNC, errors.WrongData),
    (0x6D00, Op.NEWSYNC, errors.SyncUnsupported),
    (0x6E00, Op.NEWSYNC, errors.SyncUnsupported),
    (0x6D00, Op.READ, errors.NotSupported),
    (0x6E00, Op.SELECT, errors.NotSupported),
    (0x6700, Op.UPDATE, errors.WrongLength),
    (0x6C10, Op.READ, errors.WrongLength),
    (0x6B00, Op.GETCHANGES, errors.WrongParameters),
    (0x6A86, Op.READ, errors.WrongParameters),
    (0x6581, Op.UPDATE, errors.CardMemoryFailure),
    (0x9240, Op.UPDATE, errors.CardMemoryFailure),
    (0x6F00, Op.READ, errors.CardStatusError),
]


@pytest.mark.parametrize(("sw", "op", "cls"), MAPPED)
def test_status_word_mapping(sw: int, op: Op, cls: type[errors.CardStatusError]) -> None:
    error = status_error(sw, op)
    assert type(error) is cls
    assert error.sw == sw
    assert f"{sw:04X}" in str(error)
    with pytest.raises(cls):
        check(Response(b"", sw), op)


def test_tries_left_from_63cx() -> None:
    error = status_error(0x63C2, Op.VERIFY)
    assert isinstance(error, errors.PinRejected)
    assert error.tries_left == 2
    assert "2 tries left" in str(error)
    gsm = status_error(0x9804, Op.VERIFY)
    assert isinstance(gsm, errors.PinRejected)
    assert gsm.tries_left is None


def test_sync_unsupported_is_a_card_status_error_under_the_root() -> None:
    assert issubclass(errors.SyncUnsupported, errors.NotSupported)
    assert issubclass(errors.NoSession, errors.CardStatusError)
    for cls in (errors.CardRemoved, errors.NoReader, errors.CardStatusError, errors.InvalidRequest):
        assert issubclass(cls, errors.CardioError)


def test_success_passes_through() -> None:
    response = Response(b"\x01", 0x9000)
    assert check(response, Op.READ) is response
