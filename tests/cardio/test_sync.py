"""NEWSYNC / GETCHANGES / STORESYNC against the emulated card's sync applet."""

from __future__ import annotations

import pytest

import simcard
from cardio import errors
from cardio.inproc import InProcessLink
from cardio.link import CardLink
from cardio.sim import CLA_GSM, Sim
from cardio.sync import MAX_ENTRIES_PER_PAGE, CardSync, Change, ChangeKind
from tests.cardio.scripted import ScriptedCard

ADN = [0x3F00, 0x7F10, 0x6F3A]
PDA = b"pda-1"
# NEWSYNC(PDA, 6F3A) on channel 0, by hand: C0 05 "pda-1", C1 02 6F3A, Le 00.
NEWSYNC_PDA = "803a00000b c005 7064612d31 c102 6f3a 00"


async def _session(sim: Sim) -> tuple[Sim, CardSync]:
    await sim.verify_pin("0000")
    channel = await sim.open_channel()
    await channel.select_path(ADN)
    return channel, CardSync(channel)


def _record(i: int) -> bytes:
    # Alpha (18 bytes) + length, TON/NPI, 10 BCD bytes, CCP, EXT1 (14 bytes).
    return bytes([0x41 + i % 26]) + b"\xff" * 17 + bytes.fromhex("0481214365") + b"\xff" * 9


async def test_first_sync_then_incremental(sim: Sim, link: CardLink) -> None:
    channel, sync = await _session(sim)
    await channel.update_record(5, _record(5))
    await channel.update_record(9, _record(9))
    first = await sync.new_sync(PDA)
    assert first.last is None
    assert len(first.proposed) == 8
    assert first.changes == 2
    assert await sync.changes() == [Change(ChangeKind.ADDED, 5), Change(ChangeKind.ADDED, 9)]
    await sync.store_sync(first.proposed)

    # Someone else (channel 0) edits record 9 and empties record 5.
    await sim.select_path(ADN)
    await sim.update_record(9, _record(10))
    await sim.update_record(5, b"\xff" * 32)
    second = await sync.new_sync(PDA)
    assert second.last == first.proposed
    assert second.proposed != first.proposed
    assert await sync.changes() == [
        Change(ChangeKind.DELETED, 5),
        Change(ChangeKind.MODIFIED, 9),
    ]
    await sync.store_sync(second.proposed)
    third = await sync.new_sync(PDA)
    assert (third.last, third.changes) == (second.proposed, 0)
    before = link.apdu_count
    assert await sync.changes() == []
    assert link.apdu_count == before  # nothing to fetch, nothing sent
    await channel.close_channel()


async def test_sync_commands_use_the_session_channel(sim: Sim, link: CardLink) -> None:
    sent: list[bytes] = []
    original = link._exchange

    async def spy(apdu: bytes) -> bytes:
        sent.append(apdu)
        return await original(apdu)

    _channel, sync = await _session(sim)
    link._exchange = spy  # type: ignore[method-assign]
    result = await sync.new_sync(PDA)
    await sync.changes()
    await sync.store_sync(result.proposed)
    sync_apdus = [a for a in sent if a[1] in (0x3A, 0x3C, 0x3E)]
    assert [a[0] for a in sync_apdus] == [0x81, 0x81]  # no changes: no GETCHANGES
    # NEWSYNC's answer comes by GET RESPONSE on channel 1 (CLA 01), nothing else is sent.
    assert [a[:2].hex() for a in sent] == ["813a", "81c0", "813e"]


async def test_paging_over_250_changes(sim: Sim, link: CardLink) -> None:
    channel, sync = await _session(sim)
    for n in range(1, 251):
        await channel.update_record(n, _record(n))
    result = await sync.new_sync(PDA)
    assert result.changes == 250
    before = link.apdu_count
    changes = await sync.changes()
    assert changes == [Change(ChangeKind.ADDED, n) for n in range(1, 251)]
    # 250 entries in pages of 84, 84, 82; each page answered directly, no 6C retries.
    assert MAX_ENTRIES_PER_PAGE == 84
    assert link.apdu_count - before == 3
    await sync.store_sync(result.proposed)


