"""SIM file operations against the emulated card core, in both classes."""

from __future__ import annotations

import pytest
import structlog

import simcard
from cardio import errors
from cardio.files import FileInfo, FileKind, FileStructure
from cardio.inproc import InProcessLink
from cardio.link import CardLink
from cardio.sim import CLA_GSM, CLA_ISO, Sim, decode_iccid
from tests.cardio.scripted import ScriptedCard

ADN = [0x3F00, 0x7F10, 0x6F3A]
PIN = "0000"
PUK = "12345678"


async def test_class_detection_prefers_00(sim: Sim) -> None:
    assert sim.cla is None
    assert await sim.detect_class() == CLA_ISO


async def test_class_falls_back_to_a0_on_6e00() -> None:
    gsm_mf = "0000 1000 3f00 01 0000000000 09 00 02 02 04 00 83 8a 83 8a"
    card = ScriptedCard(
        ("00a40004023f00", "6e00"), ("a0a40000023f00", "9f16"), ("a0c0000016", gsm_mf + "9000")
    )
    async with InProcessLink(card) as link:
        sim = Sim(link)
        info = await sim.select(0x3F00)
        assert sim.cla == CLA_GSM
        assert info.kind is FileKind.MF
        assert info.chv1_tries == 3
        # No channels on a GSM-only card: the session shares channel 0.
        other = await sim.open_channel()
        assert (other.channel, other.sync_cla) == (0, 0x80)
        await other.close_channel()
    assert card.done


@pytest.mark.parametrize("cla", [CLA_ISO, CLA_GSM])
async def test_select_path_parses_both_answer_forms(link: CardLink, cla: int) -> None:
    sim = Sim(link, cla=cla)
    info = await sim.select_path(ADN)
    assert info == FileInfo(0x6F3A, FileKind.EF, FileStructure.LINEAR_FIXED, 250 * 32, 32, 250)
    df = await sim.select(0x7F10)
    assert (df.fid, df.kind) == (0x7F10, FileKind.DF)
    assert sim.current == df


@pytest.mark.parametrize(("cla", "sw"), [(CLA_ISO, 0x6A82), (CLA_GSM, 0x9404)])
async def test_unknown_file(link: CardLink, cla: int, sw: int) -> None:
    sim = Sim(link, cla=cla)
    with pytest.raises(errors.FileNotFound) as exc:
        await sim.select_path([0x3F00, 0x7F10, 0x6FFF])
    assert exc.value.sw == sw


@pytest.mark.parametrize(("cla", "sw"), [(CLA_ISO, 0x6982), (CLA_GSM, 0x9804)])
async def test_read_needs_the_pin(link: CardLink, cla: int, sw: int) -> None:
    sim = Sim(link, cla=cla)
    await sim.select_path(ADN)
    with pytest.raises(errors.SecurityNotSatisfied) as exc:
        await sim.read_record(1)
    assert exc.value.sw == sw


@pytest.mark.parametrize("cla", [CLA_ISO, CLA_GSM])
async def test_record_round_trip(link: CardLink, cla: int) -> None:
    sim = Sim(link, cla=cla)
    await sim.verify_pin(PIN)
    await sim.select_path(ADN)
    assert await sim.read_record(7) == b"\xff" * 32
    record = bytes(range(32))
    await sim.update_record(7, record)
    assert await sim.read_record(7) == record


@pytest.mark.parametrize(("cla", "sw"), [(CLA_ISO, 0x6A83), (CLA_GSM, 0x9402)])
async def test_record_out_of_range(link: CardLink, cla: int, sw: int) -> None:
    sim = Sim(link, cla=cla)
    await sim.verify_pin(PIN)
    await sim.select_path(ADN)
    with pytest.raises(errors.RecordNotFound) as exc:
        await sim.read_record(251)
    assert exc.value.sw == sw


