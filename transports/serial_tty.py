"""``serial:///dev/TTY?baud=N`` URLs and opening a tty raw, exclusive and non-blocking.

termios + ``loop.add_reader`` rather than pyserial-asyncio-fast: the link needs
exactly raw 8N1 at a baud rate, an exclusive lock, non-blocking reads and a clear
hang-up signal (``read`` returning 0 or ``EIO``), which is about forty lines of
stdlib; pyserial's transport would add a layer that turns hang-ups into generic
``SerialException``s and buffers writes where our ARQ wants to pace them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import termios
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from .errors import TransportSpecError

__all__ = [
    "BAUD_RATES",
    "DEFAULT_BAUD",
    "SerialAddress",
    "describe_os_error",
    "error_code",
    "open_tty",
    "parse_serial_url",
]

DEFAULT_BAUD = 115200
#: Baud rates this system's termios can set.
BAUD_RATES: dict[int, int] = {
    rate: getattr(termios, f"B{rate}")
    for rate in (
        1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
        500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 3000000, 4000000,
    )
    if hasattr(termios, f"B{rate}")
}  # fmt: skip


@dataclass(frozen=True)
class SerialAddress:
    """A parsed serial URL."""

    path: str
    baud: int
    #: Seconds of silence after which the peer counts as gone (``None``: the default).
    dead_after: float | None = None

    @property
    def url(self) -> str:
        """The canonical URL."""
        extra = "" if self.dead_after is None else f"&dead_after={self.dead_after:g}"
        return f"serial://{self.path}?baud={self.baud}{extra}"


def parse_serial_url(url: str) -> SerialAddress:
    """Parse ``serial:///dev/TTY[?baud=N][&dead_after=S]``; ``TransportSpecError`` if bad."""
    hint = "expected serial:///dev/TTY?baud=N"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise TransportSpecError(f"bad serial URL {url!r}: {exc}") from exc
    if parts.scheme != "serial":
        raise TransportSpecError(f"not a serial URL: {url!r} ({hint})")
    if parts.netloc:
        raise TransportSpecError(
            f"bad serial URL {url!r}: the device path needs three slashes, "
            f"as in serial:///dev/rfcomm0"
        )
    if not parts.path.startswith("/") or parts.path == "/":
        raise TransportSpecError(f"bad serial URL {url!r}: no absolute device path ({hint})")
    if parts.fragment or url.endswith("#"):
        raise TransportSpecError(f"bad serial URL {url!r}: no fragment allowed")
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise TransportSpecError(f"bad serial URL {url!r}: malformed query ({hint})") from exc
    keys = [k for k, _ in query]
    unknown = sorted(set(keys) - {"baud", "dead_after"})
    if unknown:
        raise TransportSpecError(
            f"bad serial URL {url!r}: unknown parameter(s) {', '.join(unknown)} "
            "(known: baud, dead_after)"
        )
    params = dict(query)
    if len(params) < len(keys):
        raise TransportSpecError(f"bad serial URL {url!r}: a parameter is given twice")
    baud = DEFAULT_BAUD
    if "baud" in params:
        text = params["baud"]
        if not text.isdigit() or int(text) not in BAUD_RATES:
            raise TransportSpecError(
                f"bad serial URL {url!r}: baud must be one of "
                f"{', '.join(map(str, BAUD_RATES))}, got {text!r}"
            )
        baud = int(text)
    dead_after = None
    if "dead_after" in params:
        try:
            dead_after = float(params["dead_after"])
        except ValueError:
            dead_after = -1.0
        if not 0.1 <= dead_after <= 3600:
            raise TransportSpecError(
                f"bad serial URL {url!r}: dead_after must be 0.1-3600 seconds, "
                f"got {params['dead_after']!r}"
            )
    return SerialAddress(parts.path, baud, dead_after)


def open_tty(address: SerialAddress) -> int:
    """Open the tty raw 8N1 at the baud rate, locked, non-blocking, input flushed."""
    fd = os.open(address.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        # flock, not just TIOCEXCL: root ignores TIOCEXCL, and two simsyncs on one
        # line would each eat half of the other's packets.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
        iflag &= ~(
            termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
            | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON
            | termios.IXOFF | termios.IXANY | termios.INPCK
        )  # fmt: skip
        oflag &= ~termios.OPOST
        lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB | termios.CRTSCTS)
        # CLOCAL: a three-wire line has no carrier detect; RFCOMM hangs up on its own.
        cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
        cc[termios.VMIN] = 0
        cc[termios.VTIME] = 0
        speed = BAUD_RATES[address.baud]
        termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
        termios.tcflush(fd, termios.TCIOFLUSH)  # whatever waited on the line is stale
    except BaseException:
        os.close(fd)
        raise
    return fd


def error_code(exc: OSError | termios.error) -> int | None:
    """The errno of a failed tty call (termios.error carries it as its first argument)."""
    if isinstance(exc, OSError):
        return exc.errno
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


def describe_os_error(exc: OSError | termios.error) -> str:
    """Why a tty could not be opened, with the fix where there is one."""
    code = error_code(exc)
    if code in (errno.EWOULDBLOCK, errno.EAGAIN):
        return "the device is in use by another program (it holds the lock)"
    if code == errno.ENOENT:
        return "no such device (for Bluetooth, bind it first: rfcomm bind 0 AA:BB:..)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (add the user to the dialout group)"
    if code == errno.ENOTTY:
        return "not a terminal device"
    if code == errno.EBUSY:
        return "the device is busy"
    text = exc.strerror if isinstance(exc, OSError) else str(exc.args[-1])
    return text or str(exc)
