"""`simsync daemon` over MQTT: request to result, start-up, idle cost, a fleet. Prints numbers.

    .venv/bin/python -m bench.daemon_mqtt [--syncs 50] [--changes 5] [--idle 60]
        [--fleet 20] [--log-level warnings|-v|-vv] [--profile DIR]

A real mosquitto on a free port, the daemon as a subprocess (as systemd runs it:
no ``-v``, so warnings only, unless ``--log-level`` says otherwise), an emulated
card image driven in-process by the daemon, a real ``PdaServer`` on loopback
TCP + TLS in this process. Each measured sync is a fast sync with ``--changes``
records changed on the card (by another terminal) and as many contacts edited in
the PDA's vdir; the time is from publishing the request to receiving its result.

Printed:

- start -> READY=1 (sd_notify, through a test socket) and start -> online status;
- request -> result, median and p90 of ``--syncs``, and what of it is outside the
  sync (request and result through the broker, the queue: request -> result less
  the result's ``duration_ms``) and what is the PDA engine's (wall time in
  ``SyncEngine.handle``, timed in this process); the rest is the phone's side
  (card, TLS, waiting for the PDA's frames);
- CPU per sync of the daemon and of this process (the PDA server, the observer);
- idle RSS after ``--idle`` seconds, and idle wake-ups per second over that time:
  the context switches of all the daemon's threads (``/proc/PID/task/*/status``,
  voluntary + involuntary), no watchdog configured;
- a fleet: ``--fleet`` daemons, each with its own card image and PDA, on one
  mosquitto, started at once (time until all are online, their RSS in all); then
  one request each published at once, time until every result is in (each
  daemon's first sync: a slow sync of a 40-record card holding 10 contacts, with
  5 contacts on its PDA; the 20 PDA servers share this one process).

``--profile DIR`` runs the daemon under cProfile (``DIR/daemon.prof``) and this
process's PDA side during the measured syncs (``DIR/pda.prof``); read them with
``python -m pstats``. Targets (issue 7): request -> result <= 150 ms, start ->
READY <= 1 s, idle RSS <= 50 MB, <= 1 wake-up per second idle besides the watchdog.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.procstat import cpu_ms, rss_kib, switches
from pda.engine import SyncEngine
from pda.store import Projection
from tests.e2e.harness import World
from tests.fixtures.mosquitto import Broker
from tests.fixtures.sdnotify import NotifySocket
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config

LOG_LEVELS: dict[str, tuple[str, ...]] = {"warnings": (), "-v": ("-v",), "-vv": ("-vv",)}


class _PdaClock:
    """Wall time the PDA's engine spends handling the phone's frames (its whole share)."""

    def __init__(self) -> None:
        self.ms = 0.0
        original = SyncEngine.handle

        def handle(engine: SyncEngine, frame: bytes) -> list[bytes]:
            t = time.perf_counter()
            try:
                return original(engine, frame)
            finally:
                self.ms += (time.perf_counter() - t) * 1000

        SyncEngine.handle = handle  # type: ignore[method-assign, assignment]
        self._original = original

    def close(self) -> None:
        SyncEngine.handle = self._original  # type: ignore[method-assign]


async def _until_ready(sock: NotifySocket) -> None:
    while "READY" not in await sock.areceive(60.0):
        pass


async def single(args: argparse.Namespace, tmp: Path, broker: Broker) -> None:
    """One daemon: start-up, ``--syncs`` fast syncs, then idle."""
    (tmp / "world").mkdir()
    world = World(tmp / "world", records=250)
    sock = NotifySocket(abstract=True)
    proc: DaemonProc | None = None
    obs: Observer | None = None
    try:
        for n in range(1, 101):
            world.card.write(n, f"Person {n}", f"+49{n:06d}")
        pda = await world.add_pda("pda1")
        config = write_config(world, mqtt_table(broker, world.tmp))
        # Status and results only: the test observer keeps every message it gets, and
        # scanning ~20 progress messages per sync would be timed as the daemon's.
        obs = await Observer.connect(broker, f"{ROOT}/status", f"{ROOT}/sync/result")
        profile: tuple[str, ...] = ()
        if args.profile is not None:
            profile = ("-m", "cProfile", "-o", str(args.profile / "daemon.prof"))
        t0 = time.monotonic()
        proc = DaemonProc(
            config,
            env={"NOTIFY_SOCKET": sock.address},
            python_args=profile,
            verbosity=LOG_LEVELS[args.log_level],
        ).start()
        await _until_ready(sock)
        ready_ms = (time.monotonic() - t0) * 1000
        await obs.expect(f"{ROOT}/status", state="online")
        online_ms = (time.monotonic() - t0) * 1000

        obs.publish(f"{ROOT}/sync/request", {"id": "first"})
        first = await obs.expect(f"{ROOT}/sync/result", id="first", within=120)
        if not first["ok"]:
            raise RuntimeError(f"first sync failed: {first}")

        times = []
        outside = []  # request -> result less the sync's own duration_ms: MQTT and queue
        pda_ms = []  # of the sync, the PDA engine's handling of the phone's frames
        clock = _PdaClock()
        uids = list(pda.contacts())
        prof = cProfile.Profile() if args.profile is not None else None
        cpu_daemon, cpu_here = cpu_ms(proc.pid), time.process_time()
        for i in range(args.syncs):
            for k in range(args.changes):
                n = 1 + (i * args.changes + k) % 100
                world.card.write(n, f"Person {n}", f"+49{i:03d}{n:04d}")
                uid = uids[(i * args.changes + k) % len(uids)]
                pda.store().update_projection(uid, Projection(f"Edited {i} {k}", f"+44{i}{k}"))
            rid = f"m{i}"
            if prof is not None:
                prof.enable()
            clock.ms = 0.0
            t = time.monotonic()
            obs.publish(f"{ROOT}/sync/request", {"id": rid})
            result = await obs.expect(f"{ROOT}/sync/result", id=rid, within=60)
            times.append((time.monotonic() - t) * 1000)
            outside.append(times[-1] - result["duration_ms"])
            pda_ms.append(clock.ms)
            if prof is not None:
                prof.disable()
            if not result["ok"] or result["mode"] != "fast":
                raise RuntimeError(f"unexpected result: {result}")
        clock.close()
        cpu_daemon = (cpu_ms(proc.pid) - cpu_daemon) / args.syncs
        cpu_here = (time.process_time() - cpu_here) * 1000 / args.syncs
        if prof is not None:
            prof.dump_stats(args.profile / "pda.prof")

        await asyncio.sleep(1.0)  # the last result's tail (status, logs) settles
        before, t_idle = switches(proc.pid), time.monotonic()
        await asyncio.sleep(args.idle)
        wakeups = (switches(proc.pid) - before) / (time.monotonic() - t_idle)
        rss = rss_kib(proc.pid)
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
        print(f"start -> READY=1:                   {ready_ms:8.1f} ms   (target <= 1000)")
        print(f"start -> online status:             {online_ms:8.1f} ms")
        print(
            f"request -> result, {args.changes}+{args.changes} changes: median "
            f"{statistics.median(times):6.1f} ms, p90 {p90:6.1f} ms over {args.syncs}"
            "  (target <= 150)"
        )
        print(
            f"  of which outside the sync (MQTT in and out, queue): median "
            f"{statistics.median(outside):6.1f} ms; the PDA's engine: median "
            f"{statistics.median(pda_ms):6.1f} ms; the phone's side: the rest"
        )
        print(
            f"CPU per sync: daemon {cpu_daemon:6.1f} ms, PDA server + observer (this process) "
            f"{cpu_here:6.1f} ms"
        )
        print(f"idle RSS after {args.idle:.0f} s:     {rss / 1024:8.1f} MB   (target <= 50)")
        print(
            f"idle wake-ups over {args.idle:.0f} s:          {wakeups:8.2f} /s  "
            "(target <= 1, no watchdog)"
        )
    finally:
        if obs is not None:
            obs.close()
        if proc is not None:
            proc.signal(signal.SIGTERM)
            await proc.exited()
        sock.close()
        await world.close()


async def fleet(args: argparse.Namespace, tmp: Path, broker: Broker) -> None:
    """``--fleet`` daemons on one broker, one request each at once."""
    worlds: list[World] = []
    procs: list[DaemonProc] = []
    configs: list[Path] = []
    obs = await Observer.connect(broker, "simsync/+/status", "simsync/+/sync/result")
    try:
        for i in range(args.fleet):
            (tmp / f"fleet{i}").mkdir()
            world = World(tmp / f"fleet{i}")
            worlds.append(world)
            for n in range(1, 11):
                world.card.write(n, f"Person {n}", f"+49{n:06d}")
            pda = await world.add_pda("pda1")
            for n in range(5):
                pda.add(f"Pda person {n}", f"+44{n:06d}")
            config = write_config(world, mqtt_table(broker, world.tmp))
            # Each phone its own node id: its own client id and topics.
            text = config.read_text().replace('id = "phone"', f'id = "phone{i}"')
            config.write_text(text.replace(f'"{ROOT}', f'"simsync/phone{i}'))
            configs.append(config)
        started = time.monotonic()
        for i in range(args.fleet):
            procs.append(DaemonProc(configs[i], verbosity=LOG_LEVELS[args.log_level]).start())
        for i in range(args.fleet):
            await obs.expect(f"simsync/phone{i}/status", state="online", within=120)
        up_ms = (time.monotonic() - started) * 1000
        rss = sum(rss_kib(p.pid) for p in procs) / 1024
        t = time.monotonic()
        for i in range(args.fleet):
            obs.publish(f"simsync/phone{i}/sync/request", {"id": f"f{i}"})
        results = [
            await obs.expect(f"simsync/phone{i}/sync/result", id=f"f{i}", within=300)
            for i in range(args.fleet)
        ]
        took = (time.monotonic() - t) * 1000
        failed = [r for r in results if not r["ok"]]
        if failed:
            raise RuntimeError(f"fleet syncs failed: {failed[:3]}")
        own = statistics.median(r["duration_ms"] for r in results)
        print(
            f"fleet of {args.fleet}: started at once, all online in {up_ms:8.1f} ms, "
            f"RSS {rss:.0f} MB in all"
        )
        print(
            f"fleet of {args.fleet}: one request each at once, all results in {took:8.1f} ms "
            f"(each sync's own duration: median {own:.0f} ms; first syncs: slow, 10 + 5 contacts)"
        )
    finally:
        obs.close()
        for proc in procs:
            proc.signal(signal.SIGTERM)
        for proc in procs:
            await proc.exited()
        for world in worlds:
            await world.close()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="simsync-bench-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Broker(tmp / "broker", auth=False, tls=False)
        broker.start()
        try:
            if args.syncs:
                await single(args, tmp, broker)
            if args.fleet:
                await fleet(args, tmp, broker)
        finally:
            broker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--syncs", type=int, default=50, help="measured syncs (0: none)")
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before RSS")
    parser.add_argument("--fleet", type=int, default=20, help="daemons in the fleet (0: none)")
    parser.add_argument("--log-level", choices=sorted(LOG_LEVELS), default="warnings")
    parser.add_argument("--profile", type=Path, help="write cProfile data to this directory")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
