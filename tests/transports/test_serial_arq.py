"""The serial ARQ core, sans IO: two sessions joined by a simulated noisy line and clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from transports import FramingError, TransportClosed
from transports.serial_arq import RECV_SLACK, SEND_LIMIT, ArqSession, State
from transports.serial_frames import Flag, Kind, Packet, PacketDecoder, encode_packet

DEAD = 10.0
# The noisy-line property is about delivery, not about giving up: at 1 % noise a side
# whose every packet is destroyed for 10 s is declared gone by design (seed 5037198
# below: 18 bytes lost 10 times in a row, and the idle server's 4 keepalives too). With
# 60 s that takes ~60 straight losses of the data, never seen.
NOISY_DEAD = 60.0


def session(
    client: bool,
    max_frame: int = 1 << 20,
    mtu: int = 64,
    window: int = 4,
    dead_after: float = DEAD,
) -> ArqSession:
    return ArqSession(
        0x4242,
        client=client,
        now=0.0,
        peer="client" if not client else "server",
        max_frame=max_frame,
        min_rto=0.05,
        initial_rto=0.2,
        dead_after=dead_after,
        mtu=mtu,
        window=window,
    )


class Line:
    """Both directions of a line: bytes in 1-9-byte chunks, with seeded per-byte noise."""

    def __init__(self, a: ArqSession, b: ArqSession, rng: random.Random, noise: float = 0.0):
        self.ends = [(a, b, PacketDecoder()), (b, a, PacketDecoder())]
        self.rng = rng
        self.noise = noise
        self.now = 0.0
        self.up = True
        self.bytes = 0

    def mangle(self, data: bytes) -> bytes:
        if not self.noise:
            return data
        out = bytearray()
        for byte in data:
            roll = self.rng.random()
            if roll < self.noise:
                out.append(byte ^ self.rng.randint(1, 255))
            elif roll < 2 * self.noise:
                continue
            elif roll < 3 * self.noise:
                out += bytes([byte, byte])
            else:
                out.append(byte)
        return bytes(out)

    def step(self, dt: float = 0.01) -> None:
        self.now += dt
        for src, dst, decoder in self.ends:
            src.tick(self.now)
            wire = b"".join(encode_packet(p) for p in src.packets_to_send(self.now, src.window))
            self.bytes += len(wire)
            if not self.up:
                continue
            wire = self.mangle(wire)
            i = 0
            while i < len(wire):
                n = self.rng.randint(1, 9)
                for packet in decoder.feed(wire[i : i + n]):
                    dst.receive(packet, self.now)
                i += n

    def run_until(self, done: object, limit: float = 600.0) -> None:
        assert callable(done)
        while not done():
            assert self.now < limit, "the line never got there"
            self.step()


def collected(s: ArqSession, into: list[bytes], count: int) -> bool:
    """Move the frames *s* completed into *into*; True once it holds *count*."""
    into.extend(drain(s))
    return len(into) >= count


def drain(s: ArqSession) -> list[bytes]:
    out = []
    while (frame := s.next_frame()) is not None:
        out.append(frame)
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(max_size=700), min_size=1, max_size=12),
    st.integers(0, 2**32),  # a seed, not st.randoms(): those shrink to "every byte is hit"
    st.sampled_from([0.0, 0.0005, 0.003, 0.01]),
)
@example(  # one in ~20,000 examples at DEAD: the client gave the server up after 12 s
    frames=[
        bytes(2),
        bytes(2),
        bytes(2),
        bytes(15),
        bytes(5) + b"\x01" + bytes(3) + b"\x01" + bytes(8),
    ],
    seed=5037198,
    noise=0.01,
)
def test_frames_arrive_whole_in_order_once_over_a_noisy_line(
    frames: list[bytes], seed: int, noise: float
) -> None:
    client, server = session(True, dead_after=NOISY_DEAD), session(False, dead_after=NOISY_DEAD)
    line = Line(client, server, random.Random(seed), noise)
    line.run_until(lambda: client.state is State.OPEN)
    for frame in frames:
        client.send_frame(frame)
    got: list[bytes] = []
    line.run_until(lambda: collected(server, got, len(frames)))
    assert got == frames
    client.close(line.now)
    line.run_until(lambda: client.finished and server.state is State.DONE)
    assert isinstance(server.recv_error(), TransportClosed)
    assert "closed the link" in str(server.recv_error())


def test_both_directions_at_once_with_noise() -> None:
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(3), noise=0.002)
    line.run_until(lambda: client.state is State.OPEN)
    up = [bytes([n]) * (n * 37) for n in range(30)]
    for frame in up:
        client.send_frame(frame)
        server.send_frame(frame[::-1])
    at_server: list[bytes] = []
    at_client: list[bytes] = []
    line.run_until(
        lambda: collected(server, at_server, len(up)) & collected(client, at_client, len(up))
    )
    assert at_server == up
    assert at_client == [f[::-1] for f in up]
    assert client.stats["resent"] + server.stats["resent"] > 0  # the noise did cost retries


def test_duplicates_are_delivered_once_and_reacked() -> None:
    server = session(False)
    data = Packet(Kind.DATA, 0x4242, 0, 0, Flag.END, b"once")
    server.receive(data, 1.0)
    server.receive(data, 1.1)
    assert drain(server) == [b"once"]
    assert server.stats["duplicates"] == 1
    acks = [p for p in server.packets_to_send(1.2, 4) if p.kind is Kind.ACK]
    assert acks
    assert acks[-1].ack == 1


def test_a_gap_is_naked_once_and_the_sender_goes_back() -> None:
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(0))
    line.run_until(lambda: client.state is State.OPEN)
    client.send_frame(bytes(64 * 4))  # four packets
    sent = client.packets_to_send(line.now, 4)
    for packet in sent[1:]:  # the first is lost on the line
        server.receive(packet, line.now)
    naks = [p for p in server.packets_to_send(line.now, 4) if p.flags & Flag.NAK]
    assert len(naks) == 1
    assert naks[0].ack == 0
    client.receive(naks[0], line.now)
    again = client.packets_to_send(line.now, 4)
    assert [p.seq for p in again if p.kind is Kind.DATA] == [0, 1, 2, 3]  # at once, no time-out
    assert client.stats["resent"] == 4


def test_a_silent_peer_ends_the_session_after_dead_after() -> None:
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(1))
    line.run_until(lambda: client.state is State.OPEN)
    line.up = False
    client.send_frame(b"into the void")
    line.run_until(lambda: client.state is State.DONE)
    assert DEAD <= line.now < DEAD + 1
    error = client.recv_error()
    assert isinstance(error, TransportClosed)
    assert "went silent" in str(error)
    with pytest.raises(TransportClosed):
        client.send_frame(b"more")


def test_keepalives_keep_an_idle_session_open() -> None:
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(2))
    line.run_until(lambda: line.now > 5 * DEAD)
    assert client.state is server.state is State.OPEN


def test_connect_gives_up_when_nobody_answers() -> None:
    client = session(True)
    now = 0.0
    syns = 0
    while client.state is State.SYN_SENT:
        now += 0.01
        client.tick(now)
        syns += sum(p.kind is Kind.SYN for p in client.packets_to_send(now, 4))
    assert syns > 3
    assert "no simsync peer answered" in str(client.recv_error())


def test_a_frame_over_max_frame_from_the_peer_is_refused_and_bounded() -> None:
    server = session(False, max_frame=1000)
    for seq in range(20):  # fragments without END: a hostile peer
        server.receive(Packet(Kind.DATA, 0x4242, seq, 0, Flag.NONE, bytes(100)), 1.0)
        if server.state is State.DONE:
            break
    assert isinstance(server.error, FramingError)
    assert seq == 10  # refused at the fragment that crossed the limit
    assert any(p.kind is Kind.RST for p in server.packets_to_send(1.0, 4))


def test_a_reader_that_does_not_read_bounds_memory_on_both_sides() -> None:
    client = session(True, max_frame=4096, mtu=1024)
    server = session(False, max_frame=4096, mtu=1024)
    line = Line(client, server, random.Random(4))
    line.run_until(lambda: client.state is State.OPEN)
    queued = 0
    for _ in range(300):
        if client.can_send():
            client.send_frame(bytes(4096))
            queued += 1
        line.step()
        assert client.send_buffered <= SEND_LIMIT + 4096
        assert server._frames_bytes + len(server._partial) <= 4096 + RECV_SLACK
    assert not client.can_send()  # back-pressure reached the sender
    assert client.state is server.state is State.OPEN  # acks stopped, keepalives did not
    got: list[bytes] = []
    line.run_until(lambda: collected(server, got, queued))
    assert got == [bytes(4096)] * queued


def test_a_reset_ends_the_session() -> None:
    client = session(True)
    client.receive(Packet(Kind.SYNACK, 0x4242, payload=b"\x01"), 0.1)
    assert client.state is State.OPEN
    client.receive(Packet(Kind.RST, 0x4242), 0.2)
    assert "reset the link" in str(client.recv_error())


def test_frames_sent_before_close_arrive_and_close_wakes_the_own_reader() -> None:
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(5), noise=0.001)
    line.run_until(lambda: client.state is State.OPEN)
    server.send_frame(b"unread")
    line.run_until(lambda: client._frames_bytes > 0)
    client.send_frame(b"last words")
    client.close(line.now)
    assert client.next_frame() is None  # closed here: nothing more is read
    assert "is closed" in str(client.recv_error())
    line.run_until(lambda: client.finished)
    assert drain(server) == [b"last words"]
    assert "closed the link" in str(server.recv_error())


def test_a_lost_fin_is_resent_until_the_peer_has_it() -> None:
    # Noise can eat the FIN many times in a row; the close still ends cleanly on both
    # sides instead of giving up and leaving the peer to time out.
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(6))
    line.run_until(lambda: client.state is State.OPEN)
    client.close(line.now)
    fins = 0
    while fins < 8 and client.state is State.CLOSING:  # eight FINs lost on the line
        line.now += 0.01
        client.tick(line.now)
        fins += sum(bool(p.flags & Flag.FIN) for p in client.packets_to_send(line.now, 4))
        server.tick(line.now)
        for packet in server.packets_to_send(line.now, 4):
            client.receive(packet, line.now)  # the server's keepalives still arrive
    assert client.state is State.CLOSING
    line.run_until(lambda: client.finished and server.state is State.DONE)
    assert "closed the link" in str(server.recv_error())
    assert client.stats["resent"] >= 8


def test_a_session_that_ended_without_goodbye_resets_its_peer() -> None:
    # The server's line hung up and came back: its session is over, the client's is
    # not. The client's next packet gets an RST at once, not dead_after of silence.
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(7))
    line.run_until(lambda: client.state is State.OPEN)
    server.fail(TransportClosed("the line hung up"))
    client.send_frame(b"are you there?")
    line.run_until(lambda: client.state is State.DONE, limit=line.now + 1)
    assert "reset the link" in str(client.recv_error())


def test_a_clean_end_is_not_answered_with_a_reset() -> None:
    client, server = session(True), session(False)
    line = Line(client, server, random.Random(8))
    line.run_until(lambda: client.state is State.OPEN)
    server.close(line.now)
    line.run_until(lambda: server.finished and client.state is State.DONE)
    server.receive(Packet(Kind.ACK, 0x4242, 0, 1), line.now)  # a late keepalive
    assert not [p for p in server.packets_to_send(line.now, 4) if p.kind is Kind.RST]
