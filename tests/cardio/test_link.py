"""Procedure bytes, 6Cxx and counters, over the in-process link and a scripted card."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

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


class FailingEnd(InProcessLink):
    """An in-process link whose end of a transaction fails the next ``fail`` times, as
    PC/SC's does when the reader or pcscd went away right after the card answered.

    (Real pcscd + vpcd only make that happen with help at the exact moment: see
    tests/e2e_pcsc/test_lost_after_commit_pcsc.py for a whole sync.)"""

    def __init__(self, card: ScriptedCard, fail: int = 1) -> None:
        super().__init__(card)
        self.fail = fail
        self.ends = 0

    async def _end(self) -> None:
        self.ends += 1
        if self.fail:
            self.fail -= 1
            raise errors.ReaderGone("ending a PC/SC transaction: reader unavailable")


async def test_a_failed_end_after_a_good_answer_keeps_the_answer_and_loses_the_link() -> None:
    storesync = Command(0x81, 0x3E, 0, 0, bytes.fromhex("c3080102030405060708"))
    card = ScriptedCard((storesync.to_bytes().hex(), "9000"))
    link = FailingEnd(card)
    async with link:
        with capture_logs() as logs:
            response = await link.transmit(storesync)
        assert response.sw == 0x9000  # STORESYNC's answer, not the release's failure
        assert isinstance(link.lost, errors.ReaderGone)
        assert [(e["event"], e["log_level"]) for e in logs] == [
            ("card link lost after a command that succeeded", "warning")
        ]
        # Later commands fail at once with the same kind of error (no_card) and send nothing.
        with pytest.raises(errors.ReaderGone, match="lost after an earlier command") as info:
            await link.transmit(Command(0xA0, 0xB2, 1, 4, le=32))
        assert info.value.__cause__ is link.lost  # the first failure's traceback is kept
        with pytest.raises(errors.ReaderGone):
            await link.hold()
    assert card.done
    assert len(card.sent) == 1
    assert link.ends == 1  # no transaction was begun after the loss
    # Opened again, the link is a new connection: the old loss is over.
    card.script.append((bytes.fromhex("a0b2010420"), bytes.fromhex("9000")))
    reopened: FailingEnd = link  # (a new name: mypy still holds link.lost narrowed)
    async with reopened:
        assert reopened.lost is None
        assert (await reopened.transmit(Command(0xA0, 0xB2, 1, 4, le=32))).sw == 0x9000
    assert reopened.ends == 2


async def test_a_failed_release_of_a_hold_is_not_raised_and_loses_the_link() -> None:
    card = ScriptedCard(("a0a40000023f00", "9000"))
    link = FailingEnd(card)
    async with link:
        await link.hold()
        assert (await link.transmit(Command(0xA0, 0xA4, 0, 0, b"\x3f\x00"))).sw == 0x9000
        with capture_logs() as logs:
            await link.release()  # the held commands succeeded: not their failure
        assert not link.held
        assert [e["log_level"] for e in logs] == ["warning"]
        with pytest.raises(errors.ReaderGone):
            await link.transmit(Command(0xA0, 0xA4, 0, 0, b"\x3f\x00"))
    assert card.done


async def test_a_failed_end_after_a_failed_command_raises_the_commands_error() -> None:
    card = ScriptedCard(("a0a40000023f00", "9f"))  # a one-byte answer: broken link rules
    link = FailingEnd(card)
    async with link:
        with pytest.raises(errors.LinkProtocolError):
            await link.transmit(Command(0xA0, 0xA4, 0, 0, b"\x3f\x00"))
        assert isinstance(link.lost, errors.ReaderGone)
