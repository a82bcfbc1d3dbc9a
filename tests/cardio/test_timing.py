"""The T=0 timing model against exchanges priced by hand."""

from __future__ import annotations

import pytest

from cardio.apdu import Command
from cardio.inproc import InProcessLink
from cardio.timing import TimedLink, tpdu_bytes
from tests.cardio.scripted import ScriptedCard


def test_tpdu_bytes_per_case() -> None:
    # Case 1: header + SW, no procedure byte.
    assert tpdu_bytes(bytes.fromhex("0070800100"), bytes.fromhex("9000")) == 7
    # Case 2: header + ACK + 32 data + SW.
    assert tpdu_bytes(bytes.fromhex("a0b2010420"), bytes(32) + b"\x90\x00") == 40
    # Case 3: header + ACK + 2 data + SW.
    assert tpdu_bytes(bytes.fromhex("a0a40000023f00"), bytes.fromhex("9f16")) == 10
    # Case 4 trailing Le is not sent in T=0.
    assert tpdu_bytes(bytes.fromhex("803a000003c0010100"), bytes.fromhex("6114")) == 11


async def test_select_with_get_response_priced_by_hand() -> None:
    card = ScriptedCard(("a0a40000023f00", "9f16"), ("a0c0000016", "00" * 22 + "9000"))
    link = TimedLink(InProcessLink(card), card_seconds=0.001)
    async with link:
        await link.transmit(Command(0xA0, 0xA4, 0, 0, b"\x3f\x00"))
    # SELECT: 5 + 1 + 2 + 2 = 10 bytes; GET RESPONSE: 5 + 1 + 22 + 2 = 30 bytes.
    assert (link.tpdu_count, link.tpdu_bytes) == (2, 40)
    # 40 bytes * 12 etu / 9600 baud = 0.05 s, plus 2 * 1 ms of card time.
    assert link.modeled_seconds == pytest.approx(0.052)
    assert link.apdu_count == 2


async def test_other_rate_and_reset_counters() -> None:
    card = ScriptedCard(("00b2010420", "00" * 32 + "9000"), ("00b2020420", "00" * 32 + "9000"))
    link = TimedLink(InProcessLink(card), baud=115200, etu_per_byte=12)
    async with link:
        await link.transmit(Command(0, 0xB2, 1, 4, le=32))
        assert link.modeled_seconds == pytest.approx(40 * 12 / 115200)
        link.reset_counters()
        assert (link.tpdu_count, link.modeled_seconds, link.apdu_count) == (0, 0.0, 0)
        await link.transmit(Command(0, 0xB2, 2, 4, le=32))
        assert link.tpdu_bytes == 40


def test_bad_model_parameters() -> None:
    with pytest.raises(ValueError, match="baud"):
        TimedLink(InProcessLink(ScriptedCard()), baud=0)
