"""Presence in `simsync daemon`: a real mosquitto, the daemon as a process, bleak in it
against the BlueZ mock on a private system bus (tests/fixtures/bluez.py).

The PDA "advertises" by an RSSI change of its device object, as bluetoothd reports
one. Nothing here sleeps: every step awaits a message, an sd_notify line or an event.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import World
from tests.fixtures.bluez import BluezMock
from tests.fixtures.mosquitto import Broker
from tests.fixtures.sdnotify import NotifySocket
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config
from transports.ble_uuids import SERVICE_UUID

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
RESULT = f"{ROOT}/sync/result"
EVENT = f"{ROOT}/event"
HA = "homeassistant"
PDA1 = "AA:BB:CC:DD:EE:01"
WAIT = 20.0


def presence_topic(pda: str) -> str:
    return f"{ROOT}/pda/{pda}/presence"


def watched_config(world: World, identities: dict[str, str], *tables: str) -> Path:
    """The World's config with ``ble_identity`` set on the named PDAs, plus ``tables``."""
    path = write_config(world, *tables)
    text = path.read_text()
    for name, address in identities.items():
        line = f'name = "{name}"\n'
        assert line in text
        text = text.replace(line, f'{line}ble_identity = "{address}"\n')
    path.write_text(text)
    return path


def add_pda_device(bluez: BluezMock, address: str = PDA1) -> None:
    """The PDA as bluetoothd knows it: bonded, advertising the simsync service (not heard yet)."""
    bluez.add_device(address, uuids=(SERVICE_UUID,), paired=True, rssi=-100)


async def status_line(sock: NotifySocket, needle: str) -> str:
    """The first STATUS= line from now on that contains ``needle``."""
    while True:
        msg = await sock.areceive(WAIT)
        line = msg.fields.get("STATUS", "")
        if needle in line:
            return line


async def scanning(sock: NotifySocket) -> str:
    """The daemon's watcher listens (only then is an advertisement heard)."""
    return await status_line(sock, "bluetooth hci0 scanning")


async def test_arrival_event_retained_state_auto_sync_and_away_after_silence(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    bluez: BluezMock,
    notify_socket: NotifySocket,
) -> None:
    broker = mosquitto()
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    add_pda_device(bluez)
    presence = "[presence]\naway_after = 1\nauto_sync = true\nauto_sync_min_interval = 3600\n"
    config = watched_config(world, {"pda1": PDA1}, mqtt_table(broker, world.tmp), presence)
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        proc = daemon(config, env={"NOTIFY_SOCKET": notify_socket.address})
        await obs.expect(STATUS, state="online")
        await obs.expect_msg(presence_topic("pda1"), raw=b"away")  # every PDA starts away
        assert "(passive)" in await scanning(notify_socket)

        bluez.advertise(PDA1, -50)
        near = await obs.expect(EVENT, type="pda-near")
        assert list(near) == ["type", "pda", "at"]
        assert near["pda"] == "pda1"
        assert near["at"].endswith("Z")
        await obs.expect_msg(presence_topic("pda1"), raw=b"near")
        result = await obs.expect(RESULT, pda="pda1")
        assert result["ok"], result["error"]
        assert result["id"].startswith("near-")
        assert result["to_card"]["added"] == 1
        assert [n for n, _ in world.card.records().values()] == ["Carol"]

        # Too weak to keep it near: away once away_after (1 s) passed since the strong one.
        bluez.advertise(PDA1, -95)
        away = await obs.expect(EVENT, type="pda-away")
        assert away["pda"] == "pda1"
        await obs.expect_msg(presence_topic("pda1"), raw=b"away")

        # Back within auto_sync_min_interval: near again, but no second sync.
        bluez.advertise(PDA1, -55)
        await obs.expect(EVENT, type="pda-near", pda="pda1")
        assert "auto-sync skipped: synced recently" in proc.output()
        obs.publish(REQUEST, {"id": "marker", "pda": "pda1"})
        assert (await obs.expect(RESULT, id="marker"))["ok"]
        arrivals = [
            m for m in obs.messages if m.topic == RESULT and m.json()["id"].startswith("near-")
        ]
        assert len(arrivals) == 1

        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
        await obs.expect(STATUS, state="offline")
    finally:
        obs.close()
    # Retained: a late subscriber sees the last state, which is still near.
    late = await Observer.connect(broker, presence_topic("pda1"))
    try:
        msg = await late.expect_msg(presence_topic("pda1"))
        assert (msg.retain, msg.payload) == (True, b"near")
    finally:
        late.close()


