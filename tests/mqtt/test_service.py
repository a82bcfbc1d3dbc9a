"""The service around the contract: broker restarts, Home Assistant, SIGHUP, triggers."""

from __future__ import annotations

import signal
from collections.abc import Callable

from tests.e2e.harness import World
from tests.fixtures.mosquitto import Broker
from tests.fixtures.sdnotify import NotifySocket
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config
from tests.mqtt.test_errors import started
from tests.mqtt.test_notify import until

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
RESULT = f"{ROOT}/sync/result"
EVENT = f"{ROOT}/event"
HA = "homeassistant"


async def test_broker_restart_survived_and_status_republished(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    proc, obs = await started(world, broker, daemon)
    obs.close()
    broker.restart()  # no persistence: the retained status is gone with it
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        status = await obs.expect_msg(STATUS, state="online")
        assert status.json()["card"] == "present"
        obs.publish(REQUEST, {"id": "after-restart"})
        assert (await obs.expect(RESULT, id="after-restart"))["ok"]
        assert "mqtt connection lost" in proc.output()
    finally:
        obs.close()
    # Down for a while (a reload meanwhile), then back: online again, and a clean stop.
    broker.stop()
    proc.signal(signal.SIGHUP)
    broker.start()
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        await obs.expect(STATUS, state="online")
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
        await obs.expect(STATUS, state="offline")
    finally:
        obs.close()


async def test_home_assistant_discovery_republish_and_removal(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    await world.add_pda("pda2")
    # A config left retained by an earlier life of this node, for a PDA long gone.
    old = f"{HA}/button/phone/sync_oldpda/config"
    seed = await Observer.connect(broker)
    seed.publish(old, {"name": "Sync now oldpda"}, retain=True)
    seed.close()

    config = write_config(world, mqtt_table(broker, world.tmp, ha_discovery=True))
    obs = await Observer.connect(broker, f"{HA}/#", f"{ROOT}/#")
    proc = daemon(config)
    try:
        await obs.expect(STATUS, state="online")
        topics = [
            f"{HA}/sensor/phone/card/config",
            f"{HA}/button/phone/sync_pda1/config",
            f"{HA}/sensor/phone/last_result_pda1/config",
            f"{HA}/button/phone/sync_pda2/config",
            f"{HA}/sensor/phone/last_result_pda2/config",
        ]
        first = {t: await obs.expect_msg(t, raw=None, within=20) for t in topics}
        for msg in first.values():
            assert msg.json()["device"]["identifiers"] == ["simsync_phone"]
        assert (await obs.expect_msg(old, raw=b"")).payload == b""  # the stale one cleared

        # Pressing the button is publishing its payload on its command topic.
        button = first[f"{HA}/button/phone/sync_pda1/config"].json()
        obs.publish(button["command_topic"], button["payload_press"].encode())
        pressed = await obs.expect(RESULT, pda="pda1")
        assert pressed["ok"]

        # Home Assistant restarted: every config again.
        obs.publish(f"{HA}/status", b"online")
        for t in topics:
            await obs.expect_msg(t)
        obs.publish(f"{HA}/status", b"offline")  # nothing to do for that

        # pda2 leaves the config: SIGHUP clears its configs, keeps the others.
        await world.pdas.pop("pda2").stop()
        write_config(world, mqtt_table(broker, world.tmp, ha_discovery=True))
        proc.signal(signal.SIGHUP)
        for t in topics[3:]:
            await obs.expect_msg(t, raw=b"")
        await obs.expect_msg(topics[1])
        obs.publish(REQUEST, {"id": "one-left"})  # one PDA now: no name needed
        assert (await obs.expect(RESULT, id="one-left"))["pda"] == "pda1"
    finally:
        obs.close()


async def test_bad_config_on_sighup_keeps_the_old_one(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    notify_socket: NotifySocket,
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    proc, obs = await started(world, broker, daemon, env={"NOTIFY_SOCKET": notify_socket.address})
    try:
        good = world.tmp / "phone.toml"
        text = good.read_text()
        good.write_text(text + "\n[mqtt]\nurl = 3\n")  # a second [mqtt]: not TOML
        proc.signal(signal.SIGHUP)
        # The reload reads the file in a thread, beside the sync below: its READY (sent
        # after the log line) is the moment the log holds the refusal.
        await until(notify_socket, lambda m: "config reload failed" in m.fields.get("STATUS", ""))
        obs.publish(REQUEST, {"id": "still"})
        assert (await obs.expect(RESULT, id="still"))["ok"]
        assert "config reload failed" in proc.output()
        assert "not valid TOML" in proc.output()
    finally:
        obs.close()


async def test_sync_on_card_insertion_trigger(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        daemon(
            write_config(
                world, mqtt_table(broker, world.tmp), "[triggers]\non_card_inserted = true\n"
            )
        )
        result = await obs.expect_msg(RESULT, pda="pda1")
        body = result.json()
        assert body["ok"], body["error"]
        assert body["id"].startswith("insert-")
        assert body["to_card"]["added"] == 1
        assert [n for n, _ in world.card.records().values()] == ["Carol"]
    finally:
        obs.close()
