"""sd_notify: tell systemd (or a test socket) what the daemon is doing.

Our own sender, because the small libraries swallow errors. One datagram per call
on an ``AF_UNIX``/``SOCK_DGRAM`` socket to ``$NOTIFY_SOCKET`` (a path, or an
abstract name written ``@name``). Without ``NOTIFY_SOCKET`` every call is a no-op,
so the same daemon runs under systemd, in a terminal and in tests. A failed send is
logged (once per distinct error until a send works again) and never raises: the
service must not die because the supervisor's socket is gone.

The socket is non-blocking, so a full receive queue (the supervisor not reading for a
while) refuses a datagram at once. A refused WATCHDOG or STATUS is simply outdated by
the next one; a refused state change (READY, RELOADING, STOPPING) is owed, and so is
every state change after it until it went: they go out again, in order, before
anything else is sent, and on their own from the event loop (0.2 s, then doubling to
5 s), so systemd hears READY=1 late rather than never.

Use from the service::

    notify = Notifier.from_env()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(notify.watchdog())     # WATCHDOG=1 at half of WATCHDOG_USEC
        ...                                   # config, card watch, MQTT up
        notify.ready("idle, card present")    # READY=1 + STATUS=
        notify.status("syncing with pda1")   # STATUS= lines for `systemctl status`
        notify.reloading()                    # on SIGHUP, then ready() once re-read
        notify.stopping()                     # on SIGTERM

The watchdog pings from the event loop itself, so a blocked loop stops the pings
and systemd restarts the service (``WatchdogSec=`` in the unit).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Mapping

import structlog

__all__ = ["MAX_OWED", "Notifier"]

#: State changes kept for a supervisor that does not read: READY, RELOADING, STOPPING
#: come a few at a time, so more than this means it is gone for good.
MAX_OWED = 16

_log = structlog.get_logger("simsync.notify")


class Notifier:
    """An sd_notify sender bound to one socket address (None: every call is a no-op)."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        # Half the watchdog period, as systemd recommends; None: no watchdog wanted.
        self.watchdog_interval = watchdog_usec / 2e6 if watchdog_usec else None
        self._sock: socket.socket | None = None
        self._failing: str | None = None  # the last error logged, to log it once
        # State changes the full queue refused, in order, sent before anything else.
        self._owed: list[tuple[str, ...]] = []
        self._retry: asyncio.TimerHandle | None = None
        self._retry_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` (when meant for us)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process systemd watches; a child that inherited the
        # variables must not ping on its parent's behalf.
        if raw and (not pid or pid == str(os.getpid())):
            try:
                usec = int(raw)
            except ValueError:
                _log.warning("watchdog_usec_invalid", value=raw)
            else:
                if usec <= 0:
                    _log.warning("watchdog_usec_invalid", value=raw)
                    usec = None
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to talk to."""
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; True when it was delivered.

        What is owed goes first; a state change the full queue refuses, or one that
        comes while something is owed, is owed (module doc).
        """
        if self.address is None:
            return False
        sent = self._pay_owed() and self._deliver(fields, self.address)
        if not sent and _is_state(fields) and (sent is None or self._owed):
            self._owe(fields)
        return bool(sent)

    def _owe(self, fields: tuple[str, ...]) -> None:
        if len(self._owed) >= MAX_OWED:  # a supervisor gone for good: keep the oldest
            _log.warning("sd_notify_dropped", fields=_keys(fields))
            return
        self._owed.append(fields)
        _log.warning(
            "sd_notify_owed",
            socket=self.address,
            fields=_keys(fields),
            effect="sent again before anything else, retried from the event loop",
        )
        self._schedule_retry(0.2)

    def _pay_owed(self) -> bool | None:
        """Send what is owed, in order: True when all went; else as `_deliver`."""
        while self._owed:
            assert self.address is not None
            sent = self._deliver(self._owed[0], self.address)
            if not sent:
                return sent
            self._owed.pop(0)
        return True

    def _schedule_retry(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a one-shot caller): the next send retries
            return
        if self._retry is not None:
            if self._retry_loop is loop and not loop.is_closed():
                return  # one retry at a time
            self._retry.cancel()  # left by a loop that has ended
        self._retry_loop = loop
        self._retry = loop.call_later(delay, self._retry_owed, delay)

    def _retry_owed(self, delay: float) -> None:
        self._retry = None
        if self.address is not None and not self._pay_owed():  # still refused
            self._schedule_retry(min(delay * 2, 5.0))

    def _deliver(self, fields: tuple[str, ...], address: str) -> bool | None:
        """One datagram now: True sent, None refused by a full queue, False failed.

        Failures, the full queue among them, are logged once per distinct error.
        """
        payload = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = self._connect(address)
            self._sock.send(payload)
        except OSError as exc:
            full = isinstance(exc, BlockingIOError)
            if not full:
                self._close()
            reason = exc.strerror or str(exc)
            if reason != self._failing:
                # Logged once per distinct error; a healthy send re-arms it.
                _log.warning(
                    "sd_notify_failed",
                    socket=address,
                    error=reason,
                    errno=errno.errorcode.get(exc.errno or 0, exc.errno),
                    fields=_keys(fields),
                )
                self._failing = reason
            return None if full else False
        if self._failing is not None:
            _log.info("sd_notify_recovered", socket=address)
            self._failing = None
        return True

    @staticmethod
    def _connect(address: str) -> socket.socket:
        if address.startswith("@"):
            target = "\0" + address[1:]  # abstract namespace
        elif address.startswith("/"):
            target = address
        else:
            # systemd also knows vsock:CID:PORT; we only run on the local host.
            raise OSError(errno.EAFNOSUPPORT, f"unsupported NOTIFY_SOCKET {address!r}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # Non-blocking: a full receive queue must not stall the event loop.
        sock.setblocking(False)
        try:
            sock.connect(target)
        except OSError:
            sock.close()
            raise
        return sock

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Release the socket (sending again reopens it, and sends what is owed first);
        no retry runs from the event loop after this."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._close()

    def ready(self, status: str | None = None) -> bool:
        """READY=1 (start-up or a reload finished), with an optional STATUS= line."""
        fields = ["READY=1"]
        if status is not None:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)

    def status(self, text: str) -> bool:
        """STATUS=: one line a person reads in ``systemctl status``."""
        return self.send(f"STATUS={_one_line(text)}")

    def reloading(self, status: str | None = None) -> bool:
        """RELOADING=1 with MONOTONIC_USEC (as systemd >= 253 requires); ready() after."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        fields = ["RELOADING=1", f"MONOTONIC_USEC={usec}"]
        if status is not None:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1: the service is shutting down (SIGTERM received)."""
        fields = ["STOPPING=1"]
        if status is not None:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)

    def ping(self) -> bool:
        """One WATCHDOG=1."""
        return self.send("WATCHDOG=1")

    async def watchdog(self) -> None:
        """Ping WATCHDOG=1 every half period, from the event loop, until cancelled.

        Returns at once when no watchdog is configured (no ``WATCHDOG_USEC`` for us,
        or no socket). Because the pings come from this loop, a callback that blocks
        the loop stops them and systemd notices.
        """
        interval = self.watchdog_interval
        if interval is None or self.address is None:
            return
        while True:
            self.ping()
            await asyncio.sleep(interval)


def _keys(fields: tuple[str, ...]) -> list[str]:
    """The KEYs of ``KEY=VALUE`` fields, as a log line names them (a STATUS text is not logged)."""
    return [f.split("=", 1)[0] for f in fields]


def _is_state(fields: tuple[str, ...]) -> bool:
    """A state change: the supervisor must hear it, even late (READY, RELOADING, STOPPING)."""
    return any(f in ("READY=1", "RELOADING=1", "STOPPING=1") for f in fields)


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE field in the datagram.
    return " ".join(text.split())
