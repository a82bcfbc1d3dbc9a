"""spec/card.md §1-§3 through pcscd + vpcd + ``card serve``: files, procedure bytes, records."""

from __future__ import annotations

import pytest

from ._apdu import ADN, RECORD_LEN, RECORDS, Card, adn_record, parse_tlv

pytestmark = pytest.mark.pcsc

MF, TELECOM, ICCID = 0x3F00, 0x7F10, 0x2FE2
# DEFAULT_ICCID 8949000012345678903, nibble-swapped, padded with F.
ICCID_BYTES = bytes.fromhex("989400002143658709f3")


def test_gsm_select_mf_df_and_adn(card: Card) -> None:
    mf = card.select(MF)
    assert mf.sw == 0x9000
    assert len(mf.data) >= 22
    assert mf.data[4:6] == b"\x3f\x00"
    assert mf.data[6] == 0x01
    telecom = card.select(TELECOM)
    assert telecom.sw == 0x9000
    assert len(telecom.data) >= 22
    assert telecom.data[4:6] == b"\x7f\x10"
    assert telecom.data[6] == 0x02
    adn = card.select(ADN)
    assert adn.sw == 0x9000
    assert len(adn.data) == 15
    assert int.from_bytes(adn.data[2:4], "big") == RECORD_LEN * RECORDS
    assert adn.data[4:6] == b"\x6f\x3a"
    assert adn.data[6] == 0x04
    assert adn.data[12] == 0x02
    assert adn.data[13] == 0x01  # linear fixed
    assert adn.data[14] == RECORD_LEN


def test_gsm_select_procedure_bytes_are_9f(card: Card) -> None:
    first = card.raw("a0a40000023f00")
    assert first.data == b""
    assert first.sw >> 8 == 0x9F
    got = card.raw(bytes([0xA0, 0xC0, 0, 0, first.sw & 0xFF]))
    assert got.sw == 0x9000
    assert len(got.data) == first.sw & 0xFF


def test_uicc_select_answers_fcp(card: Card) -> None:
    first = card.raw("00a40004023f00")
    assert first.data == b""
    assert first.sw >> 8 == 0x61
    mf = card.select(MF, cla=0x00)
    assert mf.sw == 0x9000
    assert mf.data[0] == 0x62
    assert mf.data[1] == len(mf.data) - 2
    tags = parse_tlv(mf.data[2:])
    assert tags[0x82] == bytes.fromhex("7821")
    assert tags[0x83] == b"\x3f\x00"
    card.select(TELECOM, cla=0x00)
    adn = card.select(ADN, cla=0x00)
    tags = parse_tlv(adn.data[2:])
    assert adn.data[:2] == bytes([0x62, len(adn.data) - 2])
    assert tags[0x82] == bytes([0x42, 0x21, 0x00, RECORD_LEN, RECORDS])
    assert tags[0x83] == b"\x6f\x3a"
    assert int.from_bytes(tags[0x80], "big") == RECORD_LEN * RECORDS
    assert set(tags) <= {0x82, 0x83, 0x80, 0x8A, 0x8C}
    card.select(MF, cla=0x00)
    iccid = card.select(ICCID, cla=0x00)
    assert iccid.sw == 0x9000
    tags = parse_tlv(iccid.data[2:])
    assert tags[0x82] == bytes.fromhex("4121")
    assert tags[0x80] == b"\x00\x0a"


@pytest.mark.parametrize(("cla", "sw"), [(0xA0, 0x9404), (0x00, 0x6A82)])
def test_unknown_fid(card: Card, cla: int, sw: int) -> None:
    assert card.select(0x6F99, cla).sw == sw


@pytest.mark.parametrize("cla", [0xA0, 0x00])
def test_read_iccid_without_pin(card: Card, cla: int) -> None:
    card.select_path(MF, ICCID, cla=cla)
    reply = card.raw(bytes([cla, 0xB0, 0, 0, 10]))
    assert reply == type(reply)(ICCID_BYTES, 0x9000)


@pytest.mark.parametrize("cla", [0xA0, 0x00])
def test_wrong_le_gets_6c_with_the_right_length(card: Card, cla: int) -> None:
    card.select_path(MF, ICCID, cla=cla)
    assert card.raw(bytes([cla, 0xB0, 0, 0, 12])).sw == 0x6C0A
    assert card.verify(cla=cla) == 0x9000
    card.select_path(TELECOM, ADN, cla=cla)
    assert card.read_record(1, cla, le=RECORD_LEN + 1).sw == 0x6C00 | RECORD_LEN
    assert card.read_record(1, cla, le=RECORD_LEN).sw == 0x9000


@pytest.mark.parametrize("cla", [0xA0, 0x00])
def test_pending_response_is_discarded_by_another_command(card: Card, cla: int) -> None:
    p2 = 0x00 if cla == 0xA0 else 0x04
    first = card.raw(bytes([cla, 0xA4, 0, p2, 2, 0x3F, 0x00]))
    assert first.sw >> 8 in (0x9F, 0x61)
    assert card.verify(cla=cla) == 0x9000  # any command in between
    late = card.raw(bytes([cla, 0xC0, 0, 0, first.sw & 0xFF]))
    assert late.sw != 0x9000
    assert late.data == b""


def test_get_response_belongs_to_the_channel(card: Card) -> None:
    channel = card.open_channel()
    first = card.raw(bytes([channel, 0xA4, 0, 4, 2, 0x3F, 0x00]))
    assert first.sw >> 8 == 0x61
    got = card.raw(bytes([channel, 0xC0, 0, 0, first.sw & 0xFF]))
    assert got.sw == 0x9000
    assert got.data[0] == 0x62
    # The same response asked for on channel 0 is not there.
    card.raw(bytes([channel, 0xA4, 0, 4, 2, 0x3F, 0x00]))
    assert card.raw(bytes([0x00, 0xC0, 0, 0, first.sw & 0xFF])).sw != 0x9000


@pytest.mark.parametrize(("cla", "sw"), [(0xA0, 0x9804), (0x00, 0x6982)])
def test_records_need_the_pin(card: Card, cla: int, sw: int) -> None:
    card.select_path(MF, TELECOM, ADN, cla=cla)
    assert card.read_record(1, cla).sw == sw
    assert card.update_record(1, adn_record(1), cla) == sw


@pytest.mark.parametrize(("cla", "out_of_range"), [(0xA0, 0x9402), (0x00, 0x6A83)])
def test_update_and_read_records(card: Card, cla: int, out_of_range: int) -> None:
    assert card.verify(cla=cla) == 0x9000
    card.select_path(MF, TELECOM, ADN, cla=cla)
    rec = 7 if cla == 0xA0 else 8
    before = card.read_record(rec, cla)
    assert before.sw == 0x9000
    new = adn_record(rec, version=cla)
    assert card.update_record(rec, new, cla) == 0x9000
    assert card.read_record(rec, cla) == type(before)(new, 0x9000)
    assert card.read_record(RECORDS + 1, cla).sw == out_of_range
    assert card.update_record(RECORDS + 1, new, cla) == out_of_range
    # Wrong length: refused, nothing written.
    assert card.update_record(rec, new[:-1], cla) == 0x6700
    assert card.read_record(rec, cla).data == new
    assert card.update_record(rec, b"\xff" * RECORD_LEN, cla) == 0x9000


def test_unknown_class_and_instruction(card: Card) -> None:
    assert card.raw("d0a40000023f00").sw == 0x6E00
    assert card.raw("a0ff000000").sw == 0x6D00
    assert card.raw("00ff000000").sw == 0x6D00
