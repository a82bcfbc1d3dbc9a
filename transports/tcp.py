"""``tcp://HOST:PORT`` — frames over asyncio TCP streams (``[v6addr]`` in brackets)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .base import FrameLink, Listener, QueueListener, TransportDriver, reject_options
from .errors import ConnectFailed, ListenFailed, TransportSpecError
from .framing import StreamFrameLink

__all__ = ["DRIVER", "TcpAddress", "TcpListener", "connect", "listen", "parse_tcp_url"]


@dataclass(frozen=True)
class TcpAddress:
    """A parsed ``tcp://HOST:PORT``."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The canonical URL of this address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_tcp_url(url: str, *, allow_port_zero: bool = False) -> TcpAddress:
    """Parse ``tcp://HOST:PORT``; ``TransportSpecError`` naming what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TransportSpecError(f"bad tcp URL {url!r}: {exc}") from exc
    if parts.scheme != "tcp":
        raise TransportSpecError(f"not a tcp URL: {url!r} (expected tcp://HOST:PORT)")
    if not parts.netloc:
        raise TransportSpecError(f"bad tcp URL {url!r}: expected tcp://HOST:PORT")
    if parts.username is not None or parts.password is not None:
        raise TransportSpecError(f"bad tcp URL {url!r}: user info is not supported")
    if parts.path or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise TransportSpecError(f"bad tcp URL {url!r}: no path, query or fragment allowed")
    host = parts.hostname
    if not host:
        raise TransportSpecError(f"bad tcp URL {url!r}: missing host")
    if port is None:
        raise TransportSpecError(f"bad tcp URL {url!r}: missing port (expected tcp://HOST:PORT)")
    if port == 0 and not allow_port_zero:
        raise TransportSpecError(f"bad tcp URL {url!r}: port 0 is only valid for listening")
    return TcpAddress(host, port)


def _describe(writer: asyncio.StreamWriter, fallback: str) -> str:
    peername = writer.get_extra_info("peername")
    if isinstance(peername, tuple) and len(peername) >= 2:
        return TcpAddress(str(peername[0]), int(peername[1])).url
    return fallback


async def connect(url: str, *, max_frame: int, options: Mapping[str, object]) -> FrameLink:
    """Driver entry: connect to ``tcp://HOST:PORT``."""
    address = parse_tcp_url(url)
    reject_options(url, options)
    try:
        reader, writer = await asyncio.open_connection(address.host, address.port)
    except OSError as exc:  # refused, unreachable, name not resolved (gaierror)
        raise ConnectFailed(url, exc.strerror or str(exc)) from exc
    return StreamFrameLink(reader, writer, _describe(writer, address.url), max_frame)


class TcpListener(QueueListener):
    """A listening TCP socket; ``url`` carries the real port when asked for port 0."""

    def __init__(self, server: asyncio.Server, url: str, max_frame: int) -> None:
        super().__init__(url)
        self._server = server
        self._max_frame = max_frame

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback (not a coroutine) so asyncio starts no task per connection.
        link = StreamFrameLink(reader, writer, _describe(writer, "tcp peer"), self._max_frame)
        if self._closed:
            writer.close()
            return
        self._deliver(link)

    async def close(self) -> None:
        """Stop listening and close connections nobody accepted."""
        if self._closed:
            return
        self._closed = True
        # close() releases the listening sockets at once; wait_closed() is not awaited
        # because from Python 3.12 it also waits for every accepted link to close.
        self._server.close()
        await self._close_pending()


async def listen(url: str, *, max_frame: int, options: Mapping[str, object]) -> Listener:
    """Driver entry: listen on ``tcp://HOST:PORT`` (port 0 picks a free port)."""
    address = parse_tcp_url(url, allow_port_zero=True)
    reject_options(url, options)
    holder: list[TcpListener] = []

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not holder:  # a peer raced start-up on a fixed port: refuse it cleanly
            writer.close()
            return
        holder[0]._on_connection(reader, writer)

    try:
        server = await asyncio.start_server(
            on_connection, address.host, address.port, family=socket.AF_UNSPEC
        )
    except OSError as exc:
        raise ListenFailed(f"cannot listen on {url}: {exc.strerror or exc}") from exc
    sockname = server.sockets[0].getsockname()
    listener = TcpListener(server, TcpAddress(address.host, int(sockname[1])).url, max_frame)
    holder.append(listener)
    return listener


#: The registry's entry point for this scheme.
DRIVER = TransportDriver(connect=connect, listen=listen, check=parse_tcp_url)
