"""The BLE framing core: chunking to the MTU, reassembly, credits, and its errors (sans-IO)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports import FramingError, TransportClosed
from transports.ble_frames import (
    ATT_MAX_VALUE,
    GattChannel,
    Kind,
    chunk_size_for_mtu,
)


def pump(
    src: GattChannel, dst: GattChannel, rng: random.Random | None = None, limit: int = 1
) -> int:
    """Move up to *limit* chunks src -> dst (fewer if src has none ready); returns how many."""
    moved = 0
    while moved < limit:
        chunk = src.next_chunk()
        if chunk is None:
            break
        assert len(chunk) <= src.chunk_size
        dst.receive_chunk(chunk)
        moved += 1
    return moved


def run(a: GattChannel, b: GattChannel, rng: random.Random) -> list[tuple[str, bytes]]:
    """Interleave both directions in random bursts, reading frames at random moments."""
    got: list[tuple[str, bytes]] = []
    idle = 0
    while idle < 3:
        moved = pump(a, b, limit=rng.randint(1, 9)) + pump(b, a, limit=rng.randint(1, 9))
        for name, ch in (("b", b), ("a", a)):
            while rng.random() < 0.7 and (frame := ch.next_frame()) is not None:
                got.append((name, frame))
        idle = 0 if moved else idle + 1
    for name, ch in (("b", b), ("a", a)):
        while (frame := ch.next_frame()) is not None:
            got.append((name, frame))
    return got


frames = st.lists(st.binary(max_size=2000), max_size=12)


class TestChunking:
    @pytest.mark.parametrize(("mtu", "size"), [(23, 20), (247, 244), (515, 512), (517, 512)])
    def test_chunk_size_is_mtu_minus_3_never_over_512(self, mtu: int, size: int) -> None:
        assert chunk_size_for_mtu(mtu) == size

    @pytest.mark.parametrize("mtu", [0, 22, -1, True, 23.0])
    def test_impossible_mtus_are_refused(self, mtu: object) -> None:
        with pytest.raises(ValueError, match="MTU"):
            chunk_size_for_mtu(mtu)  # type: ignore[arg-type]

    def test_chunk_count_and_sizes_at_mtu_23(self) -> None:
        a, b = GattChannel(20, window=64), GattChannel(20, window=64)
        pump(b, a)  # b's HELLO gives a its credits
        pump(a, b)  # a's HELLO
        a.send_frame(bytes(100))  # 19 payload bytes per chunk -> 6 chunks
        chunks = []
        while (c := a.next_chunk()) is not None:
            chunks.append(c)
        assert [len(c) for c in chunks] == [20, 20, 20, 20, 20, 6]
        assert [c[0] >> 5 for c in chunks] == [Kind.MORE] * 5 + [Kind.LAST]
        for c in chunks:
            b.receive_chunk(c)
        assert b.next_frame() == bytes(100)

    def test_an_empty_frame_is_one_header_byte(self) -> None:
        a, b = GattChannel(20), GattChannel(20)
        pump(b, a)
        pump(a, b)
        a.send_frame(b"")
        chunk = a.next_chunk()
        assert chunk is not None
        assert len(chunk) == 1
        b.receive_chunk(chunk)
        assert b.next_frame() == b""


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(
        to_b=frames,
        to_a=frames,
        size_a=st.integers(4, ATT_MAX_VALUE),
        size_b=st.integers(4, ATT_MAX_VALUE),
        window=st.integers(2, 40),
        seed=st.integers(0, 2**32),
    )
    def test_frames_arrive_whole_and_in_order_under_random_interleaving(
        self,
        to_b: list[bytes],
        to_a: list[bytes],
        size_a: int,
        size_b: int,
        window: int,
        seed: int,
    ) -> None:
        rng = random.Random(seed)
        a = GattChannel(size_a, window=window)
        b = GattChannel(size_b, window=max(2, window // 2))
        for f in to_b:
            a.send_frame(f)
        for f in to_a:
            b.send_frame(f)
        got = run(a, b, rng)
        assert [f for who, f in got if who == "b"] == to_b
        assert [f for who, f in got if who == "a"] == to_a
        assert a.frames_sent == len(to_b)
        assert not a.sending
        assert not b.sending

    @settings(max_examples=40, deadline=None)
    @given(sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=8), window=st.integers(2, 9))
    def test_a_sender_never_exceeds_its_credit(self, sizes: list[int], window: int) -> None:
        a, b = GattChannel(20), GattChannel(20, window=window)
        pump(b, a)
        pump(a, b)
        for n in sizes:
            a.send_frame(bytes(n))
        in_flight = 0
        while True:
            # a sends as much as it may without hearing anything back...
            burst = []
            while (c := a.next_chunk()) is not None:
                burst.append(c)
            assert len(burst) <= window
            if not burst:
                break
            for c in burst:
                b.receive_chunk(c)
                in_flight += 1
            # ...then b's credits travel back.
            while b.next_frame() is not None:
                pass
            pump(b, a, limit=100)
        assert not a.sending
        assert in_flight == sum(max(1, -(-n // 19)) for n in sizes)


class TestFlowControl:
    def test_an_unread_backlog_withholds_credit_until_the_reader_reads(self) -> None:
        a = GattChannel(20, window=4)
        b = GattChannel(20, window=4, max_frame=50)
        pump(b, a)
        pump(a, b)
        for _ in range(10):
            a.send_frame(bytes(19))  # one chunk each
        moved = 0
        while pump(a, b) or pump(b, a):
            moved += 1
        # b holds 50 bytes of frames nobody read: it credited nothing beyond that.
        assert a.sending
        read = 0
        while b.next_frame() is not None:
            read += 1
            while pump(a, b) or pump(b, a):
                pass
        assert read == 10
        assert not a.sending

    def test_sending_past_the_granted_window_is_a_framing_error(self) -> None:
        a, b = GattChannel(20), GattChannel(20, window=2, max_frame=1)
        pump(b, a)
        pump(a, b)
        # A peer that ignores credits: while nobody reads, b grants nothing after the
        # first frame, so of the next chunks only its window (2) may arrive.
        for seq in range(3):
            b.receive_chunk(bytes([Kind.LAST << 5 | seq]) + b"x")
        with pytest.raises(FramingError, match="credit"):
            b.receive_chunk(bytes([Kind.LAST << 5 | 3]) + b"x")

    def test_credit_beyond_the_window_is_refused(self) -> None:
        a, b = GattChannel(20), GattChannel(20, window=3)
        pump(b, a)
        with pytest.raises(FramingError, match="window"):
            a.receive_chunk(bytes([Kind.CREDIT << 5, 0, 1]))


class TestBadChunks:
    def ready(self) -> GattChannel:
        a, b = GattChannel(20), GattChannel(20)
        pump(a, b)
        return b

    @pytest.mark.parametrize(
        ("chunk", "message"),
        [
            (b"", "empty"),
            (bytes([7 << 5]), "unknown chunk kind"),
            (bytes([Kind.MORE << 5 | 3]) + b"x", "lost or duplicated"),
            (bytes([Kind.CREDIT << 5, 1]), "CREDIT"),
            (bytes([Kind.HELLO << 5, 1, 0, 4]), "second HELLO"),
        ],
    )
    def test_rule_breaking_chunks_are_named(self, chunk: bytes, message: str) -> None:
        with pytest.raises(FramingError, match=message):
            self.ready().receive_chunk(chunk)

    def test_data_before_hello_is_refused(self) -> None:
        with pytest.raises(FramingError, match="before HELLO"):
            GattChannel(20).receive_chunk(bytes([Kind.LAST << 5]) + b"x")

    @pytest.mark.parametrize(
        ("hello", "message"),
        [
            (bytes([0, 2, 0, 4]), "version 2"),
            (bytes([0, 1, 0, 0]), "window of 0"),
            (b"\0\1", "expected 4"),
        ],
    )
    def test_bad_hellos_are_refused(self, hello: bytes, message: str) -> None:
        with pytest.raises(FramingError, match=message):
            GattChannel(20).receive_chunk(hello)

    def test_an_oversized_incoming_frame_is_refused_before_it_is_buffered_whole(self) -> None:
        a, b = GattChannel(20), GattChannel(20, max_frame=30)
        pump(b, a)
        pump(a, b)
        a.max_frame = 1000  # a sender that ignores our limit
        a.send_frame(bytes(60))

        def deliver_all() -> None:
            while pump(a, b) or pump(b, a):
                pass

        with pytest.raises(FramingError, match="maximum of 30"):
            deliver_all()
        assert b.partial_bytes <= 30

    def test_oversized_send_is_refused_and_queues_nothing(self) -> None:
        a = GattChannel(20, max_frame=10)
        with pytest.raises(FramingError, match="maximum of 10"):
            a.send_frame(bytes(11))
        assert not a.sending

    def test_sending_after_close_is_refused(self) -> None:
        a = GattChannel(20)
        assert a.close() == bytes([Kind.CLOSE << 5])
        with pytest.raises(TransportClosed):
            a.send_frame(b"x")

    @pytest.mark.parametrize("size", [0, 3, 513])
    def test_impossible_chunk_sizes_are_refused(self, size: int) -> None:
        with pytest.raises(ValueError, match="chunk size"):
            GattChannel(size)

    @pytest.mark.parametrize("window", [0, 1, 65536])
    def test_impossible_windows_are_refused(self, window: int) -> None:
        with pytest.raises(ValueError, match="window"):
            GattChannel(20, window=window)
