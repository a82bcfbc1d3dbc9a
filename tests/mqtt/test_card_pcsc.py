"""The daemon with a real reader: pcscd + vpcd + `simsync card serve`, card pulled mid-sync."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest

from syncproto import Prepared
from tests.e2e.harness import World
from tests.fixtures.mosquitto import Broker
from tests.fixtures.pcsc import READERS
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, Gate, mqtt_table, write_config

pytestmark = pytest.mark.pcsc

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
RESULT = f"{ROOT}/sync/result"
EVENT = f"{ROOT}/event"


def reader_config(world: World, *tables: str) -> Any:
    """The World's config with the card in pcscd's first vpcd reader, not in-process."""
    path = write_config(world, *tables)
    text = path.read_text().replace(f'image = "{world.image}"', f'reader = "{READERS[0]}"')
    path.write_text(text)
    return path


async def test_card_pulled_mid_sync_commits_nothing_and_reinsertion_syncs_fast(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    serve_card: Callable[..., Any],
) -> None:
    broker = mosquitto()
    served = serve_card(world.image)
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    config = reader_config(
        world, mqtt_table(broker, world.tmp), "[triggers]\non_card_inserted = true\n"
    )
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        proc = daemon(config)
        # The first online status may say "unknown": the broker session can come up before
        # pcscd has told the card watch anything. The daemon must then say "present".
        present = await obs.expect_msg(STATUS, state="online", card="present")
        earlier = obs.messages[: obs.messages.index(present)]
        before = [m.json() for m in earlier if m.topic == STATUS]
        assert all(m["card"] == "unknown" for m in before if m.get("state") == "online"), before
        # Started with the card in: the insertion trigger syncs (the first time: slow).
        first = await obs.expect(RESULT, pda="pda1")
        assert first["ok"], first["error"]
        assert first["id"].startswith("insert-")
        assert first["mode"] == "slow"

        pda.add("Zoe", "+4912")
        gate = Gate(pda, Prepared)
        obs.publish(REQUEST, {"id": "cut"})
        async with asyncio.timeout(60):
            await gate.reached.wait()  # Zoe is on the card; STORESYNC has not gone out
        await asyncio.to_thread(served.kill)  # the card is pulled
        cut = await obs.expect(RESULT, id="cut")
        assert cut["ok"] is False
        assert cut["error"]["code"] == "no_card"
        await obs.expect(EVENT, type="card-removed")
        await obs.expect(STATUS, card="absent")
        gate.release()

        await asyncio.to_thread(served.start)  # the same card back in
        await obs.expect(EVENT, type="card-inserted")
        again = await obs.expect(RESULT, pda="pda1")
        assert again["id"].startswith("insert-")
        assert again["ok"], again["error"]
        # Nothing was committed by the cut sync, and nothing was lost: a fast sync that
        # finds Zoe on the card and matches her instead of adding her twice.
        assert again["mode"] == "fast"
        assert again["to_pda"]["added"] == 0
        names = sorted(n for n, _ in pda.contacts().values())
        assert names == ["Carol", "Zoe"]

        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
        await obs.expect(STATUS, state="offline")
    finally:
        obs.close()
