"""Bad input gets a precise CodecError; bad card bytes get MalformedRecord."""

from __future__ import annotations

import pytest

from cardio.codecs import (
    AdnRecord,
    CodecError,
    Ext1Record,
    InvalidField,
    InvalidNumber,
    MalformedRecord,
    NameTooLong,
    NumberTooLong,
    UnencodableName,
    decode_alpha,
    empty_adn,
    encode_alpha,
    fit_name,
    read_ext1_chain,
)

FF = b"\xff"


def test_every_error_is_a_codec_error_and_a_value_error() -> None:
    for exc in (NameTooLong, UnencodableName, NumberTooLong, InvalidNumber, MalformedRecord):
        assert issubclass(exc, CodecError)
    assert issubclass(CodecError, ValueError)


def test_name_too_long_reports_the_shortest_coding_length() -> None:
    with pytest.raises(NameTooLong) as info:
        AdnRecord("A much longer name than fits", "1").encode(18)
    assert (info.value.alpha_len, info.value.needed) == (18, 28)
    assert info.value.name == "A much longer name than fits"
    # Escape characters count twice: 9 of them need 18 bytes and fit exactly ...
    assert len(encode_alpha("€" * 9, 18)) == 18
    # ... with more, the 81 coding (base 2080, one byte each after 3) is shorter.
    assert encode_alpha("€" * 10, 18)[:4] == bytes.fromhex("810a41ac")
    with pytest.raises(NameTooLong) as info:
        encode_alpha("€" * 16, 18)
    assert info.value.needed == 19


def test_unencodable_name_names_the_character() -> None:
    with pytest.raises(UnencodableName) as info:
        AdnRecord("Bo😀b", "1")
    assert (info.value.char, info.value.position) == ("😀", 2)
    assert "U+1F600" in str(info.value)
    with pytest.raises(UnencodableName):
        encode_alpha("\ud800", 18)  # a lone surrogate is no character
    with pytest.raises(UnencodableName):
        fit_name("ab😀", 18)


def test_number_too_long_without_an_ext1_allocator() -> None:
    record = AdnRecord("A", "1" * 21)
    with pytest.raises(NumberTooLong) as info:
        record.encode(18)
    assert (info.value.digits, info.value.limit) == (21, 20)
    assert len(AdnRecord("A", "+" + "1" * 20).encode(18)) == 32  # '+' is no digit


@pytest.mark.parametrize(
    ("number", "char", "position"),
    [("12a4", "a", 2), ("+49 30", " ", 3), ("12+3", "+", 2), ("p", "p", 0), ("0-1", "-", 1)],
)
def test_invalid_number_names_the_character(number: str, char: str, position: int) -> None:
    with pytest.raises(InvalidNumber) as info:
        AdnRecord("A", number)
    assert (info.value.char, info.value.position) == (char, position)
    assert repr(char) in str(info.value)


def test_plus_and_ton_go_together() -> None:
    with pytest.raises(InvalidNumber, match="TON international"):
        AdnRecord("A", "+49", ton_npi=0x81)
    with pytest.raises(InvalidField, match="with '\\+'"):
        AdnRecord("A", "49", ton_npi=0x91)
    with pytest.raises(InvalidNumber, match="digits after"):
        AdnRecord("A", "+")
    assert AdnRecord("A", "", ton_npi=0x91).number == ""


@pytest.mark.parametrize(("field", "value"), [("ton_npi", 256), ("ccp", -2), ("ext1", 300)])
def test_byte_fields_are_range_checked(field: str, value: int) -> None:
    with pytest.raises(InvalidField, match=field):
        AdnRecord("A", "1", **{field: value})


