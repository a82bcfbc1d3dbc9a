"""One contract, run against every FrameLink: memory, tcp, serial, ble, and each wrapped in TLS.

The kinds come from ``conftest.SITES``; a new transport joins by adding its site.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from transports import (
    DEFAULT_MAX_FRAME,
    ConnectFailed,
    FrameLink,
    FramingError,
    TransportClosed,
    TransportError,
    TransportTimeout,
    listen,
    open_transport,
)

from .conftest import Site, connected_at

Pair = tuple[FrameLink, FrameLink]

#: MiB each way in the large transfer; a tty link in Python moves about 1 MiB/s, BLE
#: through the mocked BlueZ (a D-Bus round trip per chunk) about 0.2 MB/s.
LARGE_ROUNDS = {"serial": 2, "ble": 1}

SIZES = [0, 1, 3, 4, 5, 255, 16383, 16384, 16385, 65536, 300_001, DEFAULT_MAX_FRAME]


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes so any mix-up shows."""
    block = bytes((i * 31 + seed * 7 + (i >> 8)) & 0xFF for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


class TestFrameLinkContract:
    """Behaviour every transport (and TLS over it) must show."""

    async def test_frames_of_every_size_round_trip_both_ways(self, pair: Pair) -> None:
        client, server = pair
        for size in SIZES:
            frame = payload(size, seed=size)
            await client.send(frame)
            assert await server.recv() == frame
            await server.send(frame[::-1])
            assert await client.recv() == frame[::-1]

    async def test_order_is_preserved(self, pair: Pair) -> None:
        client, server = pair
        for i in range(300):
            await client.send(i.to_bytes(2, "big") * (i % 7))
        got = [await server.recv() for _ in range(300)]
        assert got == [i.to_bytes(2, "big") * (i % 7) for i in range(300)]

    async def test_clean_close_ends_both_sides(self, pair: Pair) -> None:
        client, server = pair
        await client.send(b"last words")
        await client.close()
        assert await server.recv() == b"last words"  # frames sent before close arrive
        with pytest.raises(TransportClosed):
            await server.recv()
        with pytest.raises(TransportClosed):  # and it stays ended
            await server.recv()
        with pytest.raises(TransportClosed):
            await client.recv()
        with pytest.raises(TransportClosed):
            await client.send(b"after close")
        await client.close()  # idempotent

    async def test_close_wakes_a_pending_recv_on_both_ends(self, pair: Pair) -> None:
        client, server = pair
        waiting_client = asyncio.create_task(client.recv())
        waiting_server = asyncio.create_task(server.recv())
        await asyncio.sleep(0)  # one loop turn so both block in recv (a yield, not a timed wait)
        assert not waiting_client.done()
        assert not waiting_server.done()
        await server.close()
        with pytest.raises(TransportClosed):
            await waiting_server
        with pytest.raises(TransportClosed):
            await waiting_client

    async def test_both_sides_send_concurrently(self, pair: Pair) -> None:
        client, server = pair
        count = 200

        async def pump(link: FrameLink, tag: bytes) -> None:
            for i in range(count):
                await link.send(tag + i.to_bytes(4, "big") * 50)

        async def drain(link: FrameLink) -> list[bytes]:
            return [await link.recv() for _ in range(count)]

        _, _, at_server, at_client = await asyncio.gather(
            pump(client, b"C"), pump(server, b"S"), drain(server), drain(client)
        )
        assert at_server == [b"C" + i.to_bytes(4, "big") * 50 for i in range(count)]
        assert at_client == [b"S" + i.to_bytes(4, "big") * 50 for i in range(count)]

    async def test_concurrent_senders_never_interleave_frames(self, pair: Pair) -> None:
        client, server = pair
        frames = [bytes([n]) * 70_000 for n in range(8)]  # several TLS records each
        sent = asyncio.gather(*(client.send(f) for f in frames))
        got = [await server.recv() for _ in frames]
        await sent
        assert sorted(got) == sorted(frames)

    async def test_large_transfer(self, pair: Pair, request: pytest.FixtureRequest) -> None:
        client, server = pair
        blob = os.urandom(DEFAULT_MAX_FRAME)
        kind = request.node.callspec.params["pair"].split("+")[0]
        rounds = LARGE_ROUNDS.get(kind, 12)  # 12 MiB each way where the link is fast

        async def send_all(link: FrameLink) -> None:
            for _ in range(rounds):
                await link.send(blob)

        async def count(link: FrameLink) -> int:
            total = 0
            for _ in range(rounds):
                frame = await link.recv()
                assert frame == blob
                total += len(frame)
            return total

        _, _, at_server, at_client = await asyncio.gather(
            send_all(client), send_all(server), count(server), count(client)
        )
        assert at_server == at_client == rounds * len(blob)

    async def test_oversized_send_is_refused_and_changes_nothing(self, pair: Pair) -> None:
        client, server = pair
        with pytest.raises(FramingError, match=str(DEFAULT_MAX_FRAME)):
            await client.send(bytes(DEFAULT_MAX_FRAME + 1))
        await client.send(b"still fine")
        assert await server.recv() == b"still fine"

    async def test_peer_is_described(self, pair: Pair) -> None:
        client, server = pair
        assert client.peer
        assert server.peer
        assert client.peer != server.peer


class TestConnectionContract:
    """Connecting, peers that vanish, and listeners: each base transport alike."""

    async def test_a_vanished_peer_is_a_transport_error(self, site: Site) -> None:
        client, server, listener = await connected_at(site)
        try:
            await client.send(b"before")
            assert await server.recv() == b"before"
            await site.vanish(server)
            with pytest.raises(TransportError):
                await client.recv()
            with pytest.raises(TransportError):  # and it stays failed
                await client.recv()
        finally:
            await client.close()
            await server.close()
            await listener.close()

    async def test_connecting_where_nobody_listens_fails_in_time(self, site: Site) -> None:
        listener = await listen(site.listen_url, **site.options)
        url = site.connect_url(listener)
        await listener.close()
        with pytest.raises((ConnectFailed, TransportTimeout)):
            await open_transport(url, timeout=5, **site.options)

    async def test_listener_serves_peer_after_peer(self, site: Site) -> None:
        listener = await listen(site.listen_url, **site.options)
        try:
            for n in range(3):
                client, server = await asyncio.gather(
                    open_transport(site.connect_url(listener), **site.options), listener.accept()
                )
                await client.send(b"hello %d" % n)
                assert await server.recv() == b"hello %d" % n
                await server.send(b"bye")
                assert await client.recv() == b"bye"
                await client.close()
                with pytest.raises(TransportClosed):
                    await server.recv()
                await server.close()
        finally:
            await listener.close()

    async def test_closing_a_listener_ends_accepts_and_unaccepted_links(self, site: Site) -> None:
        listener = await listen(site.listen_url, **site.options)
        url = site.connect_url(listener)
        first, accepted = await asyncio.gather(
            open_transport(url, **site.options), listener.accept()
        )
        await first.close()
        await accepted.close()
        unaccepted = await open_transport(url, **site.options)  # nobody accepts it
        waiters = [asyncio.create_task(listener.accept()) for _ in range(2)]
        await listener.close()
        for waiter in waiters:
            with pytest.raises(TransportClosed):
                await waiter
        with pytest.raises(TransportClosed):
            await listener.accept()
        with pytest.raises(TransportClosed):
            await unaccepted.recv()
        await unaccepted.close()
        await listener.close()  # idempotent
