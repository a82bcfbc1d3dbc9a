"""Behaviour of the card core: T=0, files, CHV, channels, the sync commands' errors."""

from __future__ import annotations

import pytest

from simcard import CardParamError, new_memory_card

from ._apdu import (
    ADN,
    PIN,
    PUK,
    TELECOM,
    case4,
    getchanges,
    h,
    newsync,
    ok,
    open_channel,
    read,
    select,
    storesync,
    tx,
    update,
    verify,
)

EMPTY = b"\xff" * 32
ALICE = b"Alice".ljust(18, b"\xff") + h("06 81 21 43 65 87 F9 FF FF FF FF FF FF FF")


@pytest.fixture
def card():
    c = new_memory_card(records=10)
    verify(c)
    select(c, 0, TELECOM, ADN)
    return c


# -- T=0 procedure bytes ---------------------------------------------------------


def test_case4_with_and_without_trailing_le() -> None:
    c = new_memory_card()
    assert tx(c, "A0 A4 00 00 02 3F00") == h("9F16")
    assert tx(c, "A0 A4 00 00 02 3F00 00") == h("9F16")
    assert tx(c, "00 A4 00 04 02 3F00 00") == h("610A")


def test_get_response_rules() -> None:
    c = new_memory_card()
    assert tx(c, "A0 A4 00 00 02 3F00") == h("9F16")
    assert tx(c, "A0 C0 00 00 20") == h("6C16")  # wrong Le keeps the response
    assert len(ok(c, "A0 C0 00 00 16")) == 22
    assert tx(c, "A0 C0 00 00 16") == h("6985")  # consumed
    assert tx(c, "00 A4 00 04 02 3F00") == h("610A")
    assert tx(c, "A0 C0 00 00 0A") == h("6985")  # other class flavour: discarded
    assert tx(c, "00 A4 00 04 02 3F00") == h("610A")
    assert tx(c, "A0 F2 00 00 16")[-2:] == h("9000")  # any other command discards
    assert tx(c, "00 C0 00 00 0A") == h("6985")
    assert tx(c, "00 A4 00 04 02 3F00") == h("610A")
    assert ok(c, "80 C0 00 00 0A")[:2] == h("6208")  # 8X C0 is taken too


def test_get_response_is_per_channel() -> None:
    c = new_memory_card()
    ch = open_channel(c)
    assert tx(c, bytes((ch, 0xA4, 0, 4, 2)) + h("3F00")) == h("610A")
    assert tx(c, "00 C0 00 00 0A") == h("6985")
    assert tx(c, bytes((ch, 0xA4, 0, 4, 2)) + h("3F00")) == h("610A")
    assert ok(c, bytes((ch, 0xC0, 0, 0, 10)))[:2] == h("6208")


def test_unknown_class_and_instruction() -> None:
    c = new_memory_card()
    assert tx(c, "B0 A4 00 00 02 3F00") == h("6E00")
    assert tx(c, "A0 FF 00 00 00") == h("6D00")
    assert tx(c, "A0 70 00 00 01") == h("6D00")  # MANAGE CHANNEL is CLA 00 only
    assert tx(c, "80 3A 00 00 00") == h("6982")  # sync INS exists...
    assert tx(c, "80 50 00 00 00") == h("6D00")
    assert tx(c, "A0") == h("6700")


def test_plain_sim_has_no_sync_commands() -> None:
    c = new_memory_card(sync_applet=False)
    verify(c)
    for ins in ("3A", "3C", "3E"):
        assert tx(c, f"80 {ins} 00 00 02") == h("6D00")
    assert c.info()["sync_applet"] is False


# -- files -------------------------------------------------------------------------


def test_select_rules() -> None:
    c = new_memory_card()
    assert tx(c, "A0 A4 00 00 02 6F3A") == h("9404")  # not a child of the MF
    assert tx(c, "00 A4 00 04 02 6F3A") == h("6A82")
    assert tx(c, "A0 A4 00 00 02 1234") == h("9404")
    select(c, 0, TELECOM)
    select(c, 0, 0x7F20)  # sibling DF
    select(c, 0, 0x6F07)  # child of the current DF
    assert tx(c, "00 A4 00 0C 02 6F3A") == h("6A82")  # EF of the other DF
    select(c, 0, 0x6FAD, 0x7F20, 0x3F00, 0x2FE2)  # sibling EF, parent, MF, child
    assert tx(c, "A0 A4 00 00 03 3F00") == h("6700")  # Lc says 3, 2 bytes follow
    assert tx(c, "A0 A4 04 00 02 3F00") == h("6B00")
    assert tx(c, "00 A4 04 04 02 3F00") == h("6A86")


