"""The seam every transport implements: a reliable, ordered link carrying whole frames."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from .errors import TransportClosed, TransportSpecError

__all__ = [
    "DEFAULT_MAX_FRAME",
    "FrameLink",
    "Listener",
    "TransportDriver",
    "check_max_frame",
]

#: Largest frame a link accepts unless told otherwise (1 MiB): a whole phonebook
#: fits many times over, and a hostile length prefix can never make us reserve more.
DEFAULT_MAX_FRAME = 1 << 20

#: The 4-byte length prefix cannot describe more than this.
_PREFIX_LIMIT = (1 << 32) - 1


def check_max_frame(max_frame: int) -> int:
    """Return *max_frame* if it is a usable frame-size limit, else raise ``ValueError``."""
    if isinstance(max_frame, bool) or not isinstance(max_frame, int):
        raise TransportSpecError(f"max_frame must be an int, not {type(max_frame).__name__}")
    if not 1 <= max_frame <= _PREFIX_LIMIT:
        raise TransportSpecError(f"max_frame must be in 1..{_PREFIX_LIMIT}, got {max_frame}")
    return max_frame


class _Closing(ABC):
    """``async with`` support for anything that has an async ``close``."""

    @abstractmethod
    async def close(self) -> None:
        """Release the resource (idempotent)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class FrameLink(_Closing):
    """A connected, reliable, ordered link that carries whole frames (byte strings).

    ``send`` and ``recv`` may run concurrently from different tasks; concurrent
    ``send`` calls never interleave their frames. After ``close`` (by either side)
    ``recv`` raises :class:`~transports.errors.TransportClosed`.
    """

    #: Human description of the other end (for logs and error messages).
    peer: str
    #: Largest frame this link sends or accepts; checked at every send and recv, so a
    #: layer above may lower it for a while (TLS does until the peer is authenticated).
    max_frame: int

    @abstractmethod
    async def send(self, frame: bytes) -> None:
        """Send one frame; raise ``FramingError`` if it exceeds ``max_frame``."""

    @abstractmethod
    async def recv(self) -> bytes:
        """Receive the next frame; raise ``TransportClosed`` once the link has ended."""

    @abstractmethod
    async def close(self) -> None:
        """Close the link (idempotent); the peer's ``recv`` then raises ``TransportClosed``."""


class Listener(_Closing):
    """The server side of a transport: hands out one :class:`FrameLink` per peer."""

    #: The URL peers connect to (with the real port when listening on port 0).
    url: str

    @abstractmethod
    async def accept(self) -> FrameLink:
        """Wait for the next peer; raise ``TransportClosed`` once the listener is closed."""

    @abstractmethod
    async def close(self) -> None:
        """Stop listening (idempotent); links not yet accepted are closed."""


class QueueListener(Listener):
    """A listener whose driver queues incoming links with ``_deliver``.

    ``accept`` waits on the queue; ``_close_pending`` (for the driver's ``close``)
    closes links nobody accepted and wakes every waiting ``accept`` with
    ``TransportClosed``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._pending: asyncio.Queue[FrameLink | None] = asyncio.Queue()
        self._closed = False

    def _deliver(self, link: FrameLink) -> None:
        self._pending.put_nowait(link)

    async def accept(self) -> FrameLink:
        """Wait for the next peer."""
        if self._closed:
            raise TransportClosed(f"listener {self.url} is closed")
        link = await self._pending.get()
        if link is None:
            self._pending.put_nowait(None)  # leave the marker for other waiting accepts
            raise TransportClosed(f"listener {self.url} is closed")
        return link

    async def _close_pending(self) -> None:
        while not self._pending.empty():
            link = self._pending.get_nowait()
            if link is not None:
                await link.close()
        self._pending.put_nowait(None)


def reject_options(url: str, options: Mapping[str, object]) -> None:
    """``TransportSpecError`` for options a driver does not take."""
    if options:
        raise TransportSpecError(f"unknown option(s) for {url}: {', '.join(sorted(options))}")


@dataclass(frozen=True)
class TransportDriver:
    """What a scheme's module exports (as ``DRIVER``) for the registry.

    Both callables take the full URL, ``max_frame=`` and ``options=`` (the extra
    keyword arguments, which a driver rejects with ``TransportSpecError`` if unknown).
    """

    connect: Callable[..., Awaitable[FrameLink]]
    listen: Callable[..., Awaitable[Listener]]
    #: Validates a URL to connect to without connecting (``TransportSpecError`` if bad).
    check: Callable[[str], object] | None = None

    async def open(self, url: str, max_frame: int, options: Mapping[str, object]) -> FrameLink:
        """Connect to *url*."""
        return await self.connect(url, max_frame=max_frame, options=options)

    async def serve(self, url: str, max_frame: int, options: Mapping[str, object]) -> Listener:
        """Listen on *url*."""
        return await self.listen(url, max_frame=max_frame, options=options)
