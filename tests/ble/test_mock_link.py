"""Both BLE ends through real D-Bus code: bleak -> mocked BlueZ -> the PDA's GATT application."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from tests.fixtures.bluez import (
    PDA_ADAPTER,
    PDA_ADDRESS,
    PHONE_ADAPTER,
    BluezMock,
    close_bleak_manager,
    device_path,
)
from transports import (
    ConnectFailed,
    FrameLink,
    Listener,
    TransportClosed,
    listen,
    open_transport,
)
from transports.ble_peripheral import BlePeripheralListener

PDA_URL = f"ble://{PDA_ADDRESS}"


@pytest.fixture
async def pda(bluez: BluezMock) -> AsyncIterator[Listener]:
    bluez.phone_and_pda()
    listener = await listen(f"ble:?adapter={PDA_ADAPTER}")
    try:
        yield listener
    finally:
        await listener.close()


async def connect(listener: Listener) -> tuple[FrameLink, FrameLink]:
    phone = await open_transport(PDA_URL, timeout=10)
    return phone, await listener.accept()


async def test_the_listener_is_reached_at_its_adapter_address(pda: Listener) -> None:
    assert pda.url == PDA_URL


async def test_frames_cross_both_ways(pda: Listener) -> None:
    phone, server = await connect(pda)
    try:
        for size in [0, 1, 243, 244, 245, 5000, 70_000]:
            frame = os.urandom(size)
            await phone.send(frame)
            assert await server.recv() == frame
            await server.send(frame[::-1])
            assert await phone.recv() == frame[::-1]
    finally:
        await phone.close()
    with pytest.raises(TransportClosed):
        await server.recv()
    await server.close()


async def test_a_link_drop_mid_frame(bluez: BluezMock, pda: Listener) -> None:
    phone, server = await connect(pda)
    await phone.send(b"whole")
    assert await server.recv() == b"whole"
    bluez.drop_after_writes(4)
    with pytest.raises(TransportClosed, match="dropped"):
        await phone.send(os.urandom(20_000))
    with pytest.raises(TransportClosed, match="dropped inside a frame"):
        await server.recv()
    await phone.close()
    await server.close()


async def test_a_second_phone_waits_its_turn(bluez: BluezMock, pda: Listener) -> None:
    bluez.add_adapter("hci2", "phone2")
    bluez.add_device(PDA_ADDRESS, adapter="hci2", alias="simsync-pda", paired=True)
    phone, server = await connect(pda)
    other = asyncio.create_task(open_transport(f"{PDA_URL}?adapter=hci2", timeout=10))
    try:
        # The PDA ignores the second phone's HELLO, so its connect fails: at once on
        # the first phone's traffic, which BlueZ notifies to every subscriber (chunks
        # of a link that is not its own), or at the HELLO time-out if none came.
        while not other.done():
            await server.send(b"for the first phone")
            assert await phone.recv() == b"for the first phone"
        with pytest.raises(ConnectFailed, match="serving another phone"):
            await other
        await phone.send(b"still fine")  # the second phone left: the first one carries on
        assert await server.recv() == b"still fine"
    finally:
        other.cancel()
        await asyncio.gather(other, return_exceptions=True)
        await phone.close()
        await server.close()
    # Its turn now: a fresh link from the second phone is served.
    second = await open_transport(f"{PDA_URL}?adapter=hci2", timeout=10)
    served = await pda.accept()
    await second.send(b"hello from phone 2")
    assert await served.recv() == b"hello from phone 2"
    await second.close()
    await served.close()


async def test_closing_the_listener_disconnects_its_phones(bluez: BluezMock, pda: Listener) -> None:
    phone, server = await connect(pda)
    await pda.close()
    with pytest.raises(TransportClosed):
        await phone.recv()
    pda_seen_by_phone = device_path(PDA_ADDRESS, PHONE_ADAPTER)
    assert not bluez.get_property(pda_seen_by_phone, "org.bluez.Device1", "Connected")
    await phone.close()
    await server.close()


async def test_the_pda_registers_again_after_bluetoothd_restarts(
    bluez: BluezMock, pda: Listener
) -> None:
    assert isinstance(pda, BlePeripheralListener)
    phone, server = await connect(pda)
    with capture_logs() as logs:
        bluez.stop()  # bluetoothd gone: it forgets the application and the advertisement
        with pytest.raises(TransportClosed, match="bluetoothd went away"):
            await server.recv()
        await phone.close()
        await server.close()
        await close_bleak_manager()  # the phone's bleak state belonged to the old bluetoothd
        bluez.start()
        bluez.add_adapter(PHONE_ADAPTER)
        bluez.phone_and_pda()
        await asyncio.wait_for(pda.wait_registered(), timeout=10)
    events = [e["event"] for e in logs]
    assert "ble: bluetoothd went away; will register again when it returns" in events
    assert "ble: registered again with bluetoothd" in events
    phone, server = await connect(pda)
    await phone.send(b"after the restart")
    assert await server.recv() == b"after the restart"
    await phone.close()
    await server.close()
