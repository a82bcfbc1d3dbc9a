"""The phone's own writes move its own local-copy anchor (issue 9), and nothing is lost.

After a partner's STORESYNC, ``settle_copy`` saves what the phone wrote (no APDU);
the next refresh moves the host's anchor over those records without reading them
back, proven by the partner's change list; a record another terminal wrote at any
moment around it is read, at that refresh or the one after. Each case ends by
comparing the copy a later connection proves with the card itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cardio.codecs import AdnRecord
from cardio.inproc import InProcessLink
from cardio.localcopy import CardStateDB
from cardio.session import PhonebookCard
from cardio.sim import Sim
from simcard import SimCard, new_memory_card
from tests.phonebook.test_session import HOST, PDA, other_terminal_writes

RECORDS = 40
INS_NEWSYNC = 0x3A
INS_GET_RESPONSE = 0xC0
INS_READ_RECORD = 0xB2


def rec(name: str) -> bytes:
    return AdnRecord(name, "+4912345").encode(18)


class Meddling(InProcessLink):
    """A link that lets another terminal write right after the next NEWSYNC it carries
    (once its answer is fetched: any command between would discard it), and notes the
    records it reads."""

    def __init__(self, card: SimCard) -> None:
        super().__init__(card)
        self.after_newsync: dict[int, bytes] = {}
        self._armed = False
        self.read: list[int] = []

    async def _exchange(self, apdu: bytes) -> bytes:
        if self._armed and apdu[1] != INS_GET_RESPONSE:
            writes, self.after_newsync, self._armed = self.after_newsync, {}, False
            await other_terminal_writes(self.card, writes)  # type: ignore[arg-type]
        self._armed = self._armed or bool(self.after_newsync and apdu[1] == INS_NEWSYNC)
        if apdu[1] == INS_READ_RECORD:
            self.read.append(apdu[2])
        return await super()._exchange(apdu)


async def open_card(link: InProcessLink, state: CardStateDB) -> PhonebookCard:
    await link.open()
    return await PhonebookCard.open(link, state, pin="0000", host_partner=HOST)


async def card_records(card: SimCard) -> dict[int, bytes]:
    """EF.ADN as the card holds it, read by another terminal on channel 0."""
    link = InProcessLink(card, shared=True)
    await link.open()
    sim = Sim(link)
    await sim.select_path([0x3F00, 0x7F10, 0x6F3A])
    await sim.verify_pin("0000")
    return {n: await sim.read_record(n) for n in range(1, RECORDS + 1)}


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[CardStateDB]:
    db = CardStateDB(tmp_path / "cards.sqlite")
    yield db
    db.close()


async def slow_sync_writing(pb: PhonebookCard, writes: dict[int, bytes]) -> bytes:
    """A slow sync's card side: NEWSYNC, refresh, the PDA's writes, STORESYNC."""
    ns = await pb.new_sync(PDA)
    await pb.refresh()
    for n, raw in writes.items():
        await pb.write_record(n, raw)
    return ns.proposed


async def settle(pb: PhonebookCard) -> int:
    """``settle_copy``, returning the APDUs it sent."""
    before = pb.link.apdu_count
    await pb.settle_copy()
    return pb.link.apdu_count - before


async def test_own_writes_are_not_read_again(state: CardStateDB) -> None:
    card = new_memory_card(records=RECORDS)
    pb = await open_card(InProcessLink(card), state)
    proposed = await slow_sync_writing(pb, {n: rec(f"From PDA {n}") for n in range(1, 31)})
    await pb.store_sync(proposed)
    assert await settle(pb) == 0  # saved, nothing sent
    await pb.close()

    # The next refresh -- here beside another session of the partner, as in a slow sync --
    # proves the thirty by the partner's change list: not one READ.
    link = Meddling(card)
    later = await open_card(link, state)
    ns = await later.new_sync(PDA)
    stats = await later.refresh()
    assert (stats.full, stats.changed) == (False, 30)
    assert link.read == []
    # MANAGE CHANNEL; the host's NEWSYNC + GET RESPONSE, GETCHANGES; the partner's
    # NEWSYNC + GET RESPONSE on channel 0; the host's STORESYNC.
    assert stats.apdus == 7
    assert later.cached() == await card_records(card)
    await later.store_sync(ns.proposed)  # the partner's session was left alone
    await later.close()
    again = await open_card(InProcessLink(card), state)
    assert (await again.refresh()).changed == 0  # the host's anchor moved over them
    await again.close()


@pytest.mark.parametrize(
    "when", ["during the session", "after the commit", "between the two NEWSYNCs"]
)
async def test_a_record_another_terminal_wrote_meanwhile_is_never_lost(
    state: CardStateDB, when: str
) -> None:
    card = new_memory_card(records=RECORDS)
    pb = await open_card(InProcessLink(card), state)
    proposed = await slow_sync_writing(pb, {n: rec(f"From PDA {n}") for n in range(1, 11)})
    # Another terminal overwrites one record the phone wrote and fills one it did not.
    theirs = {3: rec("Other terminal"), 20: rec("Also theirs")}
    if when == "during the session":
        await other_terminal_writes(card, theirs)
    await pb.store_sync(proposed)
    await pb.settle_copy()
    await pb.close()
    if when == "after the commit":
        await other_terminal_writes(card, theirs)

    link = Meddling(card)
    if when == "between the two NEWSYNCs":
        link.after_newsync = theirs  # after the host's NEWSYNC, before the partner's
    later = await open_card(link, state)
    stats = await later.refresh()
    assert not stats.full
    # A write after the host's NEWSYNC stays listed for the host: the next refresh reads it.
    await later.refresh()
    assert later.cached() == await card_records(card)
    assert later.cached()[3] == rec("Other terminal")
    assert later.cached()[20] == rec("Also theirs")
    # Only what the other terminal wrote is read, never the phone's own nine others.
    assert set(link.read) <= {3, 20}
    await later.close()


async def test_no_refresh_in_the_session_and_the_writes_are_read(state: CardStateDB) -> None:
    # A fast sync's two writes: saved, and too few to be worth the partner's list.
    card = new_memory_card(records=RECORDS)
    pb = await open_card(InProcessLink(card), state)
    await pb.refresh()
    ns = await pb.new_sync(PDA)
    for n in (1, 2):
        await pb.write_record(n, rec(f"Fast {n}"))
    await pb.store_sync(ns.proposed)
    assert await settle(pb) == 0
    await pb.close()

    later = await open_card(InProcessLink(card), state)
    assert later.cached_or_none() == await card_records(card)  # the writes were saved
    stats = await later.refresh()
    assert (stats.full, stats.changed) == (False, 2)
    await later.close()


class Counting(InProcessLink):
    """Counts the READ RECORDs that reach the card."""

    reads = 0

    async def _exchange(self, apdu: bytes) -> bytes:
        self.reads += apdu[1] == INS_READ_RECORD
        return await super()._exchange(apdu)


async def fast_sync_writing(card: SimCard, state: CardStateDB, writes: dict[int, bytes]) -> None:
    """A fast sync's card side, as the runner drives it: no refresh of the copy."""
    pb = await open_card(InProcessLink(card), state)
    pb.cached_or_none()
    ns = await pb.new_sync(PDA)
    for change in await pb.changes():
        await pb.read_record(change.record)
    for n, raw in writes.items():
        await pb.write_record(n, raw)
    await pb.store_sync(ns.proposed)
    assert await settle(pb) == 0
    await pb.close()


async def test_writes_of_fast_syncs_are_proven_by_the_partner_at_the_next_refresh(
    state: CardStateDB,
) -> None:
    card = new_memory_card(records=RECORDS)
    first = await open_card(InProcessLink(card), state)
    await first.refresh()
    await first.close()
    await fast_sync_writing(card, state, {n: rec(f"Fast {n}") for n in range(1, 7)})
    # Another terminal overwrites record 2: the next session lists and reads it.
    await other_terminal_writes(card, {2: rec("Theirs 2")})
    await fast_sync_writing(card, state, {n: rec(f"Fast {n}") for n in range(7, 10)})
    # ... and record 4 after that session's commit.
    await other_terminal_writes(card, {4: rec("Theirs 4")})

    link = Counting(card)
    later = await open_card(link, state)
    stats = await later.refresh()
    assert (stats.full, stats.changed) == (False, 9)
    assert link.reads == 2  # records 2 and 4; the PDA's list proves the other seven
    assert later.cached() == await card_records(card)
    await later.close()
