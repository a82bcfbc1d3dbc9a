"""The vpcd connector: puts an emulated card into a real PC/SC reader.

vsmartcard's ``vpcd`` driver (loaded by ``pcscd``) listens on TCP; a card connects to
it as a client, which pcscd sees as a card insertion (a close is a removal). Each
frame is a 2-byte big-endian length and a payload: a 1-byte payload is a control
message (``00`` power off, ``01`` power on, ``02`` reset, ``04`` get ATR, answered with
the ATR), anything longer a C-APDU answered with exactly one R-APDU.

The connector is blocking and single-threaded on purpose: one card answers one APDU
at a time, and a ``select`` on the socket plus a wake-up socket lets :meth:`stop`
(safe from a signal handler) interrupt any wait promptly. Once connected it
reconnects forever with backoff when vpcd goes away (``pcscd`` restart); only the
first connection is bounded by ``connect_timeout``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from simcard.errors import SimCardError

__all__ = [
    "DEFAULT_VPCD",
    "CardLike",
    "VpcdAddress",
    "VpcdAddressError",
    "VpcdConnector",
    "VpcdError",
    "VpcdUnreachableError",
    "configure_stderr_logging",
    "redact_apdu",
    "serve_until_signalled",
]

_log = structlog.get_logger("simcard.vpcd")

CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

# INS codes whose command data carry a PIN or PUK (VERIFY, CHANGE, DISABLE, ENABLE,
# UNBLOCK CHV): their payload never reaches a log line.
_SECRET_INS = frozenset({0x20, 0x24, 0x26, 0x28, 0x2C})

# A frame that started must finish quickly; a peer stuck mid-frame is treated as gone.
_MID_FRAME_TIMEOUT = 5.0


class VpcdError(SimCardError):
    """Root of the connector's errors (a branch of the card room's error tree)."""


class VpcdAddressError(VpcdError, ValueError):
    """A ``HOST:PORT`` text that does not name a vpcd endpoint."""


class VpcdUnreachableError(VpcdError):
    """vpcd did not accept a connection within the start-up timeout."""


@dataclass(frozen=True)
class VpcdAddress:
    """Where vpcd listens: ``Virtual PCD 00 00`` is port 35963, ``00 01`` is 35964."""

    host: str = "127.0.0.1"
    port: int = 35963

    @classmethod
    def parse(cls, text: str) -> VpcdAddress:
        """Parse ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6); raise :class:`VpcdAddressError`."""
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise VpcdAddressError(f"expected HOST:PORT, got {text!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise VpcdAddressError(f"write an IPv6 address as [ADDR]:PORT, got {text!r}")
        if not host or any(c.isspace() for c in host):
            raise VpcdAddressError(f"bad host in {text!r}")
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise VpcdAddressError(f"port must be 1-65535, got {port_text!r} in {text!r}")
        return cls(host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


DEFAULT_VPCD = VpcdAddress()


class CardLike(Protocol):
    """What the connector needs of a card (``simcard.card.SimCard`` has it)."""

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes: ...

    def transmit(self, apdu: bytes) -> bytes: ...


def redact_apdu(apdu: bytes) -> str:
    """Hex of a C-APDU for logs, with the data of PIN/PUK commands replaced by a count."""
    if len(apdu) > 5 and apdu[1] in _SECRET_INS:
        return f"{apdu[:5].hex()}<{len(apdu) - 5} bytes redacted>"
    return apdu.hex()


class _StoppedError(Exception):
    """Internal: a stop was requested while waiting."""


class _LinkLostError(Exception):
    """Internal: vpcd closed or broke the connection."""


class VpcdConnector:
    """Serve one card to vpcd until :meth:`stop` is called.

    ``on_connected`` is called (in the serving thread) after every successful
    connection, e.g. to print a ready line. ``trace`` logs every APDU at debug level,
    PIN and PUK redacted.
    """

    def __init__(
        self,
        card: CardLike,
        address: VpcdAddress = DEFAULT_VPCD,
        *,
        connect_timeout: float = 10.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 1.0,
        on_connected: Callable[[VpcdAddress], None] | None = None,
        trace: bool = False,
    ) -> None:
        self._card = card
        self._address = address
        self._connect_timeout = connect_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._on_connected = on_connected
        self._trace = trace
        self._stop_requested = False
        # The wake-up pair turns stop() into a readable fd every select() also watches.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._buf = bytearray()
        self.connections = 0
        """How many times a connection to vpcd was established (for tests and logs)."""

    @property
    def address(self) -> VpcdAddress:
        """The vpcd endpoint this connector serves."""
        return self._address

    def stop(self) -> None:
        """Ask :meth:`serve` to return; safe from a signal handler or another thread."""
        self._stop_requested = True
        with contextlib.suppress(OSError):  # full or closed: a wake-up is pending anyway
            self._wake_w.send(b"\0")

    def close(self) -> None:
        """Release the wake-up sockets (after :meth:`serve` returned)."""
        self._wake_r.close()
        self._wake_w.close()

    def serve(self) -> None:
        """Connect and answer vpcd until stopped.

        Raises :class:`VpcdUnreachableError` if the first connection fails for
        ``connect_timeout`` seconds; later losses are retried forever.
        """
        deadline: float | None = time.monotonic() + self._connect_timeout
        delay = self._backoff_initial
        try:
            while not self._stop_requested:
                try:
                    sock = self._connect()
                except OSError as exc:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise VpcdUnreachableError(
                            f"vpcd at {self._address} unreachable for "
                            f"{self._connect_timeout:g} s: {exc.strerror or exc}"
                        ) from exc
                    self._wait(delay)
                    delay = min(delay * 2, self._backoff_max)
                    continue
                deadline = None
                delay = self._backoff_initial
                self.connections += 1
                _log.info("vpcd connected", vpcd=str(self._address))
                if self._on_connected is not None:
                    self._on_connected(self._address)
                try:
                    self._session(sock)
                except _LinkLostError as exc:
                    # vpcd going away is a card removal: the card loses power.
                    _log.warning("vpcd link lost", vpcd=str(self._address), reason=str(exc))
                    self._card.power_off()
                finally:
                    sock.close()
        except _StoppedError:
            pass
        _log.info("vpcd connector stopped", vpcd=str(self._address))

    # -- connection -------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        infos = socket.getaddrinfo(self._address.host, self._address.port, type=socket.SOCK_STREAM)
        last: OSError = OSError(f"no address for {self._address.host}")
        for family, type_, proto, _name, sockaddr in infos:
            sock = socket.socket(family, type_, proto)
            try:
                self._connect_one(sock, sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:  # a stop while connecting must not leak the socket
                sock.close()
                raise
            return sock
        raise last

    def _connect_one(self, sock: socket.socket, sockaddr: tuple[object, ...]) -> None:
        sock.setblocking(False)
        err = sock.connect_ex(sockaddr)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        if err:
            _r, w, _x = select.select([self._wake_r], [sock], [], 2.0)
            self._check_stop()
            if not w:
                raise TimeoutError("connect timed out")
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
        sock.setblocking(True)
        # Without these, delayed ACKs cost ~40 ms per APDU (vpcd writes twice per frame).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _wait(self, seconds: float) -> None:
        select.select([self._wake_r], [], [], seconds)
        self._check_stop()

    def _check_stop(self) -> None:
        if self._stop_requested:
            raise _StoppedError

    # -- the protocol -------------------------------------------------------------------

    def _session(self, sock: socket.socket) -> None:
        self._buf.clear()
        while True:
            payload = self._read_frame(sock)
            reply = self._handle(payload)
            if reply is not None:
                try:
                    sock.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError as exc:
                    raise _LinkLostError(f"send failed: {exc}") from exc
            self._check_stop()

    def _read_frame(self, sock: socket.socket) -> bytes:
        self._fill(sock, 2, first=True)
        length = int.from_bytes(self._buf[:2], "big")
        if length == 0:
            raise _LinkLostError("empty frame")
        self._fill(sock, 2 + length, first=False)
        payload = bytes(self._buf[2 : 2 + length])
        del self._buf[: 2 + length]
        return payload

    def _fill(self, sock: socket.socket, need: int, *, first: bool) -> None:
        while len(self._buf) < need:
            timeout = None if first and not self._buf else _MID_FRAME_TIMEOUT
            readable, _w, _x = select.select([sock, self._wake_r], [], [], timeout)
            self._check_stop()
            if not readable:
                raise _LinkLostError("vpcd stalled in the middle of a frame")
            # Re-armed before every receive: Linux clears QUICKACK after a while.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            try:
                chunk = sock.recv(65536)
            except OSError as exc:
                raise _LinkLostError(f"receive failed: {exc}") from exc
            if not chunk:
                raise _LinkLostError("vpcd closed the connection")
            self._buf += chunk

    def _handle(self, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            code = payload[0]
            if code == CTRL_ATR:
                return self._card.atr
            if code == CTRL_OFF:
                _log.debug("power off")
                self._card.power_off()
            elif code == CTRL_ON:
                _log.debug("power on")
                self._card.power_on()
            elif code == CTRL_RESET:
                _log.debug("reset")
                self._card.reset()
            else:
                # Not in the protocol; answering could desynchronise vpcd, so ignore it.
                _log.warning("unknown vpcd control byte", code=f"{code:02x}")
            return None
        response = self._card.transmit(payload)
        if self._trace:
            # A PIN command's answer is only a status word; log no more than that.
            secret = len(payload) > 1 and payload[1] in _SECRET_INS
            r = response[-2:].hex() if secret else response.hex()
            _log.debug("apdu", c=redact_apdu(payload), r=r)
        return response


def serve_until_signalled(
    card: CardLike,
    address: VpcdAddress = DEFAULT_VPCD,
    *,
    connect_timeout: float = 10.0,
    trace: bool = False,
) -> None:
    """Run a connector in this (main) thread until SIGTERM or SIGINT, then return.

    Raises :class:`VpcdUnreachableError` when vpcd cannot be reached at start. The
    previous signal handlers are restored on the way out; closing the card is the
    caller's job.
    """
    connector = VpcdConnector(card, address, connect_timeout=connect_timeout, trace=trace)

    def _on_signal(signum: int, _frame: object) -> None:
        _log.info("stop requested", signal=signal.Signals(signum).name)
        connector.stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        connector.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        connector.close()


def configure_stderr_logging(*, debug: bool = False) -> None:
    """Let info lines through (debug ones too with ``debug``), nothing else changed.

    The output stays what the CLI set up for every command (JSON with journald's
    priorities under systemd, redaction of secrets): only the threshold moves.
    """
    level = logging.DEBUG if debug else logging.INFO
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
