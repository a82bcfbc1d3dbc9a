"""PhonebookCard over the in-process emulated card: local copy, partner sessions, plain SIMs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cardio.codecs import AdnRecord
from cardio.errors import PinRejected, WrongSyncObject
from cardio.inproc import InProcessLink
from cardio.localcopy import CardStateDB
from cardio.session import PhonebookCard
from cardio.sim import Sim
from cardio.sync import ChangeKind
from simcard import SimCard, new_memory_card

HOST = b"host-partner-001"
PDA = b"pda-partner-0001"
RECORDS = 40


def rec(name: str, number: str = "+4912345") -> bytes:
    return AdnRecord(name, number).encode(18)


async def open_card(card: SimCard, state: CardStateDB, pin: str | None = "0000") -> PhonebookCard:
    link = InProcessLink(card)
    await link.open()
    return await PhonebookCard.open(link, state, pin=pin, host_partner=HOST)


async def other_terminal_writes(card: SimCard, writes: dict[int, bytes]) -> None:
    """A second terminal (channel 0) writes records behind the phone's back."""
    link = InProcessLink(card, shared=True)
    await link.open()
    sim = Sim(link)
    await sim.select_path([0x3F00, 0x7F10, 0x6F3A])
    await sim.verify_pin("0000")
    for n, raw in writes.items():
        await sim.update_record(n, raw)


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[CardStateDB]:
    db = CardStateDB(tmp_path / "cards.sqlite")
    yield db
    db.close()


@pytest.mark.parametrize("applet", [True, False])
async def test_refresh_reads_only_what_changed(state: CardStateDB, applet: bool) -> None:
    card = new_memory_card(records=RECORDS, sync_applet=applet)
    await other_terminal_writes(card, {n: rec(f"N{n}") for n in range(1, 11)})
    pb = await open_card(card, state)
    first = await pb.refresh()
    assert first.full
    assert pb.change_detection is applet
    assert pb.cached()[3] == rec("N3")
    assert pb.cached()[20] == b"\xff" * 32

    again = await pb.refresh()
    await other_terminal_writes(card, {2: rec("Changed"), 30: rec("New")})
    third = await pb.refresh()
    assert pb.cached()[2] == rec("Changed")
    assert pb.cached()[30] == rec("New")
    if applet:
        # NEWSYNC + GETCHANGES + STORESYNC (each with its GET RESPONSE where case 4).
        assert not again.full
        assert again.changed == 0
        assert not third.full
        assert third.changed == 2
        assert third.apdus < 12 < first.apdus
    else:
        assert again.full
        assert third.full


async def test_local_copy_survives_a_restart(tmp_path: Path) -> None:
    card = new_memory_card(records=RECORDS)
    await other_terminal_writes(card, {1: rec("A")})
    db = CardStateDB(tmp_path / "cards.sqlite")
    pb = await open_card(card, db)
    assert (await pb.refresh()).full
    db.close()
    await other_terminal_writes(card, {5: rec("B")})
    db = CardStateDB(tmp_path / "cards.sqlite")
    pb = await open_card(card, db)
    stats = await pb.refresh()
    assert not stats.full
    assert stats.changed == 1
    assert pb.cached()[1] == rec("A")
    assert pb.cached()[5] == rec("B")
    db.close()


async def test_a_foreign_copy_or_lost_anchor_means_a_full_read(tmp_path: Path) -> None:
    card = new_memory_card(records=RECORDS)
    db = CardStateDB(tmp_path / "cards.sqlite")
    pb = await open_card(card, db)
    await pb.refresh()
    db.close()
    # A fresh state dir (another phone): the card has an object for HOST, the copy is gone.
    other = CardStateDB(tmp_path / "other.sqlite")
    pb2 = await open_card(card, other)
    assert (await pb2.refresh()).full
    other.close()