async def test_read_record_without_known_length_uses_6cxx(link: CardLink) -> None:
    sim = Sim(link)
    await sim.verify_pin(PIN)
    await sim.select_path(ADN)
    sim.current = None  # as if the EF had been selected by someone else
    before = link.apdu_count
    assert await sim.read_record(1) == b"\xff" * 32
    assert link.apdu_count - before == 2  # Le 00, then 6C20, then Le 20


async def test_bad_input_sends_nothing(sim: Sim, link: CardLink) -> None:
    await sim.verify_pin(PIN)
    await sim.select_path(ADN)
    before = link.apdu_count
    with pytest.raises(errors.InvalidRequest, match="record number"):
        await sim.read_record(0)
    with pytest.raises(errors.InvalidRequest, match="32-byte records"):
        await sim.update_record(1, b"\x00" * 31)
    with pytest.raises(errors.InvalidRequest, match="offset"):
        await sim.read_binary(-1, 2)
    with pytest.raises(errors.InvalidRequest, match="file id"):
        await sim.select(0x10000)
    with pytest.raises(errors.InvalidRequest, match="empty path"):
        await sim.select_path([])
    with pytest.raises(errors.InvalidRequest, match="PIN must be"):
        await sim.verify_pin("12ab")
    assert link.apdu_count == before
    assert await sim.read_record(1) == b"\xff" * 32


@pytest.mark.parametrize("cla", [CLA_ISO, CLA_GSM])
async def test_iccid(link: CardLink, cla: int) -> None:
    assert await Sim(link, cla=cla).iccid() == simcard.DEFAULT_ICCID


def test_decode_iccid() -> None:
    assert decode_iccid(bytes.fromhex("98 94 00 21 43 65 87 09 21 f3")) == "8949001234567890123"
    with pytest.raises(errors.MalformedResponse, match="nibble"):
        decode_iccid(bytes.fromhex("9a"))


@pytest.mark.parametrize("cla", [CLA_ISO, CLA_GSM])
async def test_wrong_pin_blocks_then_unblock(link: CardLink, cla: int) -> None:
    sim = Sim(link, cla=cla)
    assert await sim.pin_tries_left() == 3
    with pytest.raises(errors.PinRejected) as first:
        await sim.verify_pin("9999")
    assert first.value.tries_left == 2
    with pytest.raises(errors.PinRejected) as second:
        await sim.verify_pin("9999")
    assert second.value.tries_left == 1
    with pytest.raises(errors.CardBlocked):
        await sim.verify_pin("9999")
    assert await sim.pin_tries_left() == 0
    with pytest.raises(errors.CardBlocked):
        await sim.verify_pin(PIN)
    with pytest.raises(errors.PinRejected) as wrong_puk:
        await sim.unblock("87654321", "4321")
    if cla == CLA_ISO:
        assert wrong_puk.value.tries_left == 9
    await sim.unblock(PUK, "4321")
    await sim.verify_pin("4321")
    assert await sim.pin_tries_left() in (3, None)


async def test_pin_tries_left_after_verify_is_unknown_in_iso(sim: Sim) -> None:
    await sim.verify_pin(PIN)
    assert await sim.pin_tries_left() is None


async def test_pin_never_in_messages_or_logs(link: CardLink) -> None:
    secret = "73915"
    puk = "55512345"
    sim = Sim(link)
    texts: list[str] = []
    with structlog.testing.capture_logs() as logs:
        for attempt in (secret, secret):
            with pytest.raises(errors.PinRejected) as exc:
                await sim.verify_pin(attempt)
            texts.append(str(exc.value))
        with pytest.raises(errors.PinRejected) as puk_exc:
            await sim.unblock(puk, secret)
        texts.append(str(puk_exc.value))
        for bad in ("7391a", "123"):
            with pytest.raises(errors.InvalidRequest) as bad_exc:
                await sim.verify_pin(bad)
            texts.append(str(bad_exc.value))
        await sim.verify_pin(PIN)
    assert logs, "expected pin events to be logged"
    dumped = repr(logs) + " ".join(texts)
    for forbidden in (secret, puk, PIN, "7391a", "123", secret.encode().hex()):
        assert forbidden not in dumped


