"""The serial packet codec: COBS, CRC-32, resynchronisation, bounded buffers."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transports.serial_frames import (
    HEADER,
    MAX_PAYLOAD,
    MAX_WIRE,
    Flag,
    Kind,
    Packet,
    PacketDecoder,
    cobs_decode,
    cobs_encode,
    encode_packet,
)

packets = st.builds(
    Packet,
    kind=st.sampled_from(Kind),
    sid=st.integers(0, 0xFFFF),
    seq=st.integers(0, 0xFFFF),
    ack=st.integers(0, 0xFFFF),
    flags=st.sampled_from([Flag.NONE, Flag.END, Flag.FIN, Flag.NAK, Flag.END | Flag.FIN]),
    payload=st.binary(max_size=MAX_PAYLOAD),
)


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    """*data* cut into random pieces of 1-9 bytes."""
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 9)
        out.append(data[i : i + n])
        i += n
    return out


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x00", b"\x02\x11\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    ],
)
def test_cobs_vectors(raw: bytes, encoded: bytes) -> None:
    # The vectors of the COBS paper (Cheshire & Baker) and Wikipedia's table.
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


@given(st.binary(max_size=3000))
def test_cobs_round_trips_and_never_emits_zero(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(encoded) == data


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x11", b"\x03\x11\x00"])
def test_cobs_refuses_malformed_input(bad: bytes) -> None:
    assert cobs_decode(bad) is None


def test_packet_layout_byte_by_byte() -> None:
    # The example of docs/transports.md: DATA, session 0x1234, seq 1, ack 2, END, "hi".
    wire = encode_packet(Packet(Kind.DATA, 0x1234, 1, 2, Flag.END, b"hi"))
    body = bytes.fromhex("03 1234 0001 0002 01") + b"hi"
    assert HEADER.size == 8
    assert wire == b"\x00" + cobs_encode(body + zlib.crc32(body).to_bytes(4, "big")) + b"\x00"
    assert wire.hex(" ") == "00 04 03 12 34 02 01 09 02 01 68 69 72 d1 ad 4f 00"


@given(st.lists(packets, max_size=6), st.integers(0, 2**32))
def test_packets_survive_random_chunking(sent: list[Packet], seed: int) -> None:
    rng = random.Random(seed)
    decoder = PacketDecoder()
    got: list[Packet] = []
    for piece in chunks(b"".join(map(encode_packet, sent)), rng):
        got += decoder.feed(piece)
    assert got == sent
    assert decoder.dropped == 0
    assert decoder.buffered == 0


@given(
    st.lists(packets, min_size=1, max_size=6),
    st.integers(0, 2**32),
    st.floats(0.0005, 0.05),
)
def test_noise_costs_packets_never_delivers_a_wrong_one(
    sent: list[Packet], seed: int, rate: float
) -> None:
    rng = random.Random(seed)
    wire = bytearray()
    for byte in b"".join(map(encode_packet, sent)):
        roll = rng.random()
        if roll < rate:  # corrupt
            wire.append(byte ^ rng.randint(1, 255))
        elif roll < 2 * rate:  # drop
            continue
        elif roll < 3 * rate:  # duplicate
            wire += bytes([byte, byte])
        elif roll < 4 * rate:  # garbage burst
            wire += rng.randbytes(rng.randint(1, 30)) + bytes([byte])
        else:
            wire.append(byte)
    decoder = PacketDecoder()
    got: list[Packet] = []
    for piece in chunks(bytes(wire), rng):
        got += decoder.feed(piece)
    # Whole or not at all, and in order: what arrives is a subsequence of what was sent.
    it = iter(sent)
    assert all(any(p == q for q in it) for p in got), "a packet arrived that was never sent"


def test_resynchronises_after_garbage() -> None:
    first, second = Packet(Kind.ACK, 1, ack=5), Packet(Kind.DATA, 1, 7, 0, Flag.END, b"x")
    decoder = PacketDecoder()
    assert decoder.feed(b"AT+CGMI\r\nOK\r\n" + encode_packet(first)) == [first]
    assert decoder.dropped == 1  # the modem chatter before the delimiter
    assert decoder.feed(b"\xff\xfe\x13" + encode_packet(second)[1:]) == []  # garbage glued on
    assert decoder.dropped == 2
    assert decoder.feed(encode_packet(second)) == [second]


def test_garbage_never_grows_the_buffer() -> None:
    decoder = PacketDecoder()
    rng = random.Random(7)
    for _ in range(200):  # 800 KB without a single delimiter
        decoder.feed(rng.randbytes(4000).replace(b"\x00", b"\x01"))
        assert decoder.buffered <= MAX_WIRE
    packet = Packet(Kind.SYN, 9, payload=b"\x01")
    assert decoder.feed(encode_packet(packet)) == [packet]  # back in step at the delimiter
    assert decoder.dropped == 1


def test_unknown_type_or_flags_are_dropped() -> None:
    for body in (bytes.fromhex("09 0001 0000 0000 00"), bytes.fromhex("03 0001 0000 0000 80")):
        wire = b"\x00" + cobs_encode(body + zlib.crc32(body).to_bytes(4, "big")) + b"\x00"
        decoder = PacketDecoder()
        assert decoder.feed(wire) == []
        assert decoder.dropped == 1


def test_oversized_payload_is_refused_when_encoding() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode_packet(Packet(Kind.DATA, 1, payload=bytes(MAX_PAYLOAD + 1)))
