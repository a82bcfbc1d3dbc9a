from __future__ import annotations

import pytest

from cardio import errors
from cardio.files import FileInfo, FileKind, FileStructure, parse_fcp, parse_gsm_select, parse_tlvs

# card.md §2 layouts, byte offsets from 1.
GSM_MF = bytes.fromhex("0000 1000 3f00 01 0000000000 09 00 02 02 04 00 83 8a 83 8a")
GSM_DF_NO_CHV = bytes.fromhex("0000 1000 7f10 02 0000000000 09 00 00 03 04 00 03 0a 03 0a")
GSM_ADN = bytes.fromhex("0000 1fa4 6f3a 04 00 111111 01 02 01 20")
GSM_ICCID = bytes.fromhex("0000 000a 2fe2 04 00 0fff44 01 02 00 00")


def test_gsm_mf_with_chv_status() -> None:
    assert parse_gsm_select(GSM_MF) == FileInfo(0x3F00, FileKind.MF, chv1_tries=3)


def test_gsm_df_uninitialised_chv_has_no_count() -> None:
    assert parse_gsm_select(GSM_DF_NO_CHV) == FileInfo(0x7F10, FileKind.DF)


def test_gsm_linear_fixed_ef() -> None:
    info = parse_gsm_select(GSM_ADN)
    assert info == FileInfo(0x6F3A, FileKind.EF, FileStructure.LINEAR_FIXED, 8100, 32, 253)
    assert info.is_record_ef


def test_gsm_transparent_ef() -> None:
    info = parse_gsm_select(GSM_ICCID)
    assert info == FileInfo(0x2FE2, FileKind.EF, FileStructure.TRANSPARENT, 10)
    assert not info.is_record_ef


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (GSM_ADN[:14], "at least 15"),
        (GSM_MF[:20], "at least 22"),
        (GSM_ADN[:6] + b"\x07" + GSM_ADN[7:], "file type 07"),
        (GSM_ADN[:13] + b"\x05" + GSM_ADN[14:], "structure 05"),
        (GSM_ADN[:14] + b"\x00", "record length 0"),
    ],
)
def test_gsm_malformed(data: bytes, fragment: str) -> None:
    with pytest.raises(errors.MalformedResponse, match=fragment):
        parse_gsm_select(data)


def test_fcp_df_and_mf() -> None:
    assert parse_fcp(bytes.fromhex("6208 8202 7821 8302 7f10")) == FileInfo(0x7F10, FileKind.DF)
    assert parse_fcp(bytes.fromhex("6208 8202 7821 8302 3f00")) == FileInfo(0x3F00, FileKind.MF)


def test_fcp_transparent_and_linear_fixed() -> None:
    assert parse_fcp(bytes.fromhex("620c 8202 4121 8302 2fe2 8002 000a")) == FileInfo(
        0x2FE2, FileKind.EF, FileStructure.TRANSPARENT, 10
    )
    assert parse_fcp(bytes.fromhex("620f 8205 422100 20 fa 8302 6f3a 8002 1f40")) == FileInfo(
        0x6F3A, FileKind.EF, FileStructure.LINEAR_FIXED, 8000, 32, 250
    )


@pytest.mark.parametrize(
    ("hexdata", "fragment"),
    [
        ("6f00", "tag 62"),
        ("6204 8302 7f10", "descriptor"),
        ("6204 8202 7821", "file id"),
        ("6209 8202 7821 8302 7f10", "past the end"),
        ("6208 8202 4721 8302 6f3a", "no EF structure"),
        ("6208 8202 4221 8302 6f3a", "record length and count"),
        ("62", "tag 62"),
        ("6201 82", "truncated"),
    ],
)
def test_fcp_malformed(hexdata: str, fragment: str) -> None:
    with pytest.raises(errors.MalformedResponse, match=fragment):
        parse_fcp(bytes.fromhex(hexdata))


def test_tlv_long_length_form() -> None:
    assert parse_tlvs(bytes.fromhex("c1 81 02 abcd c0 00")) == {0xC1: b"\xab\xcd", 0xC0: b""}
    with pytest.raises(errors.MalformedResponse):
        parse_tlvs(bytes.fromhex("c1 82 0002 abcd"))
