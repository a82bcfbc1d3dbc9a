"""``serial:///dev/TTY?baud=N`` — frames over a tty (RFCOMM, IrCOMM, USB or real UART).

The asyncio driver around two sans-IO cores: :mod:`transports.serial_frames` (COBS
packets with CRC-32) and :mod:`transports.serial_arq` (go-back-N ARQ). One open tty
is a :class:`_Port`; it reads with ``loop.add_reader``, writes without blocking,
and runs one timer task for the session's time-outs. A tty "listener" serves one
peer at a time over its one line: each SYN from the far end starts a session that
``accept`` hands out; after it ends, the next SYN starts the next one.

An RFCOMM or IrCOMM tty exists only while its connection does, so a listener does
not need its device at start, nor after a hang-up: it opens it when it appears,
trying again with backoff (0.1 s doubling to 2 s) and saying so in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import termios
from collections.abc import Callable, Mapping

import structlog

from .base import FrameLink, Listener, TransportDriver
from .errors import (
    ConnectFailed,
    FramingError,
    ListenFailed,
    TransportClosed,
    TransportError,
    TransportSpecError,
)
from .serial_arq import ArqSession, State
from .serial_frames import Kind, Packet, PacketDecoder, encode_packet
from .serial_tty import (
    SerialAddress,
    describe_os_error,
    error_code,
    open_tty,
    parse_serial_url,
)

__all__ = ["DEFAULT_DEAD_AFTER", "DRIVER", "SerialLink", "SerialListener", "connect", "listen"]

#: Seconds of silence from the peer after which the line counts as dropped.
DEFAULT_DEAD_AFTER = 10.0
_FAST = 57600  # from this baud rate on: big packets and a wide window
_REOPEN_MAX = 2.0  # seconds between tries to (re)open a listener's tty that is not there
#: open() errors of a tty that is not there yet (or no more): a listener waits for it.
_ABSENT = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO})

log = structlog.get_logger("simsync.transports.serial")


def _options(url: str, address: SerialAddress, options: Mapping[str, object]) -> float:
    unknown = sorted(set(options) - {"dead_after"})
    if unknown:
        raise TransportSpecError(f"unknown option(s) for {url}: {', '.join(unknown)}")
    dead = options.get("dead_after", address.dead_after or DEFAULT_DEAD_AFTER)
    if isinstance(dead, bool) or not isinstance(dead, int | float) or not dead > 0:
        raise TransportSpecError(f"dead_after must be a positive number of seconds, got {dead!r}")
    return float(dead)


class _Port:
    """One open tty: reads packets, dispatches them to the session, writes what it asks."""

    def __init__(
        self, address: SerialAddress, fd: int | None, *, max_frame: int, dead_after: float
    ) -> None:
        self.address = address
        self.max_frame = max_frame
        self.dead_after = dead_after
        # Slow lines get small packets and a short window: a window's line time stays
        # near one second, so a lost packet costs little and time-outs stay short.
        self.mtu, self.window = (1024, 8) if address.baud >= _FAST else (256, 4)
        self.wire_packet = self.mtu + 20  # a full DATA packet on the wire
        # Time-outs: at least two packets' line time; at first, a whole window's twice over
        # (a full window may wait in the tty's output buffer); then the measured RTT.
        self.min_rto = 0.05 + 2 * self.wire_packet * 10 / address.baud
        self.initial_rto = 0.05 + 2 * self.window * self.wire_packet * 10 / address.baud
        self.session: ArqSession | None = None
        self.decoder = PacketDecoder()
        #: Called with each new server-side session (None: this port does not accept).
        self.on_session: Callable[[ArqSession], None] | None = None
        self.bytes_out = 0
        self.bytes_in = 0
        self._loop = asyncio.get_running_loop()
        self._fd: int | None = fd
        self._out = bytearray()
        self._writing = False
        self._rsts: list[Packet] = []
        self._users = 1
        self._kick = asyncio.Event()
        self._changed = asyncio.Event()
        if fd is not None:
            self._loop.add_reader(fd, self._on_readable)
        self._timer = asyncio.create_task(self._run_timers(), name=f"serial {address.path}")
        self._reopen: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- waking the waiters

    def changed(self) -> asyncio.Event:
        """An event set at the next change of any session state on this port."""
        return self._changed

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        self._kick.set()

    # ---------------------------------------------------------------------- reading

    def _on_readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._hang_up(exc.strerror or str(exc))
            return
        if not data:
            self._hang_up("end of file")
            return
        self.bytes_in += len(data)
        now = self._loop.time()
        for packet in self.decoder.feed(data):
            self._dispatch(packet, now)
        self.service()

    def _dispatch(self, packet: Packet, now: float) -> None:
        session = self.session
        if session is not None and packet.sid == session.sid:
            session.receive(packet, now)
        elif packet.kind is Kind.SYN and self.on_session is not None:
            if session is not None and session.state is not State.DONE:
                # One line, one peer: a new SYN means the old session's phone is gone.
                session.fail(TransportClosed(f"{session.peer}: the peer started a new session"))
            self.session = ArqSession(
                packet.sid,
                client=False,
                now=now,
                peer=f"{self.address.url} (session {packet.sid:04x})",
                max_frame=self.max_frame,
                min_rto=self.min_rto,
                initial_rto=self.initial_rto,
                dead_after=self.dead_after,
                mtu=self.mtu,
                window=self.window,
            )
            self.on_session(self.session)
        elif packet.kind in (Kind.DATA, Kind.ACK) and len(self._rsts) < self.window:
            # A session we do not know (ended, or from before a restart): tell its sender.
            self._rsts.append(Packet(Kind.RST, packet.sid))

    # ---------------------------------------------------------------------- writing

    def service(self) -> None:
        """Run due timers, write what the session wants sent, wake the waiters."""
        now = self._loop.time()
        packets, self._rsts = self._rsts, []
        session = self.session
        if session is not None:
            session.tick(now)
            # Keep at most about one packet queued here: the time-outs start when a
            # packet is handed over, so it must not wait behind a long local queue.
            room = self.window if len(self._out) < self.wire_packet else 0
            packets += session.packets_to_send(now, room)
        if packets and self._fd is not None:
            for packet in packets:
                self._out += encode_packet(packet)
            self._flush()
        self._notify()

    def _flush(self) -> None:
        if self._fd is None:
            return
        while self._out:
            try:
                n = os.write(self._fd, self._out)
            except BlockingIOError:
                break
            except OSError as exc:
                self._hang_up(exc.strerror or str(exc))
                return
            self.bytes_out += n
            del self._out[:n]
        if self._out and not self._writing:
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True
        elif not self._out and self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def _on_writable(self) -> None:
        self._flush()
        if not self._out:
            self.service()  # room again: the session may send more

    # ----------------------------------------------------------------- time and end

    async def _run_timers(self) -> None:
        while True:
            self._kick.clear()
            deadline = self.session.next_deadline() if self.session is not None else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._kick.wait()
            self.service()

    def _hang_up(self, why: str) -> None:
        self._close_fd()
        self._out.clear()
        if self.session is not None:
            self.session.fail(TransportClosed(f"{self.address.url}: the line hung up ({why})"))
        if self.on_session is not None:
            log.info(
                "serial line hung up; reopening it when it returns", url=self.address.url, why=why
            )
            self.reopen()
        self._notify()

    def reopen(self) -> None:
        """Open the tty once it is there (a listener's line), retrying with backoff."""
        if self._reopen is None:
            self._reopen = asyncio.create_task(self._reopen_tty(), name=f"open {self.address.path}")

    async def _reopen_tty(self) -> None:
        # An RFCOMM tty vanishes with its connection and comes back with the next one.
        delay, said = 0.1, None
        while self.on_session is not None:
            await asyncio.sleep(delay)  # backoff between tries, not a wait for an event
            try:
                fd = open_tty(self.address)
            except (OSError, termios.error) as exc:
                why = describe_os_error(exc)
                if why != said:  # once per reason, not once per try
                    log.info(
                        "serial device not ready; trying again with backoff",
                        url=self.address.url,
                        why=why,
                        max_interval_s=_REOPEN_MAX,
                    )
                    said = why
                delay = min(delay * 2, _REOPEN_MAX)
                continue
            self._fd = fd
            self._loop.add_reader(fd, self._on_readable)
            log.info("serial device open; waiting for a peer", url=self.address.url)
            break
        self._reopen = None

    def _close_fd(self) -> None:
        if self._fd is None:
            return
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    def retain(self) -> None:
        """One more user (a link) of this port."""
        self._users += 1

    async def release(self) -> None:
        """One user fewer; the last one closes the tty and stops the timers."""
        self._users -= 1
        if self._users > 0:
            return
        self.on_session = None
        self._close_fd()
        for task in (self._timer, self._reopen):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class SerialLink(FrameLink):
    """A :class:`FrameLink` over one ARQ session on a tty."""

    def __init__(self, port: _Port, session: ArqSession) -> None:
        self.peer = session.peer
        self.max_frame = port.max_frame
        self._port = port
        self._session = session
        self._closed = False
        port.retain()

    async def _wait(self) -> None:
        await self._port.changed().wait()

    async def send(self, frame: bytes) -> None:
        """Queue one frame; waits while the send buffer is full (back-pressure)."""
        if len(frame) > self.max_frame:
            raise FramingError(
                f"frame of {len(frame)} bytes exceeds the maximum of {self.max_frame}"
            )
        while not self._session.can_send():
            if self._closed or self._session.state is not State.OPEN:
                raise self._session.error or TransportClosed(f"link to {self.peer} is closed")
            await self._wait()
        self._session.send_frame(bytes(frame))
        self._port.service()

    async def recv(self) -> bytes:
        """Receive the next whole frame."""
        while True:
            frame = self._session.next_frame()
            if frame is not None:
                self._port.service()  # reading made room: acks may go out again
                return frame
            error = self._session.recv_error()
            if error is not None:
                raise error
            await self._wait()

    async def close(self) -> None:
        """Send FIN after the queued frames, wait (bounded) for its ack, release the tty."""
        if self._closed:
            return
        self._closed = True
        try:
            self._session.close(asyncio.get_running_loop().time())
            self._port.service()
            while not self._session.finished:
                await self._wait()
        finally:
            await self._port.release()

    @property
    def stats(self) -> dict[str, int]:
        """Packet and byte counts of this link (for benchmarks)."""
        return {
            **self._session.stats,
            "bytes_out": self._port.bytes_out,
            "bytes_in": self._port.bytes_in,
            "dropped": self._port.decoder.dropped,
        }


def _open(address: SerialAddress, url: str, error: Callable[[str], TransportError]) -> int:
    try:
        return open_tty(address)
    except (OSError, termios.error) as exc:
        raise error(f"{address.path}: {describe_os_error(exc)}") from exc


async def connect(url: str, *, max_frame: int, options: Mapping[str, object]) -> FrameLink:
    """Driver entry: open the tty and start a session with the peer on the line."""
    address = parse_serial_url(url)
    dead_after = _options(url, address, options)
    fd = _open(address, url, lambda why: ConnectFailed(url, why))
    port = _Port(address, fd, max_frame=max_frame, dead_after=dead_after)
    sid = secrets.randbelow(0xFFFF) + 1
    session = ArqSession(
        sid,
        client=True,
        now=asyncio.get_running_loop().time(),
        peer=address.url,
        max_frame=max_frame,
        min_rto=port.min_rto,
        initial_rto=port.initial_rto,
        dead_after=dead_after,
        mtu=port.mtu,
        window=port.window,
    )
    port.session = session
    link = SerialLink(port, session)
    await port.release()  # the link holds the port now
    try:
        port.service()
        while session.state is State.SYN_SENT:
            await port.changed().wait()
    except BaseException:
        await link.close()
        raise
    if session.state is not State.OPEN:
        await link.close()
        raise ConnectFailed(url, str(session.error or "the session ended"))
    return link


class SerialListener(Listener):
    """Serves the peers that appear, one after another, on one tty.

    Only the newest session not yet accepted is kept: a peer that restarts (or a
    flood of SYNs) replaces it, so nothing piles up while nobody accepts.
    """

    def __init__(self, port: _Port, *, present: bool = True) -> None:
        self.url = port.address.url
        self._port = port
        self._fresh: ArqSession | None = None
        self._closed = False
        port.on_session = self._on_session
        if not present:
            port.reopen()

    def _on_session(self, session: ArqSession) -> None:
        self._fresh = session

    async def accept(self) -> FrameLink:
        """Wait for the next peer to open a session on the line."""
        while True:
            if self._closed:
                raise TransportClosed(f"listener {self.url} is closed")
            session, self._fresh = self._fresh, None
            if session is not None and session.state is State.OPEN:
                return SerialLink(self._port, session)
            await self._port.changed().wait()

    async def close(self) -> None:
        """Stop taking sessions; the tty stays open until accepted links close too."""
        if self._closed:
            return
        self._closed = True
        self._port.on_session = None
        if self._fresh is not None:  # a peer nobody accepted: tell it the session is over
            self._fresh.close(asyncio.get_running_loop().time())
            self._fresh = None
        self._port.service()  # also wakes the pending accepts
        await self._port.release()


async def listen(url: str, *, max_frame: int, options: Mapping[str, object]) -> Listener:
    """Driver entry: open the tty (now, or once it appears) and wait for sessions on it."""
    address = parse_serial_url(url)
    dead_after = _options(url, address, options)
    fd: int | None
    try:
        fd = open_tty(address)
    except (OSError, termios.error) as exc:
        if (
            error_code(exc) not in _ABSENT
        ):  # in use, no permission, not a tty: waiting will not help
            raise ListenFailed(
                f"cannot listen on {url}: {address.path}: {describe_os_error(exc)}"
            ) from exc
        log.warning(
            "serial device not there yet; waiting for it (an RFCOMM or IrCOMM tty appears "
            "when the peer connects)",
            url=address.url,
            why=describe_os_error(exc),
        )
        fd = None
    port = _Port(address, fd, max_frame=max_frame, dead_after=dead_after)
    return SerialListener(port, present=fd is not None)


def _check(url: str) -> SerialAddress:
    return parse_serial_url(url)


#: The registry's entry point for this scheme.
DRIVER = TransportDriver(connect=connect, listen=listen, check=_check)