async def test_device_removed_adapter_gone_and_back_the_daemon_carries_on(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    bluez: BluezMock,
    notify_socket: NotifySocket,
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    add_pda_device(bluez)
    # An hour's time-out: every away below comes from BlueZ, none from silence.
    presence = "[presence]\naway_after = 3600\n"
    config = watched_config(world, {"pda1": PDA1}, mqtt_table(broker, world.tmp), presence)
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        proc = daemon(config, env={"NOTIFY_SOCKET": notify_socket.address})
        await obs.expect(STATUS, state="online")
        await scanning(notify_socket)
        bluez.advertise(PDA1, -60)
        await obs.expect(EVENT, type="pda-near", pda="pda1")
        assert "near: pda1" in await status_line(notify_socket, "near: pda1")

        bluez.remove_device(PDA1)  # unpaired or forgotten: away at once
        await obs.expect(EVENT, type="pda-away", pda="pda1")
        await obs.expect_msg(presence_topic("pda1"), raw=b"away")

        add_pda_device(bluez)
        bluez.advertise(PDA1, -60)
        await obs.expect(EVENT, type="pda-near", pda="pda1")

        bluez.remove_adapter()  # unplugged: its devices go first, then the adapter
        await obs.expect(EVENT, type="pda-away", pda="pda1")
        line = await status_line(notify_socket, "bluetooth hci0 missing")
        assert "card present" in line  # the rest of the status is still there
        assert "retry in" in line
        # The daemon carries on without Bluetooth.
        obs.publish(REQUEST, {"id": "no-bluetooth"})
        assert (await obs.expect(RESULT, id="no-bluetooth"))["ok"]

        bluez.add_adapter()  # plugged back in: noticed now, not after the backoff
        await scanning(notify_socket)
        add_pda_device(bluez)  # bluetoothd reloads its bonded devices
        bluez.advertise(PDA1, -58)
        await obs.expect(EVENT, type="pda-near", pda="pda1")
        await obs.expect_msg(presence_topic("pda1"), raw=b"near")
        assert proc.proc is not None
        assert proc.proc.poll() is None
        log = proc.output()
        assert "adapter hci0 removed" in log
        assert "Traceback" not in log

        # The near PDA leaves the watch (reload): it goes away and its state is cleared.
        watched_config(world, {}, mqtt_table(broker, world.tmp), presence)
        proc.signal(signal.SIGHUP)
        gone = await obs.expect_msg(EVENT, type="pda-away", pda="pda1")
        obs.publish(REQUEST, {"id": "after-reload"})
        assert (await obs.expect(RESULT, id="after-reload"))["ok"]
        after = obs.messages[next(i for i, m in enumerate(obs.messages) if m is gone) :]
        # Cleared once more with the event, never claimed away again.
        assert [m.payload for m in after if m.topic == presence_topic("pda1")] == [b""]
        while "bluetooth" in await status_line(notify_socket, "card present"):
            pass  # the lines from before the watcher stopped; then one without it
    finally:
        obs.close()


async def test_home_assistant_presence_sensor(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    notify_socket: NotifySocket,
) -> None:
    # No system bus at all: the watcher says so and retries; discovery does not wait for it.
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    broker = mosquitto()
    await world.add_pda("pda1")
    await world.add_pda("pda2")
    sensor1 = f"{HA}/binary_sensor/phone/presence_pda1/config"
    sensor2 = f"{HA}/binary_sensor/phone/presence_pda2/config"
    # Left retained by an earlier life in which pda2 was watched too.
    seed = await Observer.connect(broker)
    seed.publish(sensor2, {"name": "Presence pda2"}, retain=True)
    seed.publish(presence_topic("pda2"), b"near", retain=True)
    seed.close()

    mqtt = mqtt_table(broker, world.tmp, ha_discovery=True)
    config = watched_config(world, {"pda1": PDA1}, mqtt)
    obs = await Observer.connect(broker, f"{HA}/#", f"{ROOT}/#")
    try:
        proc = daemon(config, env={"NOTIFY_SOCKET": notify_socket.address})
        await obs.expect(STATUS, state="online")
        sensor = await obs.expect(sensor1)
        assert sensor["state_topic"] == presence_topic("pda1")
        assert (sensor["payload_on"], sensor["payload_off"]) == ("near", "away")
        assert sensor["device_class"] == "presence"
        assert sensor["device"]["identifiers"] == ["simsync_phone"]
        assert sensor["availability"][0]["topic"] == STATUS
        await obs.expect_msg(presence_topic("pda1"), raw=b"away")
        # pda2 has no ble_identity: its stale sensor and state are cleared.
        await obs.expect_msg(sensor2, raw=b"")
        await obs.expect_msg(presence_topic("pda2"), raw=b"")
        line = await status_line(notify_socket, "bluetooth hci0 unavailable")
        assert "retry in" in line

        # Home Assistant restarted: the sensor config again.
        obs.publish(f"{HA}/status", b"online")
        assert (await obs.expect(sensor1))["state_topic"] == presence_topic("pda1")

        # Presence switched off by a reload: the sensor and the state are cleared.
        watched_config(world, {"pda1": PDA1}, mqtt, "[presence]\nenabled = false\n")
        proc.signal(signal.SIGHUP)
        await obs.expect_msg(sensor1, raw=b"")
        await obs.expect_msg(presence_topic("pda1"), raw=b"")
        assert proc.proc is not None
        assert proc.proc.poll() is None
    finally:
        obs.close()
