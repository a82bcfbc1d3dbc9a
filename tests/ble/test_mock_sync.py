"""A whole sync over BLE: phone (bleak) -> mocked BlueZ -> PDA (D-Bus GATT app), TLS inside."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.e2e.harness import world
from tests.fixtures.bluez import PDA_ADAPTER, PDA_ADDRESS, BluezMock

LISTEN = f"ble:?adapter={PDA_ADAPTER}"


async def test_a_whole_sync_runs_over_ble_then_a_fast_one(bluez: BluezMock, tmp_path: Path) -> None:
    bluez.phone_and_pda()
    async with world(tmp_path) as w:
        w.card.write(1, "Alice", "+4911111")
        w.card.write(2, "Bob", "0612345679")
        pda = await w.add_pda("pda1", listen=LISTEN)
        assert w.urls["pda1"] == f"ble://{PDA_ADDRESS}"
        pda.add("Carol", "+4433333")

        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        assert first["mode"] == "slow"
        assert sorted(n for n, _ in pda.contacts().values()) == ["Alice", "Bob", "Carol"]
        assert sorted(n for n, _ in w.card.records().values()) == ["Alice", "Bob", "Carol"]

        w.card.write(1, "Alice (work)", "+4911111")
        second = await w.sync("pda1")
        assert second["ok"], second["error"]
        assert second["mode"] == "fast"
        assert second["to_pda"]["modified"] == 1


@pytest.mark.parametrize(
    "writes",
    [
        # The phone's writes: 1 HELLO, then its pairing hello (a ~420-byte frame, two
        # chunks at MTU 247): dropping after 2 cuts that frame in half.
        2,
        # A whole slow sync of 10 records is 15 writes: 10 lands inside the sync proper.
        10,
    ],
    ids=["inside-a-frame", "mid-sync"],
)
async def test_a_link_drop_fails_the_sync_cleanly_and_the_next_sync_converges(
    bluez: BluezMock, tmp_path: Path, writes: int
) -> None:
    bluez.phone_and_pda()
    async with world(tmp_path) as w:
        for n in range(1, 11):
            w.card.write(n, f"Person {n}", f"+49{n:06d}")
        pda = await w.add_pda("pda1", listen=LISTEN)
        bluez.drop_after_writes(writes)
        with capture_logs() as logs:
            dropped = await w.sync("pda1")
        assert not dropped["ok"]
        assert dropped["error"]["code"] == "pda_unreachable", dropped["error"]
        assert bluez.forwarded_writes() == writes
        if writes == 2:
            assert "dropped" in dropped["error"]["message"]
            failures = [e for e in logs if e["event"] == "sync connection failed"]
            assert any("dropped inside a frame" in e["error"] for e in failures), failures
        assert len(pda.contacts()) in (0, 10)  # never half a sync

        again = await w.sync("pda1")
        assert again["ok"], again["error"]
        assert len(pda.contacts()) == 10
        assert len(w.card.records()) == 10