def test_read_binary_iccid_without_pin() -> None:
    c = new_memory_card(iccid="894900001234567890")
    select(c, 0, 0x2FE2)
    assert ok(c, "A0 B0 00 00 0A") == h("98 94 00 00 21 43 65 87 09 FF")
    assert tx(c, "A0 B0 00 00 0B") == h("6C0A")
    assert ok(c, "A0 B0 00 08 02") == h("09 FF")
    assert tx(c, "A0 B0 00 0A 01") == h("6B00")
    assert tx(c, "A0 B2 01 04 0A") == h("9408")  # not a record file


def test_imsi_needs_pin_and_no_ef_selected() -> None:
    c = new_memory_card()
    assert tx(c, "A0 B0 00 00 09") == h("9400")
    assert tx(c, "00 B0 00 00 09") == h("6986")
    select(c, 0, 0x7F20, 0x6F07)
    assert tx(c, "A0 B0 00 00 09") == h("9804")
    assert tx(c, "00 B0 00 00 09") == h("6982")
    verify(c)
    assert ok(c, "A0 B0 00 00 09") == h("08 09 10 10 10 32 54 76 98")


def test_record_access(card) -> None:
    update(card, 0, 3, ALICE)
    assert read(card, 0, 3, 32) == ALICE
    assert tx(card, "A0 B2 03 04 10") == h("6C20")  # wrong Le
    assert tx(card, "A0 B2 0B 04 20") == h("9402")
    assert tx(card, "00 B2 0B 04 20") == h("6A83")
    assert tx(card, "00 B2 00 04 20")[:-2] == ALICE  # P1 = 0: the current record
    assert tx(card, bytes((0, 0xDC, 1, 4, 31)) + ALICE[:31]) == h("6700")
    assert tx(card, "A0 B2 01 07 20") == h("6B00")
    assert tx(card, "00 B2 01 07 20") == h("6A86")


def test_record_next_and_previous(card) -> None:
    for r in (1, 2, 10):
        update(card, 0, r, bytes((r,)) * 32)
    select(card, 0, ADN)
    assert ok(card, "A0 B2 00 02 20") == b"\x01" * 32
    assert ok(card, "A0 B2 00 02 20") == b"\x02" * 32
    assert ok(card, "A0 B2 00 03 20") == b"\x01" * 32
    assert tx(card, "A0 B2 00 03 20") == h("9402")
    select(card, 0, ADN)
    assert ok(card, "A0 B2 00 03 20") == b"\x0a" * 32  # previous from nothing: the last


def test_update_needs_pin() -> None:
    c = new_memory_card(records=10)
    select(c, 0, TELECOM, ADN)
    assert tx(c, bytes((0xA0, 0xDC, 1, 4, 32)) + ALICE) == h("9804")
    assert tx(c, bytes((0x00, 0xDC, 1, 4, 32)) + ALICE) == h("6982")
    verify(c)
    update(c, 0, 1, ALICE)


# -- CHV ---------------------------------------------------------------------------


def test_wrong_pin_counts_down_then_blocks_then_unblock() -> None:
    c = new_memory_card()
    bad = b"9999".ljust(8, b"\xff")
    assert tx(c, b"\x00\x20\x00\x01\x08" + bad) == h("63C2")
    assert tx(c, b"\xa0\x20\x00\x01\x08" + bad) == h("9804")
    assert tx(c, b"\xa0\x20\x00\x01\x08" + bad) == h("9840")
    assert tx(c, b"\xa0\x20\x00\x01\x08" + PIN) == h("9840")  # blocked: even the right one
    assert tx(c, b"\x00\x20\x00\x01\x08" + PIN) == h("6983")
    assert tx(c, "00 20 00 01 00") == h("6983")
    new = b"4321".ljust(8, b"\xff")
    assert tx(c, b"\xa0\x2c\x00\x00\x10" + b"00000000" + new) == h("9804")
    assert tx(c, b"\x00\x2c\x00\x01\x10" + b"00000000" + new) == h("63C8")
    assert tx(c, b"\xa0\x2c\x00\x00\x10" + PUK + b"12\xff\xff\xff\xff\xff\xff") == h("6A80")
    assert c.info()["puk_tries_left"] == 8
    assert tx(c, b"\xa0\x2c\x00\x00\x10" + PUK + new) == h("9000")
    assert c.info()["pin_tries_left"] == 3
    assert c.info()["puk_tries_left"] == 10
    c.reset()
    assert tx(c, b"\xa0\x20\x00\x01\x08" + PIN) == h("9804")
    assert tx(c, b"\xa0\x20\x00\x01\x08" + new) == h("9000")


