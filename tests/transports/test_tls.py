"""The TLS layer: pairing by device id, refusals on both sides, tampering, timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable

import pytest

from transports import (
    BadDeviceId,
    FrameLink,
    HandshakeFailed,
    Identity,
    PeerRejected,
    RejectedByPeer,
    TlsError,
    TransportClosed,
    TransportError,
    TransportSpecError,
    TransportTimeout,
    listen,
    tls_client,
    tls_server,
)
from transports.framing import HEADER
from transports.memory import memory_pair
from transports.tls import PRE_AUTH_MAX_FRAME, RECORD_MAX_FRAME, _context

from .conftest import connected

Ids = dict[str, Identity]


class TamperingLink(FrameLink):
    """Wraps a link and flips one bit in the frame number *target* it sends
    (counted from when it was made, or from the last ``arm()``)."""

    def __init__(self, inner: FrameLink, target: int = -1) -> None:
        self.peer = inner.peer
        self.max_frame = inner.max_frame
        self._inner = inner
        self._target = target
        self._sent = 0

    def arm(self, target: int) -> None:
        self._target, self._sent = target, 0

    async def send(self, frame: bytes) -> None:
        if self._sent == self._target:
            changed = bytearray(frame)
            changed[-1] ^= 0x01
            frame = bytes(changed)
        self._sent += 1
        await self._inner.send(frame)

    async def recv(self) -> bytes:
        return await self._inner.recv()

    async def close(self) -> None:
        await self._inner.close()


async def settle(*coros: Awaitable[object]) -> list[object]:
    """Run handshakes concurrently and return results or exceptions, bounded so that
    a hang fails the test instead of stalling the suite."""
    async with asyncio.timeout(10):
        return list(await asyncio.gather(*coros, return_exceptions=True))


async def test_paired_peers_talk_tls13_over_loopback_tcp(ids: Ids) -> None:
    client, server, listener = await connected("tcp://127.0.0.1:0")
    a, b = ids["a"], ids["b"]
    try:
        tc, ts = await asyncio.gather(
            tls_client(client, a, {b.device_id}), tls_server(server, b, {a.device_id})
        )
        assert tc.peer_id == b.device_id
        assert ts.peer_id == a.device_id
        assert tc.tls_version == ts.tls_version == "TLSv1.3"
        assert b.device_id in tc.peer
        await tc.send(b"hello card")
        assert await ts.recv() == b"hello card"
        await ts.send(b"hello phone")
        assert await tc.recv() == b"hello phone"
        await tc.close()
        with pytest.raises(TransportClosed):
            await ts.recv()
        await ts.close()
    finally:
        await client.close()
        await server.close()
        await listener.close()


async def test_unpaired_client_is_refused_by_the_server(ids: Ids) -> None:
    a, b, stranger = ids["a"], ids["b"], ids["c"]
    client, server, listener = await connected("tcp://127.0.0.1:0")
    try:
        at_client, at_server = await settle(
            tls_client(client, stranger, {b.device_id}), tls_server(server, b, {a.device_id})
        )
        assert isinstance(at_server, PeerRejected)
        assert at_server.fingerprint == stranger.device_id
        assert stranger.device_id in str(at_server)
        assert "pair" in str(at_server)
        assert isinstance(at_client, RejectedByPeer)
        assert "rejected us" in str(at_client)
        assert stranger.device_id in str(at_client)
        for link in (client, server):  # both sides closed their link
            with pytest.raises(TransportClosed):
                await link.send(b"x")
    finally:
        await listener.close()


async def test_unpaired_server_is_refused_by_the_client(ids: Ids) -> None:
    a, stranger = ids["a"], ids["c"]
    client, server, listener = await connected("tcp://127.0.0.1:0")
    try:
        at_client, at_server = await settle(
            tls_client(client, a, {ids["b"].device_id}), tls_server(server, stranger, {a.device_id})
        )
        assert isinstance(at_client, PeerRejected)
        assert at_client.fingerprint == stranger.device_id
        assert stranger.device_id in str(at_client)
        assert isinstance(at_server, RejectedByPeer)
    finally:
        await listener.close()


async def test_both_unpaired_refuse_each_other(ids: Ids) -> None:
    c, s = memory_pair()
    at_client, at_server = await settle(
        tls_client(c, ids["a"], set()), tls_server(s, ids["b"], set())
    )
    assert isinstance(at_client, PeerRejected)
    assert at_client.fingerprint == ids["b"].device_id
    assert isinstance(at_server, PeerRejected)
    assert at_server.fingerprint == ids["a"].device_id


async def test_colon_separated_device_ids_are_accepted(ids: Ids) -> None:
    a, b = ids["a"], ids["b"]
    colon = ":".join(b.device_id.upper()[i : i + 2] for i in range(0, 64, 2))
    c, s = memory_pair()
    tc, ts = await asyncio.gather(tls_client(c, a, [colon]), tls_server(s, b, {a.device_id}))
    assert tc.peer_id == b.device_id
    await tc.close()
    await ts.close()


async def test_each_side_builds_its_tls_context_once_per_paired_peer(ids: Ids) -> None:
    # An SSLContext costs milliseconds on every sync of the long-running server/daemon.
    a, b = ids["a"], ids["b"]
    _context.cache_clear()
    for _ in range(2):
        c, s = memory_pair()
        tc, ts = await asyncio.gather(
            tls_client(c, a, {b.device_id}), tls_server(s, b, {a.device_id})
        )
        await tc.close()
        await ts.close()
    info = _context.cache_info()
    assert (info.misses, info.hits) == (2, 2)  # one per side, then reused


async def test_someone_claiming_a_paired_certificate_without_its_key_fails(ids: Ids) -> None:
    a, b, mallory = ids["a"], ids["b"], ids["c"]
    # Mallory's hello shows a's certificate (public), but TLS needs a's private key.
    impostor = dataclasses.replace(mallory, cert_der=a.cert_der, device_id=a.device_id)
    c, s = memory_pair()
    at_client, at_server = await settle(
        tls_client(c, impostor, {b.device_id}), tls_server(s, b, {a.device_id})
    )
    assert isinstance(at_server, HandshakeFailed)
    assert isinstance(at_client, HandshakeFailed)


# Frames 0-1 of each side are the pairing exchange; then the client sends its
# ClientHello (2) and its certificate + Finished (3), the server its whole flight (2).
@pytest.mark.parametrize(("side", "frame"), [("client", 2), ("client", 3), ("server", 2)])
async def test_tampered_handshake_fails_on_both_sides(ids: Ids, side: str, frame: int) -> None:
    a, b = ids["a"], ids["b"]
    c, s = memory_pair()
    results = await settle(
        tls_client(TamperingLink(c, frame if side == "client" else -1), a, {b.device_id}),
        tls_server(TamperingLink(s, frame if side == "server" else -1), b, {a.device_id}),
    )
    assert all(isinstance(r, HandshakeFailed) for r in results), results


async def test_garbage_hello_is_refused(ids: Ids) -> None:
    c, s = memory_pair()
    await c.send(b"GET / HTTP/1.1\r\n\r\n")
    await c.send(b"whatever")
    with pytest.raises(HandshakeFailed, match="not a simsync TLS peer"):
        await tls_server(s, ids["b"], {ids["a"].device_id})
    with pytest.raises(TransportClosed):  # the refusing side closed the link
        await s.send(b"x")
    await c.close()


@pytest.mark.parametrize("who", ["client", "server"])
async def test_tampered_record_is_an_error_not_a_hang(ids: Ids, who: str) -> None:
    a, b = ids["a"], ids["b"]
    c, s = memory_pair()
    c_link, s_link = TamperingLink(c), TamperingLink(s)
    tc, ts = await asyncio.gather(
        tls_client(c_link, a, {b.device_id}), tls_server(s_link, b, {a.device_id})
    )
    (c_link if who == "client" else s_link).arm(0)  # the next record sent is tampered
    sender, receiver = (tc, ts) if who == "client" else (ts, tc)
    try:
        async with asyncio.timeout(10):
            await sender.send(b"transfer 100 to mallory")
            with pytest.raises(TlsError, match=r"TLS stream from .* broke: .*BAD_RECORD_MAC"):
                await receiver.recv()
            with pytest.raises(TlsError):  # and it stays failed
                await receiver.recv()
            with pytest.raises(TransportError):  # the sender learns it too
                await sender.recv()
    finally:
        await tc.close()
        await ts.close()


async def test_handshake_timeout(ids: Ids) -> None:
    c, s = memory_pair()  # nobody answers on s
    with pytest.raises(TransportTimeout, match=r"did not finish within 0\.2 s"):
        await tls_client(c, ids["a"], {ids["b"].device_id}, timeout=0.2)
    with pytest.raises(TransportClosed):  # the link was closed on the way out
        await c.send(b"x")
    await s.close()


async def test_peer_closing_during_the_handshake_is_reported(ids: Ids) -> None:
    c, s = memory_pair()
    await s.close()
    with pytest.raises(HandshakeFailed, match="closed the link during the pairing hello"):
        await tls_client(c, ids["a"], {ids["b"].device_id})


@pytest.mark.parametrize("allowed", [["not-a-device-id"], "0" * 64])
async def test_bad_allowed_list_is_refused_before_touching_the_link(
    ids: Ids, allowed: object
) -> None:
    c, s = memory_pair()
    with pytest.raises((BadDeviceId, TransportSpecError)):
        await tls_client(c, ids["a"], allowed)  # type: ignore[arg-type]
    await c.send(b"still open")  # nothing was sent, nothing was closed
    assert await s.recv() == b"still open"
    await c.close()
    await s.close()


async def test_inner_link_too_small_for_tls_is_refused(ids: Ids) -> None:
    c, s = memory_pair(max_frame=1000)
    with pytest.raises(TransportSpecError, match="4096 bytes or more"):
        await tls_client(c, ids["a"], {ids["b"].device_id})
    await c.close()
    await s.close()


async def test_tls_over_a_small_frame_link_splits_records(ids: Ids) -> None:
    a, b = ids["a"], ids["b"]
    c, s = memory_pair(max_frame=4096)  # e.g. a slow serial or BLE link
    tc, ts = await asyncio.gather(tls_client(c, a, {b.device_id}), tls_server(s, b, {a.device_id}))
    blob = bytes(range(256)) * 1000
    await tc.send(blob)
    assert await ts.recv() == blob
    await tc.close()
    await ts.close()


async def test_a_stranger_announcing_a_huge_hello_is_dropped_at_its_length_prefix(
    ids: Ids,
) -> None:
    """Issue 10: a 1 MiB pairing hello is refused after 4 bytes, before any payload is read."""
    listener = await listen("tcp://127.0.0.1:0")
    host, port = listener.url.removeprefix("tcp://").rsplit(":", 1)
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        server = await listener.accept()
        writer.write(HEADER.pack(1 << 20))  # announces 1 MiB, sends none of it
        await writer.drain()
        with pytest.raises(HandshakeFailed, match=f"more than the {PRE_AUTH_MAX_FRAME} bytes"):
            await tls_server(server, ids["b"], {ids["a"].device_id})
        async with asyncio.timeout(10):  # bound: the server has closed, EOF follows the hello
            rest = await reader.read()
        assert rest.startswith(HEADER.pack(len(b"simsync-pair/1 cert:") + len(ids["b"].cert_der)))
        writer.close()
        await writer.wait_closed()
    finally:
        await listener.close()


async def test_the_inner_frame_limit_is_small_until_authentication_then_one_record(
    ids: Ids,
) -> None:
    c, s = memory_pair()  # 1 MiB frames by default
    a, b = ids["a"], ids["b"]
    tc, ts = await asyncio.gather(tls_client(c, a, {b.device_id}), tls_server(s, b, {a.device_id}))
    assert c.max_frame == s.max_frame == RECORD_MAX_FRAME
    blob = bytes(1 << 20)  # a 1 MiB application frame still crosses, record by record
    await tc.send(blob)
    assert await ts.recv() == blob
    await tc.close()
    await ts.close()
