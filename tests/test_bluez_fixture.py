"""The BlueZ mock itself: what bleak sees through it (the fixture other tests stand on)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from tests.fixtures.bluez import BluezMock, device_path

ADDR = "AA:BB:CC:DD:EE:01"
PATTERN = OrPattern(0, AdvertisementDataType.COMPLETE_LIST_SERVICE_UUID128, bytes(16))


def _scanner(queue: asyncio.Queue[tuple[str, int]], mode: str) -> BleakScanner:
    def seen(device: BLEDevice, adv: AdvertisementData) -> None:
        queue.put_nowait((device.details["path"], adv.rssi))

    if mode == "passive":
        return BleakScanner(
            seen, scanning_mode="passive", bluez={"adapter": "hci0", "or_patterns": [PATTERN]}
        )
    return BleakScanner(seen, scanning_mode="active", bluez={"adapter": "hci0"})


@pytest.mark.parametrize("mode", ["passive", "active"])
async def test_bleak_hears_rssi_changes(bluez: BluezMock, mode: str) -> None:
    bluez.add_device(ADDR, paired=True)
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    scanner = _scanner(queue, mode)
    await scanner.start()
    try:
        if mode == "passive":
            assert len(bluez.monitors()) == 1
            assert not bluez.discovering()
        else:
            assert bluez.discovering()
        bluez.advertise(ADDR, -42)
        assert await asyncio.wait_for(queue.get(), 10) == (device_path(ADDR), -42)
    finally:
        await scanner.stop()
    assert bluez.monitors() == []
    assert not bluez.discovering()


async def test_without_the_monitor_api_passive_scanning_fails(
    start_bluez: Callable[..., BluezMock],
) -> None:
    bluez = start_bluez(enable_monitor_api=False)
    bluez.add_adapter()
    scanner = _scanner(asyncio.Queue(), "passive")
    with pytest.raises(BleakError):
        await scanner.start()


async def test_an_unpowered_adapter_refuses_discovery(bluez: BluezMock) -> None:
    bluez.set_powered(False)
    scanner = _scanner(asyncio.Queue(), "active")
    with pytest.raises(BleakError, match="NotReady"):
        await scanner.start()
