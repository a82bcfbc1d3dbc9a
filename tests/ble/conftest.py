"""Fixtures for the BLE tests: no leaked tasks, and bleak's per-loop BlueZ manager closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.bluez import close_bleak_manager


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (a pump nobody stopped...)."""
    before = asyncio.all_tasks()
    yield
    await close_bleak_manager()
    leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked tasks: {leaked}"