def test_no_name_no_number_is_the_empty_record_not_a_value() -> None:
    with pytest.raises(InvalidField, match="empty record"):
        AdnRecord("", "")
    assert AdnRecord.decode(empty_adn(18)) is None


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x41" + b"\x0c\x81" + FF * 12, "BCD length 12"),
        (b"\x41" + b"\x00\x81" + FF * 12, "BCD length 0"),
        (b"\x41" + b"\x03\x81\x1f\x22" + FF * 10, "middle"),  # F then more digits
        (b"\x41\x1b" + b"\x02\x81\x21" + FF * 11, "lone escape"),
        (b"\x1b\x41" + b"\x02\x81\x21" + FF * 11, "extension table"),
        (b"\x41\xc1" + b"\x02\x81\x21" + FF * 11, "bit 8"),
        (b"\x81\x05\x08\xa1" + b"\x02\x81\x21" + FF * 11, "counts 5"),
        (b"\x81\x01" + b"\x02\x81\x21" + FF * 11, "header"),
        (b"\x82\x01\xff\xf0\x8f" + b"\x02\x81\x21" + FF * 11, "no character"),
        (b"\x81\x01\x01\x1b" + b"\x02\x81\x21" + FF * 11, "escape"),
        (b"\x80\xd8\x3d\xde\x00" + b"\x02\x81\x21" + FF * 11, "surrogate"),
        (b"\x41" * 13, "at least 14"),
    ],
)
def test_malformed_records_are_rejected_precisely(raw: bytes, match: str) -> None:
    with pytest.raises(MalformedRecord, match=match):
        AdnRecord.decode(raw)


def test_decode_alpha_of_an_81_field_too_short_for_its_count() -> None:
    with pytest.raises(MalformedRecord):
        decode_alpha(b"\x81\x09\x08\xa1\xff")


def _chain(records: dict[int, bytes]) -> AdnRecord | None:
    adn = b"\x4c" + b"\x0b\x81" + b"\x21" * 10 + b"\xff\x01"
    return AdnRecord.decode(adn, records.__getitem__)


def _ext(next_id: int, digits: bytes = b"\x21") -> bytes:
    return b"\x02" + bytes([len(digits)]) + digits + FF * (10 - len(digits)) + bytes([next_id])


def test_ext1_loop_raises_instead_of_hanging() -> None:
    with pytest.raises(MalformedRecord, match="loops back to record 1"):
        _chain({1: _ext(2), 2: _ext(1)})
    with pytest.raises(MalformedRecord, match="loops"):
        _chain({1: _ext(1)})


def test_ext1_bad_links_and_records() -> None:
    with pytest.raises(MalformedRecord, match="outside 1-254"):
        _chain({1: _ext(0)})
    with pytest.raises(MalformedRecord, match="not additional data"):
        _chain({1: FF * 13})  # dangling link to an empty record
    with pytest.raises(MalformedRecord, match="13 bytes"):
        _chain({1: _ext(0xFF)[:12]})
    with pytest.raises(MalformedRecord, match="BCD length"):
        _chain({1: b"\x02\x0b" + b"\x21" * 10 + FF})


def test_ext1_subaddress_records_are_stepped_over() -> None:
    subaddress = b"\x01\x03\xa0\x50\x11" + FF * 7 + b"\x02"
    record = _chain({1: subaddress, 2: _ext(0xFF, b"\x43")})
    assert record is not None
    assert record.number == "12" * 10 + "34"
    assert read_ext1_chain(1, {1: subaddress, 2: _ext(0xFF)}.__getitem__)[1] == [1, 2]


def test_ext1_allocator_misuse() -> None:
    record = AdnRecord("A", "1" * 50)
    with pytest.raises(InvalidField, match="twice"):
        record.encode_with_ext(18, lambda: 4)
    with pytest.raises(InvalidField, match="1-254"):
        record.encode_with_ext(18, lambda: 0)
    calls: list[int] = []

    def alloc() -> int:
        calls.append(1)
        return len(calls)

    # A name that does not fit fails before any EXT1 record is allocated.
    with pytest.raises(NameTooLong):
        AdnRecord("x" * 19, "1" * 50).encode_with_ext(18, alloc)
    assert calls == []
    with pytest.raises(InvalidField, match="1-20 digits"):
        Ext1Record("1" * 21)


def test_fit_name_examples() -> None:
    assert fit_name("Alexander the Great", 10) == "Alexander "
    assert fit_name("ab€€", 5) == "ab€"  # never half an escape pair
    assert fit_name("Сергей Иванович", 8) == "Серге"  # 81: 3 header bytes + 5
    assert fit_name("short", 18) == "short"
    assert fit_name("anything", 0) == ""


def test_a_short_number_does_not_follow_a_stale_ext1_link() -> None:
    adn = b"\x4c" + b"\x03\x81\x21\x43" + FF * 8 + b"\xff\x01"
    record = AdnRecord.decode(adn, {1: _ext(0xFF, b"\x65")}.__getitem__)
    assert record is not None
    assert (record.number, record.ext1) == ("1234", 1)
