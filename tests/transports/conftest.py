"""Fixtures for the transports tests: device identities and connected link pairs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from transports import FrameLink, Identity, Listener, listen, open_transport, tls_client, tls_server

_names = itertools.count()

#: Every implementation the contract runs against.
KINDS = ["memory", "tcp", "memory+tls", "tcp+tls"]


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


@pytest.fixture(params=KINDS)
async def pair(
    request: pytest.FixtureRequest, ids: dict[str, Identity]
) -> AsyncIterator[tuple[FrameLink, FrameLink]]:
    """A connected (client, server) pair of the parametrised kind, closed afterwards."""
    kind: str = request.param
    client, server, listener = await connected(base_url(kind))
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
