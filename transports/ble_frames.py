"""Frames over two GATT characteristics, sans-IO: chunking, reassembly, credit flow control.

The phone (GATT client) writes chunks to :data:`WRITE_CHAR_UUID` with ATT write
commands; the PDA (GATT server) sends chunks as notifications of
:data:`NOTIFY_CHAR_UUID`. Neither ATT operation is acknowledged, so each side
grants the other *credits*: one credit = one chunk it can take. Every chunk is one
attribute value, at most ``MTU - 3`` (and never more than 512) bytes::

    byte 0   kind (high 3 bits) | sequence number mod 32 (low 5 bits, data chunks)
    1...     kind's payload

    HELLO   version (1 byte) + window (2 bytes, big-endian): "you may send me WINDOW
            chunks"; the first chunk each way, and it resets both directions
    MORE    a piece of a frame; more pieces follow
    LAST    the final piece of a frame (possibly empty: a frame of 0 bytes)
    CREDIT  count (2 bytes): the receiver took COUNT more chunks
    CLOSE   the sender closes the link cleanly

:class:`GattChannel` holds one end's rules; the asyncio driver
(:mod:`transports.ble_link`) moves its chunks and owns timers and sockets.
"""

from __future__ import annotations

import enum
import struct
from collections import deque

from .base import DEFAULT_MAX_FRAME, check_max_frame
from .ble_uuids import NOTIFY_CHAR_UUID, SERVICE_UUID, WRITE_CHAR_UUID
from .errors import FramingError, TransportClosed

__all__ = [
    "ATT_MAX_VALUE",
    "DEFAULT_WINDOW",
    "NOTIFY_CHAR_UUID",
    "PROTOCOL_VERSION",
    "SERVICE_UUID",
    "WRITE_CHAR_UUID",
    "GattChannel",
    "Kind",
    "chunk_size_for_mtu",
]

PROTOCOL_VERSION = 1
#: An attribute value is never longer than this (Core spec Vol 3 Part F 3.2.9).
ATT_MAX_VALUE = 512
#: The smallest ATT MTU (LE): 23, so 20-byte values.
ATT_MIN_MTU = 23
#: Chunks one side may send before hearing a credit: enough to keep the link busy
#: across a connection interval or two, small enough that a slow PDA is never flooded.
DEFAULT_WINDOW = 16

_HELLO = struct.Struct(">BH")
_CREDIT = struct.Struct(">H")
_SEQ_MOD = 32
_HELLO_SIZE = 1 + _HELLO.size  # the largest control chunk: every chunk size must hold it


class Kind(enum.IntEnum):
    """The chunk kinds (the high 3 bits of byte 0)."""

    HELLO = 0
    MORE = 1
    LAST = 2
    CREDIT = 3
    CLOSE = 4


def chunk_size_for_mtu(mtu: int) -> int:
    """The largest chunk (attribute value) for an ATT *mtu*: ``MTU - 3``, at most 512."""
    if isinstance(mtu, bool) or not isinstance(mtu, int) or mtu < ATT_MIN_MTU:
        raise ValueError(f"ATT MTU must be an int >= {ATT_MIN_MTU}, got {mtu!r}")
    return min(mtu - 3, ATT_MAX_VALUE)


def _header(kind: Kind, seq: int = 0) -> int:
    return (kind << 5) | (seq % _SEQ_MOD)


