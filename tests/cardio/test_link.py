"""Procedure bytes, 6Cxx and counters, over the in-process link and a scripted card."""

from __future__ import annotations

import pytest

from cardio import errors
from cardio.apdu import Command
from cardio.inproc import InProcessLink
from cardio.link import MAX_PROCEDURE_ROUNDS
from tests.cardio.scripted import ScriptedCard


async def test_gsm_9fxx_gets_a0_get_response() -> None:
    card = ScriptedCard(("a0a40000023f00", "9f16"), ("a0c0000016", "00" * 22 + "9000"))
    async with InProcessLink(card) as link:
        response = await link.transmit(Command(0xA0, 0xA4, 0, 0, b"\x3f\x00"))
    assert response.sw == 0x9000
    assert response.data == bytes(22)
    assert card.done


@pytest.mark.parametrize(("cla", "get_response_cla"), [(0x00, 0x00), (0x02, 0x02), (0x83, 0x83)])
async def test_iso_61xx_gets_response_on_the_same_channel(cla: int, get_response_cla: int) -> None:
    card = ScriptedCard(
        (f"{cla:02x}a40004026f3a", "6104"),
        (f"{get_response_cla:02x}c0000004", "62028202" + "9000"),
    )
    async with InProcessLink(card) as link:
        response = await link.transmit(Command(cla, 0xA4, 0, 4, b"\x6f\x3a"))
    assert (response.data.hex(), response.sw) == ("62028202", 0x9000)
    assert card.done


async def test_chained_61xx_concatenates() -> None:
    card = ScriptedCard(
        ("00a40004023f00", "6102"),
        ("00c0000002", "aabb6101"),
        ("00c0000001", "cc9000"),
    )
    async with InProcessLink(card) as link:
        response = await link.transmit(Command(0, 0xA4, 0, 4, b"\x3f\x00"))
    assert response.data.hex() == "aabbcc"


async def test_6cxx_resends_with_the_right_le() -> None:
    card = ScriptedCard(("00b2010400", "6c20"), ("00b2010420", "11" * 32 + "9000"))
    async with InProcessLink(card) as link:
        response = await link.transmit(Command(0, 0xB2, 1, 4, le=256))
        assert response.data == b"\x11" * 32
        assert (link.apdu_count, link.bytes_sent, link.bytes_received) == (2, 10, 2 + 34)


async def test_6cxx_then_61xx() -> None:
    card = ScriptedCard(
        ("803c0000fe", "6c05"),
        ("803c000005", "6105"),
        ("80c0000005", "0001010007" + "9000"),
    )
    async with InProcessLink(card) as link:
        response = await link.transmit(Command(0x80, 0x3C, 0, 0, le=254))
    assert response.data.hex() == "0001010007"


async def test_error_status_words_pass_through_unchanged() -> None:
    card = ScriptedCard(("a0b2010420", "9402"))
    async with InProcessLink(card) as link:
        response = await link.transmit(Command(0xA0, 0xB2, 1, 4, le=32))
    assert (response.data, response.sw) == (b"", 0x9402)


async def test_endless_procedure_bytes_are_a_protocol_error() -> None:
    card = ScriptedCard(("00b0000001", "6c01"), *[("00b0000001", "6c01")] * MAX_PROCEDURE_ROUNDS)
    async with InProcessLink(card) as link:
        with pytest.raises(errors.LinkProtocolError, match="procedure bytes"):
            await link.transmit(Command(0, 0xB0, 0, 0, le=1))


async def test_one_byte_answer_is_a_protocol_error() -> None:
    card = ScriptedCard(("00b0000001", "90"))
    async with InProcessLink(card) as link:
        with pytest.raises(errors.LinkProtocolError):
            await link.transmit(Command(0, 0xB0, 0, 0, le=1))


async def test_closed_link_refuses_and_sends_nothing() -> None:
    card = ScriptedCard()
    link = InProcessLink(card)
    with pytest.raises(errors.LinkClosed):
        await link.transmit(Command(0, 0xB0, 0, 0, le=1))
    async with link:
        assert link.atr == ScriptedCard.ATR
        states = [link.is_open]
    states.append(link.is_open)
    assert states == [True, False]
    await link.close()  # idempotent
    with pytest.raises(errors.LinkClosed):
        await link.transmit(Command(0, 0xB0, 0, 0, le=1))
    with pytest.raises(errors.LinkClosed):
        await link.reset()
    assert card.sent == []


async def test_reset_reaches_the_card() -> None:
    card = ScriptedCard()
    async with InProcessLink(card) as link:
        await link.reset()
    assert card.resets == 1
