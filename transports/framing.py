"""Length-prefixed frames over byte streams: a 4-byte big-endian length, then the payload.

:class:`FrameDecoder` is the sans-IO core (feed bytes, take frames) and
:class:`StreamFrameLink` drives it over asyncio streams (TCP today, ttys later).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from .base import DEFAULT_MAX_FRAME, FrameLink, check_max_frame
from .errors import FramingError, TransportClosed

__all__ = ["HEADER", "FrameDecoder", "StreamFrameLink", "encode_frame"]

#: The length prefix: 4 bytes, big-endian, unsigned.
HEADER = struct.Struct(">I")


def encode_frame(frame: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Return *frame* with its length prefix; ``FramingError`` if it exceeds *max_frame*."""
    if len(frame) > max_frame:
        raise FramingError(f"frame of {len(frame)} bytes exceeds the maximum of {max_frame}")
    return HEADER.pack(len(frame)) + bytes(frame)


def _check_length(length: int, max_frame: int) -> None:
    # Checked before a single payload byte is buffered: a hostile prefix must never
    # make us reserve (or wait for) the size it claims.
    if length > max_frame:
        raise FramingError(
            f"length prefix announces {length} bytes, more than the maximum of {max_frame}"
        )


class FrameDecoder:
    """Reassemble frames from bytes arriving in arbitrary chunks (sans-IO)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = check_max_frame(max_frame)
        self._buf = bytearray()
        self._need: int | None = None  # payload length of the frame in progress

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Return the next complete frame, or ``None`` until more bytes arrive."""
        if self._need is None:
            if len(self._buf) < HEADER.size:
                return None
            (length,) = HEADER.unpack_from(self._buf)
            _check_length(length, self.max_frame)
            del self._buf[: HEADER.size]
            self._need = length
        if len(self._buf) < self._need:
            return None
        frame = bytes(self._buf[: self._need])
        del self._buf[: self._need]
        self._need = None
        return frame

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame at EOF)."""
        return len(self._buf) + (HEADER.size if self._need is not None else 0)

    def check_eof(self) -> None:
        """Call at end of stream: raise ``FramingError`` if a frame was cut short."""
        if self._need is not None:
            raise FramingError(
                f"stream ended inside a frame: got {len(self._buf)} of {self._need} payload bytes"
            )
        if self._buf:
            raise FramingError(
                f"stream ended inside a length prefix: got {len(self._buf)} of {HEADER.size} bytes"
            )


class StreamFrameLink(FrameLink):
    """A :class:`FrameLink` over an asyncio ``StreamReader``/``StreamWriter`` pair."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self.peer = peer
        self.max_frame = check_max_frame(max_frame)
        self._reader = reader
        self._writer = writer
        self._recv_lock = asyncio.Lock()
        self._closed = False
        self._failure: FramingError | None = None

    async def send(self, frame: bytes) -> None:
        """Send one frame (header and payload in one write, so senders never interleave)."""
        data = encode_frame(frame, self.max_frame)
        if self._closed or self._writer.is_closing():
            raise TransportClosed(f"link to {self.peer} is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise TransportClosed(f"link to {self.peer} broke while sending: {exc}") from exc

    async def recv(self) -> bytes:
        """Receive the next frame; ``FramingError`` on an oversized or truncated one."""
        async with self._recv_lock:
            if self._failure is not None:
                # After a framing error the stream position is lost; keep failing.
                raise self._failure
            if self._closed:
                raise TransportClosed(f"link to {self.peer} is closed")
            try:
                header = await self._reader.readexactly(HEADER.size)
                (length,) = HEADER.unpack(header)
                _check_length(length, self.max_frame)
                return await self._reader.readexactly(length)
            except asyncio.IncompleteReadError as exc:
                if self._closed:
                    raise TransportClosed(f"link to {self.peer} is closed") from None
                if exc.expected == HEADER.size and not exc.partial:
                    raise TransportClosed(f"{self.peer} closed the link") from None
                what = "length prefix" if exc.expected == HEADER.size else "frame"
                self._failure = FramingError(
                    f"{self.peer} ended the stream inside a {what}: "
                    f"got {len(exc.partial)} of {exc.expected} bytes"
                )
                raise self._failure from exc
            except FramingError as exc:
                self._failure = exc
                raise
            except (ConnectionError, OSError) as exc:
                raise TransportClosed(f"link to {self.peer} broke: {exc}") from exc

    async def close(self) -> None:
        """Close the stream; a pending ``recv`` on this side ends with ``TransportClosed``."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        # The peer may have reset first; we are closing anyway.
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
