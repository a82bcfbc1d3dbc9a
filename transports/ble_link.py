"""The asyncio driver of :class:`~transports.ble_frames.GattChannel`: a FrameLink over chunks.

It knows no Bluetooth library: the phone's bleak link, the PDA's D-Bus GATT
application and the tests' bumble stacks each hand it a coroutine that transmits
one chunk and call :meth:`ChunkLink.feed` with every chunk received and
:meth:`ChunkLink.lost` when the connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from .base import DEFAULT_MAX_FRAME, FrameLink
from .ble_frames import DEFAULT_WINDOW, GattChannel
from .errors import FramingError, TransportClosed, TransportError, TransportTimeout

__all__ = ["CLOSE_GRACE", "HELLO_TIMEOUT", "ChunkLink"]

#: How long close() waits for queued chunks and the CLOSE chunk to go out.
CLOSE_GRACE = 2.0
#: How long the phone waits for the PDA's HELLO after sending its own (the PDA
#: answers within a D-Bus round trip or two; silence means it is not serving us).
HELLO_TIMEOUT = 5.0


class ChunkLink(FrameLink):
    """A :class:`FrameLink` whose chunks travel through *write* and :meth:`feed`.

    One pump task owns *write*, so chunks leave in the order the channel hands them
    out (credits first, then data) and a sender waiting for credit never blocks the
    credits this side owes the peer. Call :meth:`start` once the transport is up.
    """

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[None]],
        chunk_size: int,
        peer: str,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        on_close: Callable[[], Awaitable[None]] | None = None,
        chunk_size_now: Callable[[], int] | None = None,
    ) -> None:
        self.peer = peer
        # BlueZ may finish the MTU exchange after we connected: read it again per frame.
        self._chunk_size_now = chunk_size_now
        self.channel = GattChannel(chunk_size, max_frame=max_frame, window=window)
        self.max_frame = self.channel.max_frame
        self._write = write
        self._on_close = on_close
        self._wake = asyncio.Event()  # the pump has something to look at
        self._sent = asyncio.Event()  # the pump handed chunks out, or the link ended
        self._arrived = asyncio.Event()  # a frame, a close or a drop arrived
        self._send_lock = asyncio.Lock()
        self._pump_task: asyncio.Task[None] | None = None
        self._close_chunk: bytes | None = None
        self._closed = False
        self._dropped: str | None = None  # why the connection ended under us
        self._failure: FramingError | None = None
        #: Traffic counters (for benchmarks and logs): chunks and bytes each way.
        self.chunks_out = self.bytes_out = self.chunks_in = self.bytes_in = 0

    def start(self) -> None:
        """Start the pump (sends our HELLO)."""
        if self._pump_task is None:
            self._pump_task = asyncio.create_task(self._pump(), name=f"ble pump {self.peer}")
            self._wake.set()

    async def wait_hello(self, timeout: float = HELLO_TIMEOUT) -> None:  # noqa: ASYNC109
        """Wait for the peer's HELLO: ``TransportTimeout`` if it never comes, the link's
        error if it ends first.

        Without it the peer grants no credit: a send would wait for ever, and a
        phone whose HELLO the PDA never took (it was closing, or busy with another
        phone) would hang in its first ``recv``.
        """
        try:
            async with asyncio.timeout(timeout):
                while not self.channel.peer_ready:
                    error = self._ended_error()
                    if error is not None:
                        raise error
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            self.lost(f"no HELLO from {self.peer} within {timeout:g} s")
            raise TransportTimeout(f"no HELLO from {self.peer} within {timeout:g} s") from None

    # -- called by the Bluetooth side ------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """One attribute value received from the peer."""
        if self._failure is not None or self._dropped is not None:
            return
        self.chunks_in += 1
        self.bytes_in += len(chunk)
        try:
            self.channel.receive_chunk(bytes(chunk))
        except FramingError as exc:
            self._failure = FramingError(f"{self.peer} broke the BLE framing: {exc}")
            self._end()
            return
        self._arrived.set()
        self._sent.set()  # credits may have arrived
        self._wake.set()

    def lost(self, reason: str) -> None:
        """The Bluetooth connection ended (disconnect, adapter gone, peer out of range)."""
        if self._dropped is None:
            self._dropped = reason
        self._end()

    def set_chunk_size(self, chunk_size: int) -> None:
        """The MTU changed: use *chunk_size* for frames sent from now on."""
        self.channel.set_chunk_size(chunk_size)

    @property
    def ended(self) -> bool:
        """True once the link is over: closed, dropped, failed or closed by the peer."""
        return self._ended_error() is not None

    def _end(self) -> None:
        if self._pump_task is not None and not self._pump_task.done():
            self._pump_task.cancel()
        self._arrived.set()
        self._sent.set()

    # -- the pump ------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while (chunk := self.channel.next_chunk()) is not None:
                    await self._transmit(chunk)
                    self._sent.set()
                if self._close_chunk is not None:
                    await self._transmit(self._close_chunk)
                    return
        except Exception as exc:
            self._dropped = self._dropped or f"sending failed: {exc}"
            self._arrived.set()
            self._sent.set()

    async def _transmit(self, chunk: bytes) -> None:
        await self._write(chunk)
        self.chunks_out += 1
        self.bytes_out += len(chunk)

    def _ended_error(self) -> TransportError | None:
        if self._failure is not None:
            return self._failure
        if self._closed:
            return TransportClosed(f"link to {self.peer} is closed")
        if self._dropped is not None:
            return TransportClosed(f"BLE link to {self.peer} dropped: {self._dropped}")
        if self.channel.peer_closed:
            return TransportClosed(f"{self.peer} closed the link")
        return None

    # -- FrameLink -----------------------------------------------------------------

    async def send(self, frame: bytes) -> None:
        """Queue one frame; return once its last chunk has been handed to the radio."""
        if len(frame) > self.max_frame:
            raise FramingError(
                f"frame of {len(frame)} bytes exceeds the maximum of {self.max_frame}"
            )
        async with self._send_lock:
            error = self._ended_error()
            if error is not None:
                raise error
            if self._chunk_size_now is not None:
                self.channel.set_chunk_size(self._chunk_size_now())
            number = self.channel.send_frame(frame)
            self._wake.set()
            while self.channel.frames_sent < number:
                error = self._ended_error()
                if error is not None:
                    raise error
                self._sent.clear()
                await self._sent.wait()

    async def recv(self) -> bytes:
        """The next frame; ``TransportClosed`` once the link ended between frames."""
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closed:
                raise TransportClosed(f"link to {self.peer} is closed")
            frame = self.channel.next_frame()
            if frame is not None:
                self._wake.set()  # reading may have freed credits for the peer
                return frame
            if self.channel.peer_closed or self._dropped is not None:
                cut = self.channel.partial_bytes
                if cut and self._dropped is not None:
                    # The radio went away: a lost connection like any other, not
                    # the peer's fault, so TransportClosed (the sync retries it).
                    raise TransportClosed(
                        f"BLE link to {self.peer} dropped inside a frame after {cut} bytes: "
                        f"{self._dropped}"
                    )
                if cut:
                    self._failure = FramingError(
                        f"{self.peer} closed the BLE link inside a frame after {cut} bytes"
                    )
                    raise self._failure
                error = self._ended_error()
                assert error is not None
                raise error
            self._arrived.clear()
            await self._arrived.wait()

    async def close(self) -> None:
        """Send CLOSE after what is already handed out, then let the transport go."""
        if self._closed:
            return
        self._closed = True
        self._close_chunk = self.channel.close()
        self._wake.set()
        self._arrived.set()
        self._sent.set()
        task = self._pump_task
        if task is not None and not task.done() and self._dropped is None:
            # wait(), not a shielded await: a drop meanwhile cancels the pump, which
            # must not look like our own caller being cancelled.
            await asyncio.wait({task}, timeout=CLOSE_GRACE)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._on_close is not None:
            await self._on_close()
