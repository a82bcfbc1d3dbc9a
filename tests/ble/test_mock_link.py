"""Both BLE ends through real D-Bus code: bleak -> mocked BlueZ -> the PDA's GATT application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.bluez import PDA_ADAPTER, PDA_ADDRESS, BluezMock
from transports import FrameLink, FramingError, Listener, TransportClosed, listen, open_transport

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
    other = await open_transport(f"{PDA_URL}?adapter=hci2", timeout=10)
    try:
        # The PDA ignores the second phone's HELLO; the first phone's traffic, which
        # BlueZ notifies to every subscriber, tells the second one it is not its link.
        await server.send(b"for the first phone")
        assert await phone.recv() == b"for the first phone"
        with pytest.raises(FramingError, match="before HELLO"):
            await other.recv()
        await other.close()  # the second phone leaves: the first one's link carries on
        await phone.send(b"still fine")
        assert await server.recv() == b"still fine"
    finally:
        await other.close()
        await phone.close()
        await server.close()
    # Its turn now: a fresh link from the second phone is served.
    other = await open_transport(f"{PDA_URL}?adapter=hci2", timeout=10)
    served = await pda.accept()
    await other.send(b"hello from phone 2")
    assert await served.recv() == b"hello from phone 2"
    await other.close()
    await served.close()
