"""``memory:NAME`` — in-process links through a named hub: the fake shipped for tests.

A listener registers NAME in the hub; ``open_transport("memory:NAME")`` creates a
connected pair and hands one end to the listener. Frames are passed as immutable
``bytes`` objects, so nothing is framed or copied twice.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from .base import (
    DEFAULT_MAX_FRAME,
    FrameLink,
    Listener,
    QueueListener,
    TransportDriver,
    check_max_frame,
    reject_options,
)
from .errors import ConnectFailed, FramingError, ListenFailed, TransportClosed, TransportSpecError

__all__ = [
    "DRIVER",
    "MemoryLink",
    "MemoryListener",
    "connect",
    "listen",
    "memory_pair",
    "parse_name",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_EOF = object()  # queued by close(): the peer's recv ends here

# The hub: one listener per name, for the whole process.
_listeners: dict[str, MemoryListener] = {}


def parse_name(url: str) -> str:
    """Return NAME from ``memory:NAME``; ``TransportSpecError`` if malformed."""
    scheme, sep, name = url.partition(":")
    if scheme != "memory" or not sep:
        raise TransportSpecError(f"not a memory URL: {url!r} (expected memory:NAME)")
    if not name:
        raise TransportSpecError(f"{url!r} has no name (expected memory:NAME)")
    if not _NAME.fullmatch(name):
        raise TransportSpecError(
            f"bad memory transport name {name!r} in {url!r}: use 1-128 characters "
            "from A-Z a-z 0-9 . _ - (starting with a letter or digit)"
        )
    return name


class MemoryLink(FrameLink):
    """One end of an in-process link; build pairs with :func:`memory_pair`."""

    def __init__(self, peer: str, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.peer = peer
        self.max_frame = check_max_frame(max_frame)
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._other: MemoryLink | None = None
        self._closed = False  # this end was closed
        self._ended = False  # the peer's EOF was consumed

    async def send(self, frame: bytes) -> None:
        """Deliver one frame to the other end."""
        if len(frame) > self.max_frame:
            raise FramingError(
                f"frame of {len(frame)} bytes exceeds the maximum of {self.max_frame}"
            )
        other = self._other
        if self._closed or other is None or other._closed:
            raise TransportClosed(f"link to {self.peer} is closed")
        other._inbox.put_nowait(bytes(frame))

    async def recv(self) -> bytes:
        """Return the next frame from the other end."""
        if self._closed or self._ended:
            raise TransportClosed(f"link to {self.peer} is closed")
        item = await self._inbox.get()
        if item is _EOF:
            self._ended = True
            raise TransportClosed(
                f"link to {self.peer} is closed" if self._closed else f"{self.peer} closed the link"
            )
        assert isinstance(item, bytes)
        if len(item) > self.max_frame:
            raise FramingError(
                f"{self.peer} sent {len(item)} bytes, more than the maximum of {self.max_frame}"
            )
        return item

    async def close(self) -> None:
        """Close both directions; wakes a pending ``recv`` on either end."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put_nowait(_EOF)  # wake our own pending recv
        if self._other is not None and not self._other._closed:
            self._other._inbox.put_nowait(_EOF)


def memory_pair(
    name: str = "pair", max_frame: int = DEFAULT_MAX_FRAME
) -> tuple[MemoryLink, MemoryLink]:
    """Return two connected :class:`MemoryLink` ends (client end first)."""
    client = MemoryLink(f"memory:{name} (server end)", max_frame)
    server = MemoryLink(f"memory:{name} (client end)", max_frame)
    client._other, server._other = server, client
    return client, server


class MemoryListener(QueueListener):
    """Accepts links opened to ``memory:NAME`` while registered in the hub."""

    def __init__(self, name: str, max_frame: int) -> None:
        super().__init__(f"memory:{name}")
        self.max_frame = max_frame
        self._name = name

    def _offer(self, max_frame: int) -> MemoryLink:
        # The pair agrees on the smaller limit, as two TCP ends configured differently would
        # simply fail on the larger frames; here we make the agreement explicit.
        client, server = memory_pair(self._name, min(max_frame, self.max_frame))
        self._deliver(server)
        return client

    async def close(self) -> None:
        """Unregister the name, close links nobody accepted, and wake pending accepts."""
        if self._closed:
            return
        self._closed = True
        if _listeners.get(self._name) is self:
            del _listeners[self._name]
        await self._close_pending()


async def connect(url: str, *, max_frame: int, options: Mapping[str, object]) -> FrameLink:
    """Driver entry: open a link to the listener registered as ``memory:NAME``."""
    name = parse_name(url)
    reject_options(url, options)
    listener = _listeners.get(name)
    if listener is None:
        raise ConnectFailed(url, "nothing is listening on that name")
    return listener._offer(max_frame)


async def listen(url: str, *, max_frame: int, options: Mapping[str, object]) -> Listener:
    """Driver entry: register ``memory:NAME`` in the hub."""
    name = parse_name(url)
    reject_options(url, options)
    if name in _listeners:
        raise ListenFailed(f"{url} is already being listened on in this process")
    listener = MemoryListener(name, max_frame)
    _listeners[name] = listener
    return listener


#: The registry's entry point for this scheme.
DRIVER = TransportDriver(connect=connect, listen=listen, check=parse_name)
