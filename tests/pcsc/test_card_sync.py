"""spec/card.md §4 through real PC/SC: channels, NEWSYNC/GETCHANGES/STORESYNC, status words."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from smartcard import scard

from tests.fixtures.pcsc import PcscConnection, ServedCard

from ._apdu import ADN, RECORDS, Card, adn_record, entries, parse_tlv

pytestmark = pytest.mark.pcsc

PDA = b"pda-1"
OTHER = b"phone-cache"


@pytest.fixture
def fresh(
    serve_card: Callable[..., ServedCard], pcsc_connect: Callable[[str], PcscConnection]
) -> Card:
    """A card of its own (sync tables start empty), PIN verified, EF.ADN selected."""
    card = Card(pcsc_connect(serve_card().reader))
    assert card.verify() == 0x9000
    card.select_path(0x3F00, 0x7F10, ADN)
    return card


def _newsync(card: Card, partner: bytes, channel: int = 0) -> dict[int, bytes]:
    reply = card.newsync(partner, channel)
    assert reply.sw == 0x9000, f"NEWSYNC: {reply.sw:04X}"
    tags = parse_tlv(reply.data)
    assert len(tags[0xC3]) == 8
    assert len(tags[0xC4]) == 2
    return tags


def test_manage_channel_open_and_close(card: Card) -> None:
    opened = [card.open_channel() for _ in range(3)]
    assert sorted(opened) == [1, 2, 3]
    assert card.raw("0070000001").sw != 0x9000  # no fourth
    assert card.raw(bytes([0x00, 0x70, 0x80, opened[0], 0x00])).sw == 0x9000
    assert card.open_channel() == opened[0]


def test_sync_commands_need_the_pin(card: Card) -> None:
    # Security comes before the session: 69 82 even where 69 85 would follow.
    assert card.newsync(PDA).sw == 0x6982
    assert card.getchanges(0, 2).sw == 0x6982
    assert card.storesync(bytes(8)) == 0x6982


def test_status_words_of_the_sync_commands(card: Card) -> None:
    assert card.verify() == 0x9000
    assert card.getchanges(0, 2).sw == 0x6985  # no session
    assert card.storesync(bytes(8)) == 0x6985
    assert card.newsync(PDA, db=0x6F99).sw == 0x6A82  # no such EF
    assert card.newsync(PDA, db=0x6FAD).sw == 0x6A82  # not under DF.TELECOM / not linear
    bad = [
        "803a000004c1026f3a00",  # no partner
        "803a000003c0015000",  # no database
        "803a000004c005706100",  # truncated TLV
        "803a000006c000c1026f3a00",  # empty partner id
        "803a000017c011" + "61" * 17 + "c1026f3a00",  # partner id over 16 bytes
        "803a000008c00161c1036f3a0000",  # database not 2 bytes
    ]
    for apdu in bad:
        assert card.raw(apdu).sw == 0x6A80, apdu
    tags = _newsync(card, PDA)
    assert 0xC2 not in tags  # never synced: no last sync object
    assert card.storesync(bytes(b ^ 0xFF for b in tags[0xC3])) == 0x6A80
    assert card.raw("803e000003c30101").sw == 0x6A80  # bad object length
    assert card.getchanges(int.from_bytes(tags[0xC4], "big") + 1, 2).sw == 0x6B00
    assert card.raw("80ff000000").sw == 0x6D00
    assert card.raw("d03a000000").sw == 0x6E00
    assert card.storesync(tags[0xC3]) == 0x9000
    assert card.storesync(tags[0xC3]) == 0x6985  # success ended the session


def test_paging_250_changes_and_the_next_sync_is_empty(fresh: Card) -> None:
    for rec in range(1, RECORDS + 1):
        assert fresh.update_record(rec, adn_record(rec)) == 0x9000
    channel = fresh.open_channel()
    tags = _newsync(fresh, PDA, channel)
    assert int.from_bytes(tags[0xC4], "big") == RECORDS
    # Le 00 means 256: 84 entries make 254 bytes, so the card asks for exactly that.
    assert fresh.getchanges(0, 0x00, channel).sw == 0x6CFE
    page = fresh.getchanges(0, 254, channel)
    assert page.sw == 0x9000
    assert int.from_bytes(page.data[:2], "big") == RECORDS
    assert entries(page.data[2:]) == [(0x01, r) for r in range(1, 85)]
    # The last page holds 250 - 168 = 82 entries: Le 254 is wrong, 248 is right.
    assert fresh.getchanges(168, 254, channel).sw == 0x6C00 | (2 + 3 * 82)
    assert fresh.all_changes(channel, page=50) == [(0x01, r) for r in range(1, RECORDS + 1)]
    assert fresh.getchanges(RECORDS + 1, 2, channel).sw == 0x6B00
    # The session lives on its channel only.
    assert fresh.getchanges(0, 2, 0).sw == 0x6985
    assert fresh.storesync(tags[0xC3], 0) == 0x6985
    assert fresh.storesync(tags[0xC3], channel) == 0x9000
    again = _newsync(fresh, PDA, channel)
    assert again[0xC2] == tags[0xC3]
    assert again[0xC4] == b"\x00\x00"
    assert fresh.all_changes(channel) == []


def test_newsync_alone_changes_nothing(fresh: Card) -> None:
    assert fresh.update_record(3, adn_record(3)) == 0x9000
    first = _newsync(fresh, PDA)
    second = _newsync(fresh, PDA)  # replaces the first session, stores nothing
    assert 0xC2 not in second
    assert second[0xC4] == first[0xC4] == b"\x00\x01"
    assert fresh.storesync(first[0xC3]) == 0x6A80  # only the newest proposal counts
    assert fresh.storesync(second[0xC3]) == 0x9000


def test_writes_by_others_during_a_session_are_reported_next_time(fresh: Card) -> None:
    for rec in (1, 2, 3):
        assert fresh.update_record(rec, adn_record(rec)) == 0x9000
    channel = fresh.open_channel()
    assert fresh.select(0x3F00, cla=channel).sw == 0x9000
    fresh.select_path(0x7F10, ADN, cla=channel)
    tags = _newsync(fresh, PDA, channel)
    assert fresh.all_changes(channel) == [(0x01, 1), (0x01, 2), (0x01, 3)]
    # The session's own write (its channel) and another terminal's (channel 0).
    assert fresh.update_record(2, adn_record(2, version=1), cla=channel) == 0x9000
    assert fresh.update_record(3, adn_record(3, version=1)) == 0x9000
    assert fresh.update_record(3, b"\xff" * 32, cla=0) == 0x9000
    assert fresh.update_record(5, adn_record(5)) == 0x9000
    assert fresh.storesync(tags[0xC3], channel) == 0x9000
    nxt = _newsync(fresh, PDA, channel)
    assert nxt[0xC2] == tags[0xC3]
    changes = fresh.all_changes(channel)
    # 3 was non-empty at the baseline and is empty now (03); 5 was empty there (01).
    assert changes == [(0x03, 3), (0x01, 5)]
    # A partner that never synced sees every non-empty record as added.
    other = _newsync(fresh, OTHER, channel)
    assert 0xC2 not in other
    assert fresh.all_changes(channel) == [(0x01, 1), (0x01, 2), (0x01, 5)]


@pytest.mark.parametrize("how", ["unpower", "reset"])
def test_power_cycle_ends_the_session(fresh: Card, how: str) -> None:
    channel = fresh.open_channel()
    assert fresh.raw(bytes([channel, 0xA4, 0, 4, 2, 0x3F, 0x00])).sw >> 8 == 0x61
    tags = _newsync(fresh, PDA)
    if how == "unpower":
        fresh.conn.disconnect(scard.SCARD_UNPOWER_CARD)
        fresh.conn.connect()
    else:
        fresh.conn.reconnect(scard.SCARD_RESET_CARD)
    assert fresh.verify() == 0x9000
    assert fresh.storesync(tags[0xC3]) == 0x6985
    assert fresh.getchanges(0, 2).sw == 0x6985
    # Reset closed channels 1-3 too.
    assert fresh.raw(bytes([channel, 0xA4, 0, 4, 2, 0x3F, 0x00])).sw >> 8 != 0x61


def test_get_response_after_a_sync_command_takes_8x_c0(fresh: Card) -> None:
    channel = fresh.open_channel()
    body = b"\xc0\x03pda\xc1\x02\x6f\x3a"
    first = fresh.raw(bytes([0x80 | channel, 0x3A, 0, 0, len(body)]) + body + b"\x00")
    assert first.sw >> 8 == 0x61
    got = fresh.raw(bytes([0x80 | channel, 0xC0, 0, 0, first.sw & 0xFF]))
    assert got.sw == 0x9000
    assert set(parse_tlv(got.data)) == {0xC3, 0xC4}
    # And plain 0X C0 after an 8X command, on the same channel.
    first = fresh.raw(bytes([0x80 | channel, 0x3A, 0, 0, len(body)]) + body + b"\x00")
    assert fresh.raw(bytes([channel, 0xC0, 0, 0, first.sw & 0xFF])).sw == 0x9000
    # But not on another channel.
    first = fresh.raw(bytes([0x80 | channel, 0x3A, 0, 0, len(body)]) + body + b"\x00")
    assert fresh.raw(bytes([0x80, 0xC0, 0, 0, first.sw & 0xFF])).sw != 0x9000


def test_card_without_the_applet_answers_6d00(
    serve_card: Callable[..., ServedCard], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    card = Card(pcsc_connect(serve_card(sync_applet=False).reader))
    assert card.verify() == 0x9000
    assert card.newsync(PDA).sw == 0x6D00
    assert card.getchanges(0, 2).sw == 0x6D00
    assert card.storesync(bytes(8)) == 0x6D00
    # The rest of the card is there.
    card.select_path(0x3F00, 0x7F10, ADN)
    assert card.read_record(1).sw == 0x9000