def test_puk_blocks_for_good() -> None:
    c = new_memory_card()
    for left in range(9, 0, -1):
        assert tx(c, b"\x00\x2c\x00\x01\x10" + b"00000000" + PIN) == bytes((0x63, 0xC0 | left))
    assert tx(c, b"\x00\x2c\x00\x01\x10" + b"00000000" + PIN) == h("6983")
    assert tx(c, b"\x00\x2c\x00\x01\x10" + PUK + PIN) == h("6983")


def test_verify_status_query_and_reset_forgets_pin() -> None:
    c = new_memory_card()
    assert tx(c, "00 20 00 01 00") == h("63C3")
    verify(c)
    assert tx(c, "00 20 00 01") == h("9000")
    assert tx(c, "A0 20 00 01 07 30303030FFFFFF") == h("6700")
    assert tx(c, "A0 20 00 02 08 30303030FFFFFFFF") == h("6B00")
    c.reset()
    assert tx(c, "00 20 00 01 00") == h("63C3")


# -- channels ------------------------------------------------------------------------


def test_manage_channel() -> None:
    c = new_memory_card()
    assert [open_channel(c) for _ in range(3)] == [1, 2, 3]
    assert tx(c, "00 70 00 00 01") == h("6A81")
    ok(c, "00 70 80 02 00")
    assert tx(c, "02 A4 00 0C 02 3F00") == h("6881")
    assert tx(c, "00 70 80 02 00") == h("6A86")  # not open
    assert tx(c, "00 70 80 00 00") == h("6A86")  # the basic channel stays
    assert tx(c, "00 70 00 00 02") == h("6C01")
    assert open_channel(c) == 2
    c.reset()
    assert tx(c, "01 A4 00 0C 02 3F00") == h("6881")


def test_channels_have_their_own_current_file(card) -> None:
    ch = open_channel(card)
    assert tx(card, bytes((ch, 0xB2, 1, 4, 32))) == h("6986")  # new channel: MF
    select(card, ch, TELECOM, ADN)
    update(card, ch, 1, ALICE)
    assert read(card, 0, 1, 32) == ALICE


# -- sync command errors ----------------------------------------------------------


def test_sync_commands_need_pin_first() -> None:
    c = new_memory_card()
    assert tx(c, "80 3A 00 00 02 C0 00") == h("6982")
    assert tx(c, "80 3C 00 00 02") == h("6982")
    assert tx(c, "80 3E 00 00 0A C3 08 0000000000000000") == h("6982")


def test_sync_command_errors(card) -> None:
    assert tx(card, "80 3C 00 00 02") == h("6985")
    assert storesync(card, 0, bytes(8)) == 0x6985
    assert tx(card, "80 3A 00 00 09 C0 03 414243 C1 02 6F07") == h("6A82")
    assert tx(card, "80 3A 00 00 09 C0 03 414243 C1 02 2FE2") == h("6A82")
    assert tx(card, "80 3A 00 00 09 C0 03 414243 C2 02 6F3A") == h("6A80")
    assert tx(card, "80 3A 00 00 08 C0 03 414243 C1 02 6F") == h("6A80")
    assert tx(card, "80 3A 00 00 05 C0 00 C1 02 6F") == h("6A80")
    long_id = "C0 11 " + "41" * 17 + " C1 02 6F3A"
    assert tx(card, f"80 3A 00 00 17 {long_id}") == h("6A80")
    assert tx(card, "80 3A 00 00 09 C0 03 414243 C1 02 6F3A") == h("610E")
    assert tx(card, "80 3C 00 01 02") == h("6B00")  # past the total of 0
    assert tx(card, "80 3C 00 00 00") == h("6C02")  # Le 00 = 256 is never exact
    assert tx(card, "80 3E 00 00 09 C3 07 00000000000000") == h("6A80")
    assert tx(card, "80 3E 00 00 0A C3 08 0000000000000000") == h("6A80")  # not proposed
    assert tx(card, "81 3C 00 00 02") == h("6881")


def test_getchanges_paging_and_6c(card) -> None:
    for r in range(1, 11):
        update(card, 0, r, ALICE)
    ns = newsync(card, 0, b"pda")
    assert ns.last is None
    assert ns.count == 10
    assert tx(card, "80 3C 00 00 06") == h("6C05")  # 1 entry fits in 6 -> exact is 5
    assert tx(card, "80 3C 00 09 20") == h("6C05")  # one left
    assert ok(card, "80 3C 00 09 05") == h("000A 01 000A")
    assert tx(card, "80 3C 00 0A 02") == h("000A 9000")
    assert tx(card, "80 3C 00 0B 02") == h("6B00")
    assert getchanges(card, 0, page=3) == [(1, r) for r in range(1, 11)]


