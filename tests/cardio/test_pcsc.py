"""PcscLink and CardEvents through real pcscd + vpcd + ``simsync card serve``.

Run inside the test namespace (see tests/fixtures/pcsc.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import simcard
from cardio import errors
from cardio.events import CardEvent, CardEvents, EventKind
from cardio.pcsc import PcscLink
from cardio.sim import Sim
from cardio.sync import CardSync
from tests.fixtures.pcsc import READERS, Pcscd, ServedCard

pytestmark = pytest.mark.pcsc

ADN = [0x3F00, 0x7F10, 0x6F3A]
Serve = Callable[..., ServedCard]


async def _next(events: CardEvents) -> CardEvent:
    async with asyncio.timeout(10):
        return await anext(events)


async def test_open_transmit_close(serve_card: Serve) -> None:
    serve_card()
    link = PcscLink("PCD 00 00")
    async with link:
        assert link.reader_name == READERS[0]
        assert link.atr == simcard.ATR
        sim = Sim(link)
        assert await sim.iccid() == simcard.DEFAULT_ICCID
        await sim.verify_pin("0000")
        info = await sim.select_path(ADN)
        assert info.record_count == 250
        await sim.update_record(2, bytes(32))
        assert await sim.read_record(2) == bytes(32)
        assert link.apdu_count > 0
    assert not link.is_open
    with pytest.raises(errors.LinkClosed):
        await sim.read_record(2)


async def test_reader_by_substring_errors(serve_card: Serve) -> None:
    serve_card()
    with pytest.raises(errors.AmbiguousReader, match="2 readers match 'Virtual PCD'"):
        await PcscLink("Virtual PCD").open()
    with pytest.raises(errors.NoReader, match="no reader matches 'Nokia'") as exc:
        await PcscLink("Nokia").open()
    assert "Virtual PCD 00 00" in str(exc.value)
    with pytest.raises(errors.NoCard):
        await PcscLink(READERS[1]).open()


async def test_reset_ends_the_sync_session(serve_card: Serve) -> None:
    serve_card()
    async with PcscLink(READERS[0]) as link:
        sim = Sim(link)
        await sim.verify_pin("0000")
        channel = await sim.open_channel()
        await channel.select_path(ADN)
        sync = CardSync(channel)
        result = await sync.new_sync(b"pda")
        await link.reset()
        with pytest.raises(errors.CardStatusError):  # channel 1 is gone after a reset
            await sync.store_sync(result.proposed)


async def test_events_insert_and_remove(serve_card: Serve) -> None:
    async with CardEvents(reader=READERS[0], include_present=False) as events:
        served = await asyncio.to_thread(serve_card)
        inserted = await _next(events)
        assert inserted == CardEvent(EventKind.CARD_INSERTED, READERS[0], simcard.ATR)
        served.kill()
        assert await _next(events) == CardEvent(EventKind.CARD_REMOVED, READERS[0])


async def test_events_start_with_the_present_state(serve_card: Serve) -> None:
    serve_card(reader=1)
    async with CardEvents(reader="Virtual PCD") as events:
        first = [await _next(events) for _ in range(3)]
    assert first == [
        CardEvent(EventKind.READER_ADDED, READERS[0]),
        CardEvent(EventKind.READER_ADDED, READERS[1]),
        CardEvent(EventKind.CARD_INSERTED, READERS[1], simcard.ATR),
    ]


async def test_closing_a_waiting_stream_is_prompt(pcscd: object) -> None:
    events = CardEvents(include_present=False, wait_seconds=60)
    await events.start()
    waiter = asyncio.create_task(anext(events))
    await asyncio.sleep(0)  # let the waiter start its blocking wait
    async with asyncio.timeout(20):  # prompt next to the 60 s wait, loaded or not
        await events.aclose()
        with pytest.raises(StopAsyncIteration):
            await waiter
        # Joins every executor thread: hangs (and times out) if a wait were still blocked.
        await asyncio.get_running_loop().shutdown_default_executor()


async def test_cancelling_a_waiting_consumer_is_prompt(pcscd: object) -> None:
    async with CardEvents(include_present=False, wait_seconds=60) as events:
        waiter = asyncio.create_task(anext(events))
        await asyncio.sleep(0)
        waiter.cancel()
        async with asyncio.timeout(20):  # prompt next to the 60 s wait, loaded or not
            with pytest.raises(asyncio.CancelledError):
                await waiter
    async with asyncio.timeout(20):  # prompt next to the 60 s wait, loaded or not
        await asyncio.get_running_loop().shutdown_default_executor()


async def test_card_removed_in_the_middle_of_a_read_loop(serve_card: Serve) -> None:
    served = serve_card()
    async with PcscLink(READERS[0]) as link:
        sim = Sim(link)
        await sim.verify_pin("0000")
        await sim.select_path(ADN)
        reads = 0

        async def read_all() -> None:
            nonlocal reads
            for n in range(1, 251):
                if n == 20:
                    served.kill()
                await sim.read_record(n)
                reads += 1

        with pytest.raises(errors.CardRemoved):
            await read_all()
        assert 19 <= reads < 250


async def test_pcscd_going_away_is_reader_gone(serve_card: Serve, pcscd: Pcscd) -> None:
    serve_card()
    async with PcscLink(READERS[0]) as link, CardEvents(include_present=False) as events:
        sim = Sim(link)
        await sim.select(0x3F00)
        waiter = asyncio.create_task(anext(events))
        await asyncio.to_thread(pcscd.restart)
        with pytest.raises(errors.ReaderGone):
            await sim.select(0x3F00)
        async with asyncio.timeout(10):
            with pytest.raises(errors.ReaderGone):
                await waiter
