"""The daemon under a systemd-like supervisor: sd_notify through a real test socket."""

from __future__ import annotations

import signal
from collections.abc import Callable

from tests.e2e.harness import World
from tests.fixtures.mosquitto import Broker
from tests.fixtures.sdnotify import Message, NotifySocket
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
RESULT = f"{ROOT}/sync/result"


async def until(sock: NotifySocket, cond: Callable[[Message], bool]) -> list[Message]:
    """Every datagram up to and including the first that meets ``cond``."""
    seen: list[Message] = []
    while True:
        msg = await sock.areceive(20.0)
        seen.append(msg)
        if cond(msg):
            return seen


async def test_ready_status_watchdog_reload_and_stop(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    notify_socket: NotifySocket,
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    config = write_config(world, mqtt_table(broker, world.tmp))
    proc = daemon(config, env={"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "400000"})
    before = await until(notify_socket, lambda m: "READY" in m)
    ready = before[-1]
    assert ready.pid == proc.pid
    assert "card present" in ready.fields["STATUS"]
    assert "broker connected" in ready.fields["STATUS"]
    # READY comes once the broker took the session: the retained status is there already.
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        assert (await obs.expect_msg(STATUS, state="online")).retain
        # The watchdog pings keep coming from the event loop.
        pings = await until(notify_socket, lambda m: "WATCHDOG" in m)
        pings += await until(notify_socket, lambda m: "WATCHDOG" in m)
        assert sum("WATCHDOG" in m for m in pings) >= 2

        obs.publish(REQUEST, {"id": "n1"})
        assert (await obs.expect(RESULT, id="n1"))["ok"]
        await until(notify_socket, lambda m: "last sync pda1 ok" in m.fields.get("STATUS", ""))

        proc.signal(signal.SIGHUP)
        reloading = (await until(notify_socket, lambda m: "RELOADING" in m))[-1]
        assert "MONOTONIC_USEC" in reloading
        await until(notify_socket, lambda m: "READY" in m)

        config.write_text(config.read_text() + "\n[daemon]\nmax_waiting = 0\n")
        proc.signal(signal.SIGHUP)
        await until(notify_socket, lambda m: "RELOADING" in m)
        refused = (await until(notify_socket, lambda m: "READY" in m))[-1]
        assert "config reload failed" in refused.fields["STATUS"]
        assert "daemon.max_waiting" in refused.fields["STATUS"]
        obs.publish(REQUEST, {"id": "n2"})
        assert (await obs.expect(RESULT, id="n2"))["ok"]  # the old config still serves

        proc.signal(signal.SIGTERM)
        await until(notify_socket, lambda m: "STOPPING" in m)
        assert await proc.exited() == 0
        await obs.expect(STATUS, state="offline")
    finally:
        obs.close()