async def test_wrong_sync_object_and_no_session(sim: Sim) -> None:
    _channel, sync = await _session(sim)
    with pytest.raises(errors.NoSession):
        await sync.changes()
    with pytest.raises(errors.NoSession):
        await sync.store_sync(bytes(8))
    result = await sync.new_sync(PDA)
    wrong = bytes(b ^ 0xFF for b in result.proposed)
    with pytest.raises(errors.WrongSyncObject):
        await sync.store_sync(wrong)
    await sync.store_sync(result.proposed)  # the session survived the bad STORESYNC
    with pytest.raises(errors.NoSession):
        await sync.store_sync(result.proposed)


async def test_sync_needs_the_pin(sim: Sim) -> None:
    await sim.select_path(ADN)
    with pytest.raises(errors.SecurityNotSatisfied):
        await CardSync(sim).new_sync(PDA)


async def test_unknown_database(sim: Sim) -> None:
    _channel, sync = await _session(sim)
    with pytest.raises(errors.FileNotFound):
        await sync.new_sync(PDA, db=0x6F99)


async def test_sync_unsupported_on_a_plain_card() -> None:
    card = simcard.new_memory_card(sync_applet=False)
    async with InProcessLink(card) as link:
        sim = Sim(link)
        _channel, sync = await _session(sim)
        with pytest.raises(errors.SyncUnsupported) as exc:
            await sync.new_sync(PDA)
        assert exc.value.sw == 0x6D00
    card.close()


async def test_sync_unsupported_6e00_from_a_gsm_only_card() -> None:
    card = ScriptedCard((NEWSYNC_PDA, "6e00"))
    async with InProcessLink(card) as link:
        with pytest.raises(errors.SyncUnsupported) as exc:
            await CardSync(Sim(link, cla=CLA_GSM)).new_sync(PDA)
    assert exc.value.sw == 0x6E00


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ("c3020102c4020000", "proposed"),
        ("c308" + "00" * 8, "change count"),
        ("c20300aabb c308" + "00" * 8 + "c4020000", "last sync object"),
        ("c3", "truncated"),
    ],
)
async def test_malformed_newsync_answer(answer: str, fragment: str) -> None:
    data = bytes.fromhex(answer)
    card = ScriptedCard(
        (NEWSYNC_PDA, f"61{len(data):02x}"),
        (f"80c00000{len(data):02x}", data.hex() + "9000"),
    )
    async with InProcessLink(card) as link:
        with pytest.raises(errors.MalformedResponse, match=fragment):
            await CardSync(Sim(link, cla=0x00)).new_sync(PDA)


@pytest.mark.parametrize(
    ("page", "fragment"),
    [("00010100", "2 \\+ 3n"), ("0001090001", "entry type 09"), ("0003010001", "differs")],
)
async def test_malformed_getchanges_page(page: str, fragment: str) -> None:
    newsync = "c308" + "11" * 8 + "c4020001"
    card = ScriptedCard(
        (NEWSYNC_PDA, "6110"),
        ("80c0000010", newsync + "9000"),
        ("803c000005", page + "9000"),
    )
    async with InProcessLink(card) as link:
        sync = CardSync(Sim(link, cla=0x00))
        await sync.new_sync(PDA)
        with pytest.raises(errors.MalformedResponse, match=fragment):
            await sync.changes()


async def test_bad_sync_arguments_send_nothing(sim: Sim, link: CardLink) -> None:
    sync = CardSync(sim)
    with pytest.raises(errors.InvalidRequest, match="partner"):
        await sync.new_sync(b"")
    with pytest.raises(errors.InvalidRequest, match="partner"):
        await sync.new_sync(bytes(17))
    with pytest.raises(errors.InvalidRequest, match="FID"):
        await sync.new_sync(PDA, db=0x10000)
    with pytest.raises(errors.InvalidRequest, match="8 needed"):
        await sync.store_sync(bytes(7))
    assert link.apdu_count == 0
