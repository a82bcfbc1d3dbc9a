"""Fixtures for the BLE tests: no leaked tasks, and bleak's per-loop BlueZ manager closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


async def _close_bleak_manager() -> None:
    """End bleak's BlueZ manager of this event loop (its D-Bus connection and watcher task).

    bleak keeps one manager per loop for the life of the process, which suits the
    daemon; a test's loop ends with the test, so we close it (private API, tests only).
    """
    from bleak.backends.bluezdbus import manager as bleak_manager

    instance = bleak_manager._global_instances.pop(asyncio.get_running_loop(), None)
    if instance is None or instance._bus is None:
        return
    watchers = [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "").endswith("_monitor_bus_disconnect")
    ]
    instance._bus.disconnect()
    await asyncio.gather(*watchers, return_exceptions=True)


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (a pump nobody stopped...)."""
    before = asyncio.all_tasks()
    yield
    await _close_bleak_manager()
    leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked tasks: {leaked}"
