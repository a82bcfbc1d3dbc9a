"""Chunking and flow control on a real BLE stack: bumble central and peripheral, MTU 23 and 247."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from tests.ble.bumble_rig import BumbleRig, bumble_rig, connected_pair
from transports import TransportClosed
from transports.ble_frames import DEFAULT_WINDOW
from transports.ble_link import ChunkLink


@pytest.fixture(params=[23, 247], ids=["mtu23", "mtu247"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[BumbleRig]:
    r = await bumble_rig(request.param)
    try:
        yield r
    finally:
        await r.close()


async def test_the_mtu_sets_the_chunk_size(rig: BumbleRig) -> None:
    central, peripheral = await connected_pair(rig)
    assert central.channel.chunk_size == peripheral.channel.chunk_size == rig.mtu - 3


async def test_frames_of_many_sizes_cross_both_ways_in_whole_chunks(rig: BumbleRig) -> None:
    central, peripheral = await connected_pair(rig)
    piece = rig.mtu - 4
    sizes = [0, 1, piece - 1, piece, piece + 1, 3 * piece, 2000, 100 * piece]
    for size in sizes:
        frame = os.urandom(size)
        await central.send(frame)
        assert await peripheral.recv() == frame
        await peripheral.send(frame[::-1])
        assert await central.recv() == frame[::-1]
    # Deterministic cost: each frame is ceil(size / piece) chunks (an empty one: 1).
    data_chunks = sum(max(1, -(-n // piece)) for n in sizes)
    assert central.channel.data_chunks_sent == data_chunks
    assert peripheral.channel.data_chunks_sent == data_chunks
    assert peripheral.chunks_in == central.chunks_out  # nothing lost, nothing invented


async def test_a_large_frame_streams_through_the_window(rig: BumbleRig) -> None:
    central, peripheral = await connected_pair(rig)
    frame = os.urandom(40 * rig.mtu)  # many windows' worth of chunks
    got, _ = await asyncio.gather(peripheral.recv(), central.send(frame))
    assert got == frame
    assert peripheral.channel.partial_bytes == 0


async def test_a_reader_that_stops_reading_stops_the_sender(rig: BumbleRig) -> None:
    rig.peripheral_max_frame = 100
    central, peripheral = await connected_pair(rig)
    frames = [bytes([i]) * 19 for i in range(60)]  # one chunk each at any MTU

    async def send_all() -> None:
        for f in frames:
            await central.send(f)

    sending = asyncio.create_task(send_all())
    await rig.backlog_over_limit.wait()  # the peripheral now holds more than it credits
    assert not sending.done()  # 60 frames do not fit in backlog + window: it waits
    got = [await peripheral.recv() for _ in frames]
    await sending
    assert got == frames
    # Never more unread than the limit plus what one window of credit let through.
    assert 100 < rig.max_backlog <= 100 + DEFAULT_WINDOW * 19


async def test_both_ends_send_at_once(rig: BumbleRig) -> None:
    central, peripheral = await connected_pair(rig)
    a = [os.urandom(n * 97 % (8 * rig.mtu)) for n in range(30)]
    b = [os.urandom(n * 89 % (8 * rig.mtu)) for n in range(30)]

    async def send_all(link: ChunkLink, frames: list[bytes]) -> None:
        for f in frames:
            await link.send(f)

    async def recv_all(link: ChunkLink, n: int) -> list[bytes]:
        return [await link.recv() for _ in range(n)]

    _, _, at_p, at_c = await asyncio.gather(
        send_all(central, a),
        send_all(peripheral, b),
        recv_all(peripheral, 30),
        recv_all(central, 30),
    )
    assert at_p == a
    assert at_c == b


async def test_a_clean_close_ends_the_peer_after_its_last_frame(rig: BumbleRig) -> None:
    central, peripheral = await connected_pair(rig)
    await central.send(b"last words")
    await central.close()
    assert await peripheral.recv() == b"last words"
    with pytest.raises(TransportClosed):
        await peripheral.recv()
    with pytest.raises(TransportClosed):
        await peripheral.send(b"too late")


async def test_a_disconnect_mid_frame_is_a_lost_link_on_the_receiver_too(rig: BumbleRig) -> None:
    central, peripheral = await connected_pair(rig)
    await central.send(b"whole")
    assert await peripheral.recv() == b"whole"
    rig.drop_after = rig.peripheral_chunks + 5  # the LL drops after 5 more chunks
    frame = os.urandom(30 * rig.mtu)
    with pytest.raises(TransportClosed, match="dropped"):
        await central.send(frame)
    with pytest.raises(TransportClosed, match="dropped inside a frame"):
        await peripheral.recv()
    assert 0 < peripheral.channel.partial_bytes < len(frame)
    with pytest.raises(TransportClosed):
        await central.recv()


async def test_a_disconnect_between_frames_is_transport_closed(rig: BumbleRig) -> None:
    central, peripheral = await connected_pair(rig)
    await peripheral.send(b"hello")
    assert await central.recv() == b"hello"
    await rig.peripheral_connection.disconnect()
    with pytest.raises(TransportClosed, match="dropped"):
        await central.recv()
    with pytest.raises(TransportClosed, match="dropped"):
        await peripheral.recv()
