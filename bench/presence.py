"""Presence in `simsync daemon`: advertisement -> event, arrival -> sync, idle cost. Prints numbers.

    .venv/bin/python -m bench.presence [--arrivals 30] [--idle 20]

A real mosquitto, the daemon as a subprocess with bleak against the BlueZ mock on
a private system bus (tests/fixtures/bluez.py: bluetoothd's D-Bus side mocked, the
rest real), a ``PdaServer`` on loopback TCP + TLS in this process. Each arrival is
the PDA's device object appearing and one advertisement at -50 dBm (RSSI
PropertiesChanged, as bluetoothd reports it); its removal sends the PDA away at
once. Timed: advertisement -> ``pda-near`` on ``ROOT/event`` as an MQTT client sees
it, and with ``auto_sync`` (min interval 0) advertisement -> the arrival sync's
result (a fast sync with nothing changed). Then the idle daemon, with and without a
watched PDA: RSS and wake-ups per second (context switches of all its threads,
from /proc) over ``--idle`` seconds. Issue 7's targets: idle RSS <= 50 MB, <= 1
wake-up per second idle besides the watchdog.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.procstat import rss_kib, switches
from tests.e2e.harness import World
from tests.fixtures.bluez import BluezMock, private_bluez
from tests.fixtures.mosquitto import Broker
from tests.fixtures.sdnotify import NotifySocket
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config
from transports.ble_uuids import SERVICE_UUID

IDENTITY = "AA:BB:CC:DD:EE:01"
EVENT, RESULT, STATUS = f"{ROOT}/event", f"{ROOT}/sync/result", f"{ROOT}/status"


async def _idle(proc: DaemonProc, seconds: float) -> tuple[float, float]:
    """(RSS in MB, wake-ups per second) of the idle daemon over ``seconds``."""
    before = switches(proc.pid)
    await asyncio.sleep(seconds)  # idle is what it does over a while: nothing to await
    rate = (switches(proc.pid) - before) / seconds
    return rss_kib(proc.pid) / 1024, rate


async def _daemon(
    world: World, broker: Broker, *, watched: bool, notify: str | None = None
) -> tuple[DaemonProc, Observer]:
    tables = [mqtt_table(broker, world.tmp)]
    if watched:
        tables.append("[presence]\nauto_sync = true\nauto_sync_min_interval = 0\n")
    config = write_config(world, *tables)
    if watched:
        text = config.read_text().replace(
            'name = "pda1"\n', f'name = "pda1"\nble_identity = "{IDENTITY}"\n'
        )
        config.write_text(text)
    obs = await Observer.connect(broker, f"{ROOT}/#")
    proc = DaemonProc(config, env={"NOTIFY_SOCKET": notify} if notify else None).start()
    await obs.expect(STATUS, state="online")
    return proc, obs


async def _stop(proc: DaemonProc, obs: Observer) -> None:
    obs.close()
    proc.signal(signal.SIGTERM)
    await proc.exited()


async def _arrivals(bluez: BluezMock, obs: Observer, n: int) -> tuple[list[float], list[float]]:
    near_ms, sync_ms = [], []
    for i in range(n + 1):
        bluez.add_device(IDENTITY, uuids=(SERVICE_UUID,), paired=True, rssi=-100)
        t = time.monotonic()
        bluez.advertise(IDENTITY, -50)
        await obs.expect(EVENT, type="pda-near", within=30)
        near = (time.monotonic() - t) * 1000
        result = await obs.expect(RESULT, pda="pda1", within=60)
        if not result["ok"]:
            raise RuntimeError(f"arrival sync failed: {result}")
        if i:  # the first one is a slow sync and warms everything up
            near_ms.append(near)
            sync_ms.append((time.monotonic() - t) * 1000)
        bluez.remove_device(IDENTITY)
        await obs.expect(EVENT, type="pda-away", within=30)
    return near_ms, sync_ms


def _stats(name: str, ms: list[float]) -> str:
    p90 = statistics.quantiles(ms, n=10)[-1]
    return f"{name}: median {statistics.median(ms):6.1f} ms, p90 {p90:6.1f} ms over {len(ms)}"


async def run(arrivals: int, idle: float) -> None:
    with tempfile.TemporaryDirectory(prefix="simsync-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "bluez").mkdir()
        (tmp / "world").mkdir()
        with private_bluez(tmp / "bluez") as bluez:
            broker = Broker(tmp / "broker", auth=False, tls=False)
            broker.start()
            world = World(tmp / "world", records=250)
            try:
                for n in range(1, 101):
                    world.card.write(n, f"Person {n}", f"+49{n:06d}")
                await world.add_pda("pda1")

                notify = NotifySocket(tmp / "notify.sock")
                proc, obs = await _daemon(world, broker, watched=True, notify=notify.address)
                try:
                    # Heard only once the watcher scans: its STATUS= line says so.
                    while "scanning" not in (await notify.areceive(30)).fields.get("STATUS", ""):
                        pass
                    near_ms, sync_ms = await _arrivals(bluez, obs, arrivals)
                    rss_on, wake_on = await _idle(proc, idle)
                finally:
                    await _stop(proc, obs)
                    notify.close()
                proc, obs = await _daemon(world, broker, watched=False)
                try:
                    rss_off, wake_off = await _idle(proc, idle)
                finally:
                    await _stop(proc, obs)
            finally:
                await world.close()
                broker.stop()
    print(_stats("advertisement -> pda-near event  ", near_ms))
    print(_stats("advertisement -> arrival sync result", sync_ms))
    print(f"idle RSS, a PDA watched:    {rss_on:6.1f} MB   without presence: {rss_off:6.1f} MB")
    print(
        f"idle wake-ups per second over {idle:.0f} s, watched: {wake_on:5.2f}   "
        f"without presence: {wake_off:5.2f}   (target <= 1)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--arrivals", type=int, default=30)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle to measure")
    args = parser.parse_args(argv)
    asyncio.run(run(args.arrivals, args.idle))


if __name__ == "__main__":
    main()