def test_session_writes_and_foreign_writes(card) -> None:
    ch = open_channel(card)
    select(card, ch, TELECOM, ADN)
    update(card, 0, 1, ALICE)
    ns = newsync(card, ch, b"pda")
    assert getchanges(card, ch) == [(1, 1)]
    update(card, ch, 2, ALICE)  # the session's own write
    update(card, 0, 3, ALICE)  # someone else's, meanwhile
    assert getchanges(card, ch) == [(1, 1)]  # frozen
    assert storesync(card, ch, ns.proposed) == 0x9000
    ns2 = newsync(card, ch, b"pda")
    assert ns2.last == ns.proposed
    assert getchanges(card, ch) == [(1, 3)]  # only the foreign write, as added
    # Another partner never synced: sees everything as added.
    newsync(card, 0, b"phone")
    assert getchanges(card, 0) == [(1, 1), (1, 2), (1, 3)]


def test_write_by_both_the_session_and_others(card) -> None:
    ch = open_channel(card)
    select(card, ch, TELECOM, ADN)
    ns = newsync(card, ch, b"pda")
    update(card, 0, 1, ALICE)  # others first, then the session: it knows the end result
    update(card, ch, 1, ALICE.replace(b"A", b"B"))
    update(card, ch, 2, ALICE)  # the session first, then others: others' write is news
    update(card, 0, 2, EMPTY)
    assert storesync(card, ch, ns.proposed) == 0x9000
    newsync(card, ch, b"pda")
    assert getchanges(card, ch) == [(3, 2)]  # deleted since the session wrote it


def test_types_modified_and_deleted(card) -> None:
    update(card, 0, 1, ALICE)
    update(card, 0, 2, ALICE)
    ns = newsync(card, 0, b"pda")
    assert storesync(card, 0, ns.proposed) == 0x9000
    update(card, 0, 1, ALICE.replace(b"A", b"B"))
    update(card, 0, 2, EMPTY)
    update(card, 0, 3, ALICE)
    update(card, 0, 4, ALICE)
    update(card, 0, 4, EMPTY)  # added then deleted: nothing to tell
    newsync(card, 0, b"pda")
    assert getchanges(card, 0) == [(2, 1), (3, 2), (1, 3)]


def test_eviction_of_the_oldest_storesync(card) -> None:
    update(card, 0, 1, ALICE)
    objs = {}
    for i in range(9):  # table of 8: the 9th evicts the first
        p = f"p{i}".encode()
        objs[p] = newsync(card, 0, p).proposed
        assert storesync(card, 0, objs[p]) == 0x9000
    assert card.info()["partners"] == [f"p{i}".encode().hex() for i in range(1, 9)]
    assert newsync(card, 0, b"p0").last is None
    assert getchanges(card, 0) == [(1, 1)]
    assert newsync(card, 0, b"p1").last == objs[b"p1"]
    assert getchanges(card, 0) == []


def test_reset_ends_sessions(card) -> None:
    ns = newsync(card, 0, b"pda")
    card.reset()
    verify(card)
    assert storesync(card, 0, ns.proposed) == 0x6985
    card.power_off()
    assert tx(card, "A0 A4 00 00 02 3F00") == h("6F00")
    assert card.power_on() == card.atr
    assert tx(card, "A0 A4 00 00 02 3F00") == h("9F16")


def test_newsync_changes_nothing_persistent(card) -> None:
    update(card, 0, 1, ALICE)
    before = card.info()
    newsync(card, 0, b"pda")
    newsync(card, 0, b"pda")
    assert card.info() == before
    assert card.info()["partners"] == []


def test_atr_announces_t0() -> None:
    c = new_memory_card()
    atr = c.power_on()
    assert atr[0] == 0x3B
    assert atr[1] & 0x80  # TD1 present
    assert atr[2] & 0x0F == 0  # ... and says T=0
    assert len(atr) == 3 + (atr[1] & 0x0F)


def test_info_never_shows_codes() -> None:
    c = new_memory_card(pin="97531", puk="86420864")
    text = repr(c.info())
    assert "97531" not in text
    assert "86420864" not in text
    assert "3937353331" not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"records": 0},
        {"records": 255},
        {"alpha_len": 0},
        {"alpha_len": 242},
        {"pin": "123"},
        {"pin": "123456789"},
        {"pin": "12a4"},
        {"puk": "1234567"},
        {"partners": 7},
        {"partners": 17},
        {"iccid": "12345678901234567"},
        {"iccid": "894900001234567890x"},
    ],
)
def test_bad_parameters(kwargs) -> None:
    with pytest.raises(CardParamError):
        new_memory_card(**kwargs)


def test_case4_select_data_in_gsm() -> None:
    c = new_memory_card()
    assert len(case4(c, h("A0 A4 00 00 02 7F20"), gsm=True)) == 22