@pytest.mark.parametrize("applet", [True, False])
async def test_partner_session_own_writes_are_not_reported_back(
    state: CardStateDB, applet: bool
) -> None:
    card = new_memory_card(records=RECORDS, sync_applet=applet)
    await other_terminal_writes(card, {1: rec("A"), 2: rec("B")})
    pb = await open_card(card, state)
    first = await pb.new_sync(PDA)
    assert first.last is None
    listed = await pb.changes()
    assert [(c.kind, c.record) for c in listed] == [(ChangeKind.ADDED, 1), (ChangeKind.ADDED, 2)]
    await pb.write_record(3, rec("From PDA"))
    with pytest.raises(WrongSyncObject):
        await pb.store_sync(bytes(8) if first.proposed != bytes(8) else b"\x01" * 8)
    await pb.store_sync(first.proposed)

    await other_terminal_writes(card, {2: b"\xff" * 32, 4: rec("D")})
    second = await pb.new_sync(PDA)
    assert second.last == first.proposed
    listed = await pb.changes()
    assert [(c.kind, c.record) for c in listed] == [
        (ChangeKind.DELETED, 2),
        (ChangeKind.ADDED, 4),
    ]
    await pb.store_sync(second.proposed)
    third = await pb.new_sync(PDA)
    assert third.changes == 0
    await pb.store_sync(third.proposed)
    await pb.close()


async def test_free_record_checks_the_card_not_just_the_copy(state: CardStateDB) -> None:
    card = new_memory_card(records=5)
    first = await open_card(card, state)
    await first.refresh()
    await first.close()
    # A later connection with the saved copy: another terminal filled record 1 since.
    await other_terminal_writes(card, {1: rec("Sneaky")})
    pb = await open_card(card, state)
    assert pb.cached_or_none() is not None
    assert await pb.free_record(set()) == 2
    assert await pb.free_record({2, 3}) == 4
    await other_terminal_writes(card, {n: rec("X") for n in range(2, 6)})
    assert await pb.free_record(set()) is None


async def test_after_a_refresh_one_newsync_checks_every_free_record(state: CardStateDB) -> None:
    card = new_memory_card(records=RECORDS)
    await other_terminal_writes(card, {n: rec(f"N{n}") for n in range(1, 11)})
    pb = await open_card(card, state)
    await pb.new_sync(PDA)
    await pb.refresh()
    # Another terminal fills two records the copy shows free, after the refresh.
    await other_terminal_writes(card, {11: rec("Sneaky"), 13: rec("Sneaky too")})
    before = pb.link.apdu_count
    assert await pb.free_record(set()) == 12
    # NEWSYNC + GET RESPONSE + GETCHANGES + 2 READs, then no READ per free record.
    assert pb.link.apdu_count - before == 5
    assert await pb.free_record({12}) == 14
    assert await pb.free_record({12, 14}) == 15
    assert pb.link.apdu_count - before == 5
    assert pb.cached()[13] == rec("Sneaky too")
    await pb.close()


async def test_wrong_pin_reports_tries_and_is_not_retried(state: CardStateDB) -> None:
    card = new_memory_card(records=5)
    with pytest.raises(PinRejected) as exc:
        await open_card(card, state, pin="9999")
    assert exc.value.tries_left == 2
    assert "9999" not in str(exc.value)


async def test_two_interrupted_refreshes_in_a_row_still_leave_a_provable_copy(
    state: CardStateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cardio.sync import CardSync

    card = new_memory_card(records=RECORDS)
    await other_terminal_writes(card, {1: rec("A")})
    pb = await open_card(card, state)
    await pb.refresh()

    class CrashError(Exception):
        pass

    def crash(*_a: object, **_k: object) -> None:
        raise CrashError

    real_store = CardSync.store_sync

    async def stored_then_crash(self: CardSync, obj: bytes) -> None:
        await real_store(self, obj)
        raise CrashError

    # 1: the card takes STORESYNC, the phone dies before it records anything more.
    with monkeypatch.context() as m:
        m.setattr(CardSync, "store_sync", stored_then_crash)
        with pytest.raises(CrashError):
            await pb.refresh()
    # 2: the next refresh proves that object, then dies before its own STORESYNC.
    with monkeypatch.context() as m:
        m.setattr(CardSync, "store_sync", crash)
        with pytest.raises(CrashError):
            await pb.refresh()
    # 3: still incremental: the copy was saved against the object the card proved.
    stats = await pb.refresh()
    assert not stats.full
    await pb.close()
