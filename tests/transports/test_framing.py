"""Length-prefixed framing: reassembly from random chunks, oversized and truncated input."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transports import (
    DEFAULT_MAX_FRAME,
    FrameDecoder,
    FramingError,
    StreamFrameLink,
    TransportClosed,
    TransportSpecError,
    encode_frame,
)

frames_st = st.lists(st.binary(max_size=300), max_size=20)


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    """Cut *data* into pieces of 1-9 bytes."""
    out, pos = [], 0
    while pos < len(data):
        step = rng.randint(1, 9)
        out.append(data[pos : pos + step])
        pos += step
    return out


@given(frames=frames_st, seed=st.integers(0, 2**32))
def test_decoder_reassembles_frames_from_1_to_9_byte_chunks(frames: list[bytes], seed: int) -> None:
    stream = b"".join(encode_frame(f) for f in frames)
    decoder = FrameDecoder()
    got = []
    for piece in chunked(stream, random.Random(seed)):
        decoder.feed(piece)
        while (frame := decoder.next_frame()) is not None:
            got.append(frame)
    assert got == frames
    assert decoder.buffered == 0
    decoder.check_eof()  # ended on a frame boundary: no error


async def _open_socketpair(
    max_frame: int = DEFAULT_MAX_FRAME,
) -> tuple[StreamFrameLink, socket.socket]:
    """A StreamFrameLink on one end of a real socket pair; the raw other end for the test."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    return StreamFrameLink(reader, writer, "socketpair", max_frame), theirs


async def _feed_in_chunks(raw: socket.socket, data: bytes, seed: int) -> None:
    loop = asyncio.get_running_loop()
    for piece in chunked(data, random.Random(seed)):
        await loop.sock_sendall(raw, piece)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=frames_st, seed=st.integers(0, 2**32))
def test_stream_link_reassembles_chunks_over_a_real_socket_pair(
    frames: list[bytes], seed: int
) -> None:
    async def run() -> list[bytes]:
        link, raw = await _open_socketpair()
        try:
            stream = b"".join(encode_frame(f) for f in frames)
            feeder = asyncio.create_task(_feed_in_chunks(raw, stream, seed))
            got = [await link.recv() for _ in frames]
            await feeder
            raw.shutdown(socket.SHUT_WR)
            with pytest.raises(TransportClosed):  # clean EOF on a frame boundary
                await link.recv()
            return got
        finally:
            raw.close()
            await link.close()

    assert asyncio.run(run()) == frames


def test_decoder_refuses_an_oversized_length_before_any_payload() -> None:
    decoder = FrameDecoder(max_frame=100)
    decoder.feed(struct.pack(">I", 101))
    with pytest.raises(FramingError, match="101 bytes, more than the maximum of 100"):
        decoder.next_frame()


def test_decoder_accepts_exactly_the_maximum() -> None:
    decoder = FrameDecoder(max_frame=100)
    decoder.feed(encode_frame(bytes(100), 100))
    assert decoder.next_frame() == bytes(100)


@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (b"\x00\x00", "inside a length prefix: got 2 of 4"),
        (b"\x00\x00\x00\x0aabc", "inside a frame: got 3 of 10"),
    ],
)
def test_decoder_reports_a_truncated_stream(stream: bytes, match: str) -> None:
    decoder = FrameDecoder()
    decoder.feed(stream)
    assert decoder.next_frame() is None
    with pytest.raises(FramingError, match=match):
        decoder.check_eof()


def test_encode_refuses_oversized_frames() -> None:
    with pytest.raises(FramingError, match="11 bytes exceeds the maximum of 10"):
        encode_frame(bytes(11), 10)


@pytest.mark.parametrize("bad", [0, -1, 2**32, True, 1.5, "10"])
def test_max_frame_must_be_sane(bad: object) -> None:
    with pytest.raises(TransportSpecError, match="max_frame"):
        FrameDecoder(max_frame=bad)  # type: ignore[arg-type]


async def test_stream_link_refuses_a_huge_length_prefix_without_allocating() -> None:
    link, raw = await _open_socketpair()
    try:
        tracemalloc.start()
        try:
            await asyncio.get_running_loop().sock_sendall(raw, b"\xff\xff\xff\xff" + bytes(16))
            with pytest.raises(FramingError, match="4294967295 bytes, more than the maximum"):
                await link.recv()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # asyncio's socket transport reads into a 256 KiB buffer; beyond that nothing:
        # nowhere near the 4 GiB claimed, nor even the 1 MiB limit.
        assert peak < 512 * 1024
        with pytest.raises(FramingError):  # the stream position is lost: keep failing
            await link.recv()
    finally:
        raw.close()
        await link.close()


@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (b"\x00\x00\x00", "inside a length prefix: got 3 of 4"),
        (b"\x00\x00\x00\x05ab", "inside a frame: got 2 of 5"),
    ],
)
async def test_stream_link_reports_truncation_at_eof(stream: bytes, match: str) -> None:
    link, raw = await _open_socketpair()
    try:
        await asyncio.get_running_loop().sock_sendall(raw, stream)
        raw.shutdown(socket.SHUT_WR)
        with pytest.raises(FramingError, match=match):
            await link.recv()
    finally:
        raw.close()
        await link.close()


async def test_stream_link_refuses_oversized_sends_without_writing() -> None:
    link, raw = await _open_socketpair(max_frame=8)
    try:
        with pytest.raises(FramingError, match="9 bytes exceeds the maximum of 8"):
            await link.send(bytes(9))
        await link.send(b"ok")
        loop = asyncio.get_running_loop()
        assert await loop.sock_recv(raw, 64) == b"\x00\x00\x00\x02ok"
    finally:
        raw.close()
        await link.close()
