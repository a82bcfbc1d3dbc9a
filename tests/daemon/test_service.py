"""The service in-process without a broker: its own triggers, a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import daemon.control
from daemon.config import Config, load_config
from daemon.notify import Notifier
from daemon.result import SyncResult
from daemon.service import Service
from daemon.sync import run_sync
from tests.e2e.harness import World


class Recorder:
    """The real runner, with every result kept and announced."""

    def __init__(self) -> None:
        self.results: asyncio.Queue[SyncResult] = asyncio.Queue()
        self.started = asyncio.Event()

    async def __call__(self, *args: Any, **kw: Any) -> SyncResult:
        self.started.set()
        result = await run_sync(*args, **kw)
        self.results.put_nowait(result)
        return result

    async def next(self) -> SyncResult:
        async with asyncio.timeout(30):
            return await self.results.get()


def config_with(world: World, extra: str) -> Config:
    world.config()
    path = world.tmp / "phone.toml"
    path.write_text(path.read_text() + "\n" + extra)
    return load_config(path)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        await w.close()


async def run_service(service: Service) -> asyncio.Task[int]:
    return asyncio.create_task(service.run())


async def stop(service: Service, task: asyncio.Task[int]) -> int:
    service._stopping.set()
    async with asyncio.timeout(30):
        return await task


async def test_without_mqtt_the_insertion_trigger_still_syncs(world: World) -> None:
    world.card.write(1, "Alice", "+4911111")
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    config = config_with(world, "[triggers]\non_card_inserted = true\n")
    assert config.mqtt is None
    recorder = Recorder()
    service = Service(config, notify=Notifier(None), runner=recorder)
    task = await run_service(service)
    try:
        first = await recorder.next()
        assert first.ok, first.error
        assert first.id is not None
        assert first.id.startswith("insert-")
        assert sorted(n for n, _ in pda.contacts().values()) == ["Alice", "Carol"]
    finally:
        assert await stop(service, task) == 0
    assert service.control.last_sync == first


async def test_every_minutes_trigger_repeats(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    monkeypatch.setattr(daemon.control, "MINUTE", 0.05)  # a "minute" of 50 ms
    config = config_with(world, "[triggers]\nevery_minutes = 1\n")
    recorder = Recorder()
    service = Service(config, notify=Notifier(None), runner=recorder)
    task = await run_service(service)
    try:
        modes = []
        for _ in range(3):
            result = await recorder.next()
            assert result.ok, result.error
            assert result.id is not None
            assert result.id.startswith("timer-")
            modes.append(result.mode)
        assert modes == ["slow", "fast", "fast"]
    finally:
        assert await stop(service, task) == 0


async def test_stop_answers_queued_requests_cancelled(world: World) -> None:
    await world.add_pda("pda1")
    await world.add_pda("pda2")
    config = config_with(world, "")
    recorder = Recorder()
    service = Service(config, notify=Notifier(None), runner=recorder)
    answered: list[SyncResult] = []
    service.control.answer = answered.append  # type: ignore[method-assign,assignment]
    task = await run_service(service)
    pda1 = world.pdas["pda1"]
    assert pda1.server is not None
    async with pda1.server._lock:  # pda1's sync waits; pda2's is queued behind it
        await service.control.card_known.wait()
        service.control.submit("a", "pda1", "auto")
        service.control.submit("b", "pda2", "auto")
        async with asyncio.timeout(30):
            await recorder.started.wait()  # a's sync runs (and waits for the PDA)
        service._stopping.set()
        async with asyncio.timeout(30):
            assert await task == 0
    codes = {r.id: (r.error.code if r.error else "ok") for r in answered}
    assert codes == {"a": "cancelled", "b": "cancelled"}
