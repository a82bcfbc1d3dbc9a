"""`simsync daemon` over MQTT: start to online, request to result, idle memory. Prints numbers.

    .venv/bin/python -m bench.daemon_mqtt [--syncs 50] [--changes 5] [--idle 60]

A real mosquitto on a free port, the daemon as a subprocess (as systemd runs it),
an emulated card image driven in-process by the daemon, a real ``PdaServer`` on
loopback TCP + TLS in this process. Each measured sync is a fast sync with
``--changes`` records changed on the card (by another terminal) and as many
contacts edited in the PDA's vdir; the time is from publishing the request to
receiving its result. Targets (issue 7): request → result ≤ 150 ms, start → online
≤ 1 s, idle RSS ≤ 50 MB.
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

from pda.store import Projection
from tests.e2e.harness import World
from tests.fixtures.mosquitto import Broker
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run(syncs: int, changes: int, idle: float) -> None:
    with tempfile.TemporaryDirectory(prefix="simsync-bench-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Broker(tmp / "broker", auth=False, tls=False)
        broker.start()
        (tmp / "world").mkdir()
        world = World(tmp / "world", records=250)
        proc: DaemonProc | None = None
        obs: Observer | None = None
        try:
            for n in range(1, 101):
                world.card.write(n, f"Person {n}", f"+49{n:06d}")
            pda = await world.add_pda("pda1")
            config = write_config(world, mqtt_table(broker, world.tmp))
            obs = await Observer.connect(broker, f"{ROOT}/#")
            t0 = time.monotonic()
            proc = DaemonProc(config).start()
            await obs.expect(f"{ROOT}/status", state="online")
            start_ms = (time.monotonic() - t0) * 1000

            obs.publish(f"{ROOT}/sync/request", {"id": "first"})
            first = await obs.expect(f"{ROOT}/sync/result", id="first", within=120)
            if not first["ok"]:
                raise RuntimeError(f"first sync failed: {first}")

            times = []
            uids = list(pda.contacts())
            for i in range(syncs):
                for k in range(changes):
                    n = 1 + (i * changes + k) % 100
                    world.card.write(n, f"Person {n}", f"+49{i:03d}{n:04d}")
                    uid = uids[(i * changes + k) % len(uids)]
                    pda.store().update_projection(uid, Projection(f"Edited {i} {k}", f"+44{i}{k}"))
                rid = f"m{i}"
                t = time.monotonic()
                obs.publish(f"{ROOT}/sync/request", {"id": rid})
                result = await obs.expect(f"{ROOT}/sync/result", id=rid, within=60)
                times.append((time.monotonic() - t) * 1000)
                if not result["ok"] or result["mode"] != "fast":
                    raise RuntimeError(f"unexpected result: {result}")
            await asyncio.sleep(idle)  # idle memory is what it is after a while
            rss = _rss_kib(proc.pid)
            print(f"start -> online status:            {start_ms:8.1f} ms   (target <= 1000)")
            print(
                f"request -> result, {changes}+{changes} changes: median "
                f"{statistics.median(times):6.1f} ms, p90 "
                f"{statistics.quantiles(times, n=10)[-1]:6.1f} ms over {syncs}  (target <= 150)"
            )
            print(
                f"idle RSS after {idle:.0f} s:               {rss / 1024:8.1f} MB   (target <= 50)"
            )
        finally:
            if obs is not None:
                obs.close()
            if proc is not None:
                proc.signal(signal.SIGTERM)
                await proc.exited()
            await world.close()
            broker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--syncs", type=int, default=50)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before RSS")
    args = parser.parse_args(argv)
    asyncio.run(run(args.syncs, args.changes, args.idle))


if __name__ == "__main__":
    main()
