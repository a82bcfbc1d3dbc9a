"""Fixtures for the transports tests: device identities and connected link pairs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.ptyline import PtyLine
from transports import FrameLink, Identity, Listener, listen, open_transport, tls_client, tls_server

_names = itertools.count()


@dataclass
class Site:
    """Where one transport kind listens and connects, and how its peer can vanish."""

    listen_url: str
    #: The URL a client uses, given the listener (tcp: its real port; serial: the far tty).
    connect_url: Callable[[Listener], str]
    #: make the server end disappear without a goodbye (a killed peer, a cut cable)
    vanish: Callable[[FrameLink], Awaitable[None]]
    #: keyword options for both listen() and open_transport() (short time-outs in tests)
    options: Mapping[str, Any] = field(default_factory=dict)


async def _close(link: FrameLink) -> None:
    await link.close()


async def _abort_tcp(link: FrameLink) -> None:
    link._writer.transport.abort()  # type: ignore[attr-defined]  # an RST, as from a dead host


@contextlib.asynccontextmanager
async def memory_site() -> AsyncIterator[Site]:
    """memory:NAME in this process."""
    yield Site(f"memory:t{next(_names)}", lambda listener: listener.url, _close)


@contextlib.asynccontextmanager
async def tcp_site() -> AsyncIterator[Site]:
    """Loopback TCP on a free port."""
    yield Site("tcp://127.0.0.1:0", lambda listener: listener.url, _abort_tcp)


@contextlib.asynccontextmanager
async def serial_site() -> AsyncIterator[Site]:
    """Two kernel ptys joined by a relay: the listener on one end, the client on the other."""
    line = PtyLine()

    async def cut(_link: FrameLink) -> None:
        line.cut()

    try:
        yield Site(f"serial://{line.a}", lambda _: f"serial://{line.b}", cut, {"dead_after": 1.0})
    finally:
        await line.close()


@contextlib.asynccontextmanager
async def ble_site() -> AsyncIterator[Site]:
    """Both BLE ends over the mocked BlueZ on a private system bus: the phone's bleak
    on hci0, the PDA's D-Bus GATT application on hci1 (tests/fixtures/bluez.py)."""
    from tests.fixtures.bluez import (
        PDA_ADAPTER,
        PDA_ADDRESS,
        PHONE_ADAPTER,
        close_bleak_manager,
        device_path,
        private_bluez,
    )

    with tempfile.TemporaryDirectory(prefix="ble-") as tmp, private_bluez(Path(tmp)) as mock:
        mock.phone_and_pda()

        async def out_of_range(_link: FrameLink) -> None:
            mock.drop_link(device_path(PDA_ADDRESS, PHONE_ADAPTER))

        try:
            yield Site(f"ble:?adapter={PDA_ADAPTER}", lambda listener: listener.url, out_of_range)
        finally:
            await close_bleak_manager()


#: Base transports by kind; a new transport adds its site here.
SITES: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Site]]] = {
    "memory": memory_site,
    "tcp": tcp_site,
    "serial": serial_site,
    "ble": ble_site,
}
#: Every implementation the contract runs against.
KINDS = [*SITES, *(f"{kind}+tls" for kind in SITES)]


@pytest.fixture(scope="session")
def ids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    """Three device identities: a (client), b (server), and a stranger c."""
    root = tmp_path_factory.mktemp("identities")
    return {name: Identity.load_or_create(root / name) for name in "abc"}


def base_url(kind: str) -> str:
    """A listen URL for the base transport of *kind*."""
    return f"memory:t{next(_names)}" if kind.startswith("memory") else "tcp://127.0.0.1:0"


async def connected(url: str) -> tuple[FrameLink, FrameLink, Listener]:
    """Listen on *url*, connect to it, and return (client, server, listener)."""
    listener = await listen(url)
    try:
        client, server = await asyncio.gather(open_transport(listener.url), listener.accept())
    except BaseException:
        await listener.close()
        raise
    return client, server, listener


async def connected_at(site: Site) -> tuple[FrameLink, FrameLink, Listener]:
    """Listen at *site*, connect to it, and return (client, server, listener)."""
    listener = await listen(site.listen_url, **site.options)
    try:
        client, server = await asyncio.gather(
            open_transport(site.connect_url(listener), **site.options), listener.accept()
        )
    except BaseException:
        await listener.close()
        raise
    return client, server, listener


@pytest.fixture(params=list(SITES))
async def site(request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    """A place to listen and connect for each base transport."""
    async with SITES[request.param]() as found:
        yield found


@pytest.fixture(params=KINDS)
async def pair(
    request: pytest.FixtureRequest, ids: dict[str, Identity]
) -> AsyncIterator[tuple[FrameLink, FrameLink]]:
    """A connected (client, server) pair of the parametrised kind, closed afterwards."""
    kind: str = request.param
    async with contextlib.AsyncExitStack() as stack:
        found = await stack.enter_async_context(SITES[kind.split("+", maxsplit=1)[0]]())
        client, server, listener = await connected_at(found)
        try:
            if kind.endswith("+tls"):
                client, server = await asyncio.gather(
                    tls_client(client, ids["a"], {ids["b"].device_id}),
                    tls_server(server, ids["b"], {ids["a"].device_id}),
                )
            yield client, server
        finally:
            await client.close()
            await server.close()
            await listener.close()


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    """A fresh directory for an identity."""
    return tmp_path / "identity"


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (a reader nobody stops...)."""
    before = asyncio.all_tasks()
    yield
    leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked tasks: {leaked}"
