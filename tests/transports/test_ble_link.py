"""ChunkLink, the asyncio driver of the BLE framing, over an in-memory 'radio'."""

from __future__ import annotations

import pytest

from transports import FramingError, TransportClosed, TransportTimeout
from transports.ble_frames import Kind
from transports.ble_link import ChunkLink


def pair(chunk: int = 20) -> tuple[ChunkLink, ChunkLink]:
    ends: list[ChunkLink] = []

    async def to_b(data: bytes) -> None:
        ends[1].feed(data)

    async def to_a(data: bytes) -> None:
        ends[0].feed(data)

    ends += [ChunkLink(to_b, chunk, "b"), ChunkLink(to_a, chunk, "a")]
    for end in ends:
        end.start()
    return ends[0], ends[1]


async def test_frames_cross_and_close_ends_the_peer() -> None:
    a, b = pair()
    await a.send(bytes(1000))
    assert await b.recv() == bytes(1000)
    await a.close()
    with pytest.raises(TransportClosed, match="closed the link"):
        await b.recv()
    assert b.ended
    await b.close()
    await a.close()  # idempotent


async def test_a_peer_that_closes_inside_a_frame_broke_the_framing() -> None:
    a, b = pair()
    await a.send(b"x")
    assert await b.recv() == b"x"
    b.feed(bytes([Kind.MORE << 5 | 1]) + b"half")
    b.feed(bytes([Kind.CLOSE << 5]))
    with pytest.raises(FramingError, match="inside a frame after 4 bytes"):
        await b.recv()
    await a.close()
    await b.close()


async def test_a_rule_breaking_chunk_fails_the_link_for_good() -> None:
    a, b = pair()
    await a.send(b"x")
    assert await b.recv() == b"x"
    b.feed(b"")
    for _ in range(2):
        with pytest.raises(FramingError, match="broke the BLE framing"):
            await b.recv()
    with pytest.raises(FramingError):
        await b.send(b"y")
    await a.close()
    await b.close()


async def test_a_failing_radio_is_a_lost_link() -> None:
    async def broken(data: bytes) -> None:
        raise OSError("adapter removed")

    link = ChunkLink(broken, 20, "pda")
    link.start()
    with pytest.raises(TransportClosed, match="adapter removed"):
        await link.send(b"x")
    with pytest.raises(TransportClosed, match="adapter removed"):
        await link.recv()
    await link.close()


async def test_oversized_send_is_refused_and_the_link_goes_on() -> None:
    a, b = pair()
    with pytest.raises(FramingError, match="exceeds the maximum"):
        await a.send(bytes(a.max_frame + 1))
    await a.send(b"fine")
    assert await b.recv() == b"fine"
    await a.close()
    await b.close()


async def test_the_chunk_size_follows_the_mtu_between_frames() -> None:
    mtu = [23]
    seen: list[int] = []
    ends: list[ChunkLink] = []

    async def to_b(data: bytes) -> None:
        seen.append(len(data))
        ends[1].feed(data)

    async def to_a(data: bytes) -> None:
        ends[0].feed(data)

    ends += [
        ChunkLink(to_b, 20, "b", chunk_size_now=lambda: mtu[0] - 3),
        ChunkLink(to_a, 244, "a"),
    ]
    for end in ends:
        end.start()
    a, b = ends
    await a.send(bytes(100))
    assert await b.recv() == bytes(100)
    mtu[0] = 247  # the MTU exchange finished after we connected
    seen.clear()
    await a.send(bytes(300))
    assert await b.recv() == bytes(300)
    assert max(seen) == 244
    await a.close()
    await b.close()


async def test_a_peer_that_never_says_hello_times_out_and_ends_the_link() -> None:
    async def nowhere(data: bytes) -> None:  # the PDA never took our HELLO
        pass

    link = ChunkLink(nowhere, 20, "pda")
    link.start()
    with pytest.raises(TransportTimeout, match=r"no HELLO from pda within 0.05 s"):
        await link.wait_hello(0.05)
    with pytest.raises(TransportClosed, match="no HELLO"):
        await link.recv()
    await link.close()


async def test_wait_hello_returns_once_both_ends_said_hello() -> None:
    a, b = pair()
    await a.wait_hello()
    await b.wait_hello()
    assert a.channel.peer_ready
    assert b.channel.peer_ready
    await a.close()
    await b.close()
