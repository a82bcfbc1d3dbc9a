"""Fixtures of the MQTT tests: a World (card image + PDA servers) and daemon processes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import World
from tests.mqtt.rig import DaemonProc


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """One phone (card image, state dir) and no PDA yet; PDAs stopped at the end."""
    w = World(tmp_path)
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
def daemon() -> Iterator[Callable[[Path], DaemonProc]]:
    """Factory ``daemon(config) -> DaemonProc`` (started); all stopped by PID at the end."""
    made: list[DaemonProc] = []

    def factory(config: Path, **kw: object) -> DaemonProc:
        proc = DaemonProc(config, **kw)  # type: ignore[arg-type]
        made.append(proc)
        return proc.start()

    try:
        yield factory
    finally:
        for proc in made:
            proc.stop()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect at teardown, so an unclosed socket is blamed on the test that left it."""
    yield
    gc.collect()