class GattChannel:
    """One end of a frame link over GATT chunks (sans-IO).

    Feed every received attribute value to :meth:`receive_chunk`, take complete
    frames with :meth:`next_frame`, queue frames with :meth:`send_frame` and
    transmit what :meth:`next_chunk` hands out until it returns ``None``. Data chunks
    are handed out only against credits; credits are granted back only while the
    unread frames stay under ``max_frame`` bytes, so a reader that stops reading
    stops the sender instead of growing our memory.
    """

    def __init__(
        self,
        chunk_size: int,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if not 2 <= window <= 0xFFFF:
            raise ValueError(f"window must be in 2..65535 chunks, got {window}")
        self.max_frame = check_max_frame(max_frame)
        self.window = window
        self.chunk_size = 0
        self.set_chunk_size(chunk_size)
        self._control: deque[bytes] = deque([_HELLO_CHUNK(window)])
        self._data: deque[bytes] = deque()
        self._credits = 0  # chunks we may send; set by the peer's HELLO
        self._peer_ready = False
        self._send_seq = 0
        self._recv_seq = 0
        self._owed = 0  # chunks taken but not yet credited back
        self._partial = bytearray()
        self._frames: deque[bytes] = deque()
        self._unread = 0  # bytes in self._frames
        self._frames_queued = 0
        self.frames_sent = 0  # frames whose every chunk has been handed out
        self.data_chunks_sent = 0  # MORE/LAST chunks handed out (the link's cost)
        self.closed = False  # closed by us
        self.peer_closed = False

    # -- configuration -------------------------------------------------------------

    def set_chunk_size(self, chunk_size: int) -> None:
        """Use chunks of at most *chunk_size* bytes for frames queued from now on."""
        if not _HELLO_SIZE <= chunk_size <= ATT_MAX_VALUE:
            raise ValueError(
                f"chunk size must be in {_HELLO_SIZE}..{ATT_MAX_VALUE}, got {chunk_size}"
            )
        self.chunk_size = chunk_size

    # -- sending -------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> int:
        """Queue *frame*; return its number (compare with :attr:`frames_sent`)."""
        if self.closed or self.peer_closed:
            raise TransportClosed("the BLE link is closed")
        if len(frame) > self.max_frame:
            raise FramingError(
                f"frame of {len(frame)} bytes exceeds the maximum of {self.max_frame}"
            )
        piece = self.chunk_size - 1
        view = memoryview(bytes(frame))
        starts = range(0, len(view), piece) if view else range(1)
        for start in starts:
            last = start + piece >= len(view)
            kind = Kind.LAST if last else Kind.MORE
            self._data.append(bytes([_header(kind, self._send_seq)]) + view[start : start + piece])
            self._send_seq += 1
        self._frames_queued += 1
        return self._frames_queued

    def next_chunk(self) -> bytes | None:
        """The next chunk to transmit now, or ``None`` (nothing to send, or no credit)."""
        if self._control:
            return self._control.popleft()
        if not self._data or not self._peer_ready or self._credits == 0 or self.closed:
            return None
        chunk = self._data.popleft()
        self._credits -= 1
        self.data_chunks_sent += 1
        if chunk[0] >> 5 == Kind.LAST:
            self.frames_sent += 1
        return chunk

    def close(self) -> bytes:
        """Close this end; return the CLOSE chunk to transmit (after what is queued)."""
        self.closed = True
        return bytes([_header(Kind.CLOSE)])

    @property
    def peer_ready(self) -> bool:
        """True once the peer's HELLO arrived (it listens and granted its window)."""
        return self._peer_ready

    @property
    def sending(self) -> bool:
        """True while queued data chunks wait for credit."""
        return bool(self._data)

    # -- receiving -----------------------------------------------------------------

    def receive_chunk(self, chunk: bytes) -> None:
        """Take one attribute value from the peer; ``FramingError`` if it breaks the rules."""
        if not chunk:
            raise FramingError("empty chunk: every chunk has a header byte")
        kind_bits, seq = chunk[0] >> 5, chunk[0] & (_SEQ_MOD - 1)
        body = chunk[1:]
        try:
            kind = Kind(kind_bits)
        except ValueError:
            raise FramingError(f"unknown chunk kind {kind_bits}") from None
        if kind is Kind.HELLO:
            self._hello(body)
        elif not self._peer_ready:
            raise FramingError(f"{kind.name} chunk before HELLO")
        elif kind is Kind.CREDIT:
            if len(body) != _CREDIT.size:
                raise FramingError(f"CREDIT chunk of {len(chunk)} bytes, expected 3")
            (count,) = _CREDIT.unpack(body)
            if self._credits + count > self._peer_window:
                raise FramingError(f"peer granted {count} credits, more than its window")
            self._credits += count
        elif kind is Kind.CLOSE:
            self.peer_closed = True
        else:
            self._data_chunk(kind, seq, body)

    def _hello(self, body: bytes) -> None:
        if len(body) != _HELLO.size:
            raise FramingError(f"HELLO of {len(body) + 1} bytes, expected {_HELLO.size + 1}")
        version, window = _HELLO.unpack(body)
        if version != PROTOCOL_VERSION:
            raise FramingError(
                f"peer speaks simsync BLE framing version {version}, we speak {PROTOCOL_VERSION}"
            )
        if window < 1:
            raise FramingError("peer announced a window of 0 chunks")
        if self._peer_ready:
            raise FramingError("second HELLO on one link")
        self._peer_ready = True
        self._peer_window = window
        self._credits = window

    def _data_chunk(self, kind: Kind, seq: int, body: bytes) -> None:
        if seq != self._recv_seq % _SEQ_MOD:
            raise FramingError(
                f"chunk {seq} arrived where chunk {self._recv_seq % _SEQ_MOD} was due: "
                "chunks were lost or duplicated"
            )
        if self._owed >= self.window:
            raise FramingError(f"peer sent more than the {self.window} chunks it had credit for")
        self._recv_seq += 1
        self._owed += 1
        if len(self._partial) + len(body) > self.max_frame:
            raise FramingError(f"incoming frame exceeds the maximum of {self.max_frame} bytes")
        self._partial += body
        if kind is Kind.LAST:
            frame = bytes(self._partial)
            self._partial.clear()
            self._frames.append(frame)
            self._unread += len(frame)
        self._grant()

    def _grant(self) -> None:
        # Credit back in half-windows (fewer control chunks), and only while the reader
        # keeps up: unread frames beyond max_frame bytes hold the sender back.
        if self._owed >= max(1, self.window // 2) and self._unread <= self.max_frame:
            self._control.append(bytes([_header(Kind.CREDIT)]) + _CREDIT.pack(self._owed))
            self._owed = 0

    def next_frame(self) -> bytes | None:
        """The next complete frame, or ``None`` until more chunks arrive."""
        if not self._frames:
            return None
        frame = self._frames.popleft()
        self._unread -= len(frame)
        self._grant()
        return frame

    @property
    def unread_bytes(self) -> int:
        """Bytes of complete frames not yet taken with :meth:`next_frame`."""
        return self._unread

    @property
    def partial_bytes(self) -> int:
        """Bytes of a frame begun but not finished (what a dropped link cut off)."""
        return len(self._partial)


def _HELLO_CHUNK(window: int) -> bytes:  # noqa: N802 - reads like the constant it builds
    return bytes([_header(Kind.HELLO)]) + _HELLO.pack(PROTOCOL_VERSION, window)
