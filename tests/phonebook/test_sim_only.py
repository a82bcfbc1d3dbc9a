"""PhonebookCard on a SIM-only card: class A0 only, no logical channels, everything on channel 0.

Real SIMs of the GSM era answer 6E00 to every CLA 0X command. The emulator speaks
both classes, so a thin wrapper plays such a card (the sync applet's 8X class
still answers, as a SIM-only card carrying it would).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cardio.codecs import AdnRecord
from cardio.inproc import InProcessLink
from cardio.localcopy import CardStateDB
from cardio.session import PhonebookCard
from cardio.sim import CLA_GSM, Sim
from cardio.sync import ChangeKind
from simcard import SimCard, new_memory_card

HOST = b"host-partner-001"
PDA = b"pda-partner-0001"


class SimOnly:
    """A GSM SIM: 6E00 to CLA 0X, the rest passed to the emulated card; counts APDUs by CLA."""

    def __init__(self, card: SimCard) -> None:
        self.card = card
        self.iso_attempts = 0

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def power_on(self) -> bytes:
        return self.card.power_on()

    def reset(self) -> bytes:
        return self.card.reset()

    def transmit(self, apdu: bytes) -> bytes:
        if apdu and apdu[0] & 0xF0 == 0x00:
            self.iso_attempts += 1
            return b"\x6e\x00"
        return self.card.transmit(apdu)


def rec(name: str) -> bytes:
    return AdnRecord(name, "+331").encode(18)


async def other_terminal(card: SimOnly, writes: dict[int, bytes]) -> None:
    link = InProcessLink(card, shared=True)
    await link.open()
    sim = Sim(link, cla=CLA_GSM)
    await sim.select_path([0x3F00, 0x7F10, 0x6F3A])
    await sim.verify_pin("0000")
    for n, raw in writes.items():
        await sim.update_record(n, raw)


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[CardStateDB]:
    db = CardStateDB(tmp_path / "cards.sqlite")
    yield db
    db.close()


async def open_card(card: SimOnly, state: CardStateDB) -> PhonebookCard:
    link = InProcessLink(card)
    await link.open()
    return await PhonebookCard.open(link, state, pin="0000", host_partner=HOST)


async def test_refresh_is_incremental_on_channel_0(state: CardStateDB) -> None:
    card = SimOnly(new_memory_card(records=20))
    await other_terminal(card, {1: rec("A"), 2: rec("B")})
    pb = await open_card(card, state)
    assert (await pb.refresh()).full
    await other_terminal(card, {2: rec("B2")})
    stats = await pb.refresh()
    assert not stats.full
    assert stats.changed == 1
    assert pb.cached()[2] == rec("B2")
    await pb.close()
    # Only the first SELECT tried class 00; nothing kept asking for channels after that.
    assert card.iso_attempts == 1


async def test_partner_session_on_channel_0_survives_a_refresh(state: CardStateDB) -> None:
    card = SimOnly(new_memory_card(records=20))
    await other_terminal(card, {1: rec("A")})
    pb = await open_card(card, state)
    first = await pb.new_sync(PDA)
    assert [(c.kind, c.record) for c in await pb.changes()] == [(ChangeKind.ADDED, 1)]
    # A host NEWSYNC now would replace the partner's session on the only channel:
    # the refresh must fall back to plain reads.
    stats = await pb.refresh()
    assert stats.full
    assert pb.cached()[1] == rec("A")
    await pb.write_record(5, rec("From PDA"))
    await pb.store_sync(first.proposed)  # the partner's session is still the open one
    second = await pb.new_sync(PDA)
    assert second.last == first.proposed
    assert second.changes == 0  # its own write is not reported back
    await pb.store_sync(second.proposed)
    # The host's own anchor was never stored over the partner's session: next refresh
    # still proves the copy (a full read once, since no host object exists yet).
    assert (await pb.refresh()).full
    assert not (await pb.refresh()).full
    await pb.close()
