"""The URL registry: schemes, malformed URLs, lazy imports, listeners, connect errors."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Mapping

import pytest

from transports import (
    TRANSPORTS,
    ConnectFailed,
    FrameLink,
    Listener,
    ListenFailed,
    TransportClosed,
    TransportDriver,
    TransportSpecError,
    TransportTimeout,
    listen,
    open_transport,
    register_transport,
)
from transports.memory import memory_pair
from transports.tcp import TcpAddress, parse_tcp_url

from .conftest import base_url, connected


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://host:21", "unknown transport scheme 'ftp'"),
        ("no-colon-at-all", "expected SCHEME:"),
        (":5000", "expected SCHEME:"),
        ("", "expected SCHEME:"),
        ("tcp://host", "missing port"),
        ("tcp://host:", "missing port"),
        ("tcp://host:65536", "out of range"),
        ("tcp://host:-1", "bad tcp URL"),
        ("tcp://host:http", "bad tcp URL"),
        ("tcp://:5000", "missing host"),
        ("tcp://host:5000/path", "no path, query or fragment"),
        ("tcp://host:5000?x=1", "no path, query or fragment"),
        ("tcp://user@host:5000", "user info"),
        ("tcp:host:5000", "expected tcp://HOST:PORT"),
        ("tcp://127.0.0.1:0", "port 0 is only valid for listening"),
        ("memory:", "has no name"),
        ("memory:bad name", "bad memory transport name"),
        ("memory:/x", "bad memory transport name"),
    ],
)
async def test_malformed_urls_are_refused_precisely(url: str, match: str) -> None:
    with pytest.raises(TransportSpecError, match=match) as info:
        await open_transport(url)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", ["tcp://h", "memory:", "tcp://h:99999", "nope:x"])
async def test_listen_refuses_malformed_urls_too(url: str) -> None:
    with pytest.raises(TransportSpecError):
        await listen(url)


async def test_non_string_url_is_refused() -> None:
    with pytest.raises(TransportSpecError, match="must be a string"):
        await open_transport(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_unknown_options_are_refused(kind: str) -> None:
    listener = await listen(base_url(kind))
    try:
        with pytest.raises(TransportSpecError, match=r"unknown option.*colour"):
            await open_transport(listener.url, colour="red")
    finally:
        await listener.close()


@pytest.mark.parametrize("bad", [0, -1, True, "5"])
async def test_timeout_must_be_positive(bad: object) -> None:
    with pytest.raises(TransportSpecError, match="timeout"):
        await open_transport("memory:x", timeout=bad)  # type: ignore[arg-type]


def test_tcp_urls_parse_ipv6_and_round_trip() -> None:
    assert parse_tcp_url("tcp://[::1]:5000") == TcpAddress("::1", 5000)
    assert TcpAddress("::1", 5000).url == "tcp://[::1]:5000"
    assert parse_tcp_url("tcp://example.org:1") == TcpAddress("example.org", 1)


def test_scheme_drivers_are_imported_only_when_used() -> None:
    script = """
import asyncio, sys
import transports
assert "transports.tcp" not in sys.modules, "imported by the package"
assert "transports.memory" not in sys.modules, "imported by the package"
try:
    asyncio.run(transports.open_transport("memory:nobody"))
except transports.ConnectFailed:
    pass
assert "transports.memory" in sys.modules
assert "transports.tcp" not in sys.modules, "imported by using another scheme"
try:
    asyncio.run(transports.open_transport("tcp://h"))
except transports.TransportSpecError:
    pass
assert "transports.tcp" in sys.modules
print("lazy ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "lazy ok"


async def _loop_connect(url: str, *, max_frame: int, options: Mapping[str, object]) -> FrameLink:
    client, server = memory_pair(url, max_frame)
    await server.close()
    return client


async def _loop_listen(url: str, *, max_frame: int, options: Mapping[str, object]) -> Listener:
    raise AssertionError("not used")


#: A driver registered by a test, as a serial or BLE module would be.
LOOP_DRIVER = TransportDriver(connect=_loop_connect, listen=_loop_listen)


async def test_new_schemes_register_without_touching_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(TRANSPORTS, "loop", "")
    register_transport("loop", f"{__name__}:LOOP_DRIVER")
    link = await open_transport("loop:anything")
    with pytest.raises(TransportClosed):
        await link.recv()
    await link.close()


@pytest.mark.parametrize(("scheme", "target"), [("Bad", "m:a"), ("ok", "no-colon"), ("ok", "m:")])
def test_register_refuses_bad_entries(scheme: str, target: str) -> None:
    with pytest.raises(TransportSpecError):
        register_transport(scheme, target)
    assert scheme not in TRANSPORTS


async def test_memory_connect_without_listener_names_the_url() -> None:
    with pytest.raises(ConnectFailed, match="memory:nobody-home"):
        await open_transport("memory:nobody-home")


async def test_tcp_connect_refused_names_the_url() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(ConnectFailed, match=f"tcp://127.0.0.1:{port}") as info:
        await open_transport(f"tcp://127.0.0.1:{port}")
    assert info.value.url == f"tcp://127.0.0.1:{port}"


async def test_tcp_connect_timeout() -> None:
    # A listening socket with a full accept queue drops further SYNs, so the
    # connect neither succeeds nor fails: only the timeout can end it.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    try:
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        with pytest.raises(TransportTimeout, match=f"tcp://127.0.0.1:{port} timed out after 0.3"):
            await open_transport(f"tcp://127.0.0.1:{port}", timeout=0.3)
    finally:
        for filler in fillers:
            filler.close()
        full.close()


async def test_tcp_listener_reports_its_real_port() -> None:
    listener = await listen("tcp://127.0.0.1:0")
    try:
        assert listener.url.startswith("tcp://127.0.0.1:")
        assert parse_tcp_url(listener.url).port > 0
    finally:
        await listener.close()


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_listening_twice_on_one_address_fails(kind: str) -> None:
    first = await listen(base_url(kind))
    try:
        with pytest.raises(ListenFailed, match=first.url.split(":")[0]):
            await listen(first.url)
    finally:
        await first.close()


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_closing_a_listener_ends_accept_and_unaccepted_links(kind: str) -> None:
    listener = await listen(base_url(kind))
    url = listener.url
    client = await open_transport(url)
    accepted = await listener.accept()
    await accepted.close()
    unaccepted = await open_transport(url)  # never accepted: closing the listener ends it
    waiters = [asyncio.create_task(listener.accept()) for _ in range(2)]
    await listener.close()
    for waiter in waiters:
        with pytest.raises(TransportClosed):
            await waiter
    with pytest.raises(TransportClosed):
        await listener.accept()
    with pytest.raises(TransportClosed):
        await client.recv()
    with pytest.raises(TransportClosed):
        await unaccepted.recv()
    await client.close()
    await unaccepted.close()
    with pytest.raises(ConnectFailed):
        await open_transport(url)


async def test_accepted_tcp_link_describes_its_peer() -> None:
    client, server, listener = await connected("tcp://127.0.0.1:0")
    try:
        assert server.peer.startswith("tcp://127.0.0.1:")
        assert client.peer == listener.url
    finally:
        await client.close()
        await server.close()
        await listener.close()