async def test_logical_channel_open_select_close(link: CardLink, sim: Sim) -> None:
    await sim.verify_pin(PIN)
    session = await sim.open_channel()
    assert session.channel == 1
    assert session.sync_cla == 0x81
    info = await session.select_path(ADN)
    assert info.record_count == 250
    await session.update_record(3, bytes(32))
    assert await session.read_record(3) == bytes(32)
    await session.close_channel()
    with pytest.raises(errors.CardStatusError):
        await session.read_record(3)


async def test_forced_class_and_channel_validation(link: CardLink) -> None:
    with pytest.raises(errors.InvalidRequest, match="class"):
        Sim(link, cla=0x80)
    with pytest.raises(errors.InvalidRequest, match="channel"):
        Sim(link, cla=CLA_GSM, channel=1)
    with pytest.raises(errors.InvalidRequest, match="channel"):
        Sim(link, channel=4)


async def test_read_binary_at_an_offset(link: CardLink) -> None:
    sim = Sim(link)
    await sim.select_path([0x3F00, 0x2FE2])
    whole = await sim.read_binary(0, 10)
    assert await sim.read_binary(2, 3) == whole[2:5]


async def test_read_binary_chunks_over_256() -> None:
    card = ScriptedCard(("00b0000000", "11" * 256 + "9000"), ("00b001002c", "22" * 44 + "9000"))
    async with InProcessLink(card) as link:
        data = await Sim(link, cla=CLA_ISO).read_binary(0, 300)
    assert data == b"\x11" * 256 + b"\x22" * 44


async def _send_first(sim: Sim, first: str) -> Sim | None:
    """Send `first` to the MF (`open_channel`: open one, returned) with the class unknown."""
    if first == "select":
        await sim.select(0x3F00)
    elif first == "select_quiet":
        await sim.select_quiet([0x3F00])
    else:
        return await sim.open_channel()
    return None


@pytest.mark.parametrize("first", ["select", "select_quiet", "open_channel"])
async def test_each_first_command_learns_the_class_from_6e00(first: str) -> None:
    """Whichever command goes first with CLA 00 learns the class: 6E00 means A0 for good."""
    gsm_mf = "0000 1000 3f00 01 0000000000 09 00 02 02 04 00 83 8a 83 8a"
    a0_mf = (("a0a40000023f00", "9f16"), ("a0c0000016", gsm_mf + "9000"))
    opening = {
        "select": (("00a40004023f00", "6e00"), *a0_mf),
        "select_quiet": (("00a4000c023f00", "6e00"), *a0_mf),
        "open_channel": (("0070000001", "6e00"),),
    }[first]
    card = ScriptedCard(*opening, *a0_mf)  # then a SELECT of the MF: in class A0 at once
    async with InProcessLink(card) as link:
        sim = Sim(link)
        opened = await _send_first(sim, first)
        assert opened is None or opened.cla == CLA_GSM
        assert sim.cla == CLA_GSM
        await sim.select(0x3F00)
    assert card.done


@pytest.mark.parametrize("first", ["select", "select_quiet", "open_channel"])
async def test_each_first_command_learns_class_00_from_any_other_answer(first: str) -> None:
    opening = {
        "select": (("00a40004023f00", "610a"), ("00c000000a", "62088202782183023f00" + "9000")),
        "select_quiet": (("00a4000c023f00", "9000"),),
        "open_channel": (("0070000001", "019000"),),
    }[first]
    card = ScriptedCard(*opening)
    async with InProcessLink(card) as link:
        sim = Sim(link)
        opened = await _send_first(sim, first)
        assert opened is None or opened.channel == 1
        assert sim.cla == CLA_ISO
    assert card.done
