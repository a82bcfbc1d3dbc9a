"""The serial line's packets: COBS byte stuffing, a 0x00 delimiter and a CRC-32 (sans-IO).

On the wire every packet is ``00 | COBS(body) | 00``; the body is an 8-byte header,
the payload and a CRC-32 of both. COBS removes every 0x00 from the body, so a 0x00
always marks a packet boundary: after line noise the decoder loses at most the
packets the noise touched and is back in step at the next delimiter. A candidate
whose COBS structure, length, type or CRC is wrong is dropped and counted; nothing
that fails the CRC is ever returned. Candidates longer than the largest valid
packet are discarded while they arrive, so garbage never grows the buffer.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum, IntFlag

__all__ = [
    "HEADER",
    "MAX_PAYLOAD",
    "MAX_WIRE",
    "Flag",
    "Kind",
    "Packet",
    "PacketDecoder",
    "cobs_decode",
    "cobs_encode",
    "encode_packet",
]

#: type (1), session id (2), sequence number (2), cumulative ack (2), flags (1).
HEADER = struct.Struct(">BHHHB")
_CRC = struct.Struct(">I")
#: Largest payload a packet may carry (senders use less; see ``serial_arq.MTU``).
MAX_PAYLOAD = 1024
_MAX_BODY = HEADER.size + MAX_PAYLOAD + _CRC.size
#: Largest COBS-encoded body: one code byte per 254 data bytes, plus one.
MAX_WIRE = _MAX_BODY + _MAX_BODY // 254 + 1


class Kind(IntEnum):
    """Packet types."""

    SYN = 1  # client -> server: open session ``sid`` (payload: protocol version)
    SYNACK = 2  # server -> client: session ``sid`` is open
    DATA = 3  # a fragment of a frame (or the FIN), sequenced
    ACK = 4  # cumulative ack ("next expected seq"); also the keepalive
    RST = 5  # "I know no session ``sid``": the peer's session ends


class Flag(IntFlag):
    """Bits of the flags byte."""

    NONE = 0
    END = 1  # DATA: last fragment of a frame
    FIN = 2  # DATA: the sender closes the session (sequenced, after all its data)
    NAK = 4  # ACK: a gap was seen; resend from ``ack`` now rather than at the time-out


@dataclass(frozen=True)
class Packet:
    """One decoded packet."""

    kind: Kind
    sid: int
    seq: int = 0
    ack: int = 0
    flags: Flag = Flag.NONE
    payload: bytes = b""


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: *data* without any 0x00 byte."""
    out = bytearray()
    for piece in data.split(b"\x00"):
        start = 0
        while len(piece) - start >= 254:  # a full block: code 0xFF, no implied zero after it
            out.append(0xFF)
            out += piece[start : start + 254]
            start += 254
        out.append(len(piece) - start + 1)
        out += piece[start:]
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Invert :func:`cobs_encode`; ``None`` if *data* is not a valid encoding."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            return None
        block = data[i + 1 : end]
        if 0 in block:
            return None
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_packet(packet: Packet) -> bytes:
    """The packet's bytes on the wire, delimiters included."""
    if len(packet.payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(packet.payload)} bytes exceeds {MAX_PAYLOAD}")
    body = (
        HEADER.pack(packet.kind, packet.sid, packet.seq, packet.ack, packet.flags) + packet.payload
    )
    return b"\x00" + cobs_encode(body + _CRC.pack(zlib.crc32(body))) + b"\x00"


def _parse(candidate: bytes) -> Packet | None:
    body = cobs_decode(candidate)
    if body is None or len(body) < HEADER.size + _CRC.size:
        return None
    (crc,) = _CRC.unpack_from(body, len(body) - _CRC.size)
    if zlib.crc32(body[: -_CRC.size]) != crc:
        return None
    kind, sid, seq, ack, flags = HEADER.unpack_from(body)
    if kind not in Kind.__members__.values() or flags & ~int(Flag.END | Flag.FIN | Flag.NAK):
        return None
    return Packet(Kind(kind), sid, seq, ack, Flag(flags), body[HEADER.size : -_CRC.size])


class PacketDecoder:
    """Bytes in arbitrary chunks -> whole, CRC-checked packets; garbage is skipped."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False  # inside an over-long candidate: skip to the next 0x00
        #: Candidates dropped (bad COBS, CRC, header, or over-long): a measure of line noise.
        self.dropped = 0

    @property
    def buffered(self) -> int:
        """Bytes held for the candidate in progress (never more than ``MAX_WIRE``)."""
        return len(self._buf)

    def _append(self, chunk: bytes | memoryview) -> None:
        if self._discarding:
            return
        if len(self._buf) + len(chunk) > MAX_WIRE:
            self._buf.clear()
            self._discarding = True
            self.dropped += 1
        else:
            self._buf += chunk

    def feed(self, data: bytes) -> list[Packet]:
        """Take received bytes; return the packets they completed, in order."""
        packets: list[Packet] = []
        view = memoryview(data)
        start = 0
        while (zero := data.find(0, start)) != -1:
            self._append(view[start:zero])
            if self._discarding:
                self._discarding = False
            elif self._buf:
                packet = _parse(bytes(self._buf))
                if packet is None:
                    self.dropped += 1
                else:
                    packets.append(packet)
                self._buf.clear()
            start = zero + 1
        self._append(view[start:])
        return packets
