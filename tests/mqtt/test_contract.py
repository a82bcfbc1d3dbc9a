"""spec/mqtt.md against a real mosquitto: status, Last Will, requests and results."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from tests.e2e.harness import World
from tests.fixtures.mosquitto import Broker
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
RESULT = f"{ROOT}/sync/result"
PROGRESS = f"{ROOT}/sync/progress"

RESULT_KEYS = [
    "id", "pda", "ok", "mode", "to_pda", "to_card", "conflicts", "skipped", "set_aside",
    "apdus", "duration_ms", "started_at", "finished_at", "error",
]  # fmt: skip


async def test_status_retained_sync_by_request_and_offline_on_sigterm(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    world.card.write(1, "Alice", "+4911111")
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    proc = daemon(write_config(world, mqtt_table(broker, world.tmp)))

    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        status = await obs.expect(STATUS, state="online")
        assert status == {
            "state": "online",
            "version": status["version"],
            "card": "present",
            "busy": False,
            "last_sync": None,
        }
        # A late subscriber gets the status retained.
        late = await Observer.connect(broker, STATUS)
        try:
            msg = await late.expect_msg(STATUS)
            assert msg.retain
            assert msg.json()["state"] == "online"
        finally:
            late.close()

        obs.publish(REQUEST, {"id": "r1", "pda": "pda1"})
        result = await obs.expect(RESULT, id="r1")
        assert list(result) == RESULT_KEYS
        assert result["ok"], result["error"]
        assert result["mode"] == "slow"
        assert result["to_pda"] == {"added": 1, "modified": 0, "deleted": 0}
        assert result["to_card"] == {"added": 1, "modified": 0, "deleted": 0}
        assert result["error"] is None
        phases = {m.json()["phase"] for m in obs.messages if m.topic == PROGRESS}
        assert {"card", "connect", "exchange", "apply", "commit"} <= phases
        assert all(m.json()["id"] == "r1" for m in obs.messages if m.topic == PROGRESS)
        assert sorted(n for n, _ in world.card.records().values()) == ["Alice", "Carol"]

        # The status tells busy, then idle with the last result.
        await obs.expect(STATUS, busy=True)
        idle = await obs.expect(STATUS, busy=False, state="online")
        while idle["last_sync"] is None:
            idle = await obs.expect(STATUS, busy=False, state="online")
        assert idle["last_sync"] == result

        # Without "id" and "pda" (one PDA configured): the daemon makes an id.
        obs.publish(REQUEST, {})
        auto = await obs.expect(RESULT, pda="pda1", mode="fast")
        assert auto["ok"]
        assert 1 <= len(auto["id"]) <= 64

        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
        offline = await obs.expect_msg(STATUS, state="offline")
        assert offline.json()["last_sync"]["id"] == auto["id"]
    finally:
        obs.close()
    # Retained: whoever looks now sees offline.
    after = await Observer.connect(broker, STATUS)
    try:
        msg = await after.expect_msg(STATUS)
        assert msg.retain
        assert msg.json()["state"] == "offline"
    finally:
        after.close()


async def test_last_will_on_kill9(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    proc = daemon(write_config(world, mqtt_table(broker, world.tmp, keepalive=5)))
    obs = await Observer.connect(broker, STATUS)
    try:
        await obs.expect(STATUS, state="online")
        proc.kill9()
        will = await obs.expect_msg(STATUS, state="offline")
        assert will.json()["card"] == "unknown"
        assert will.json()["busy"] is False
    finally:
        obs.close()
    after = await Observer.connect(broker, STATUS)
    try:
        assert (await after.expect_msg(STATUS)).json()["state"] == "offline"
    finally:
        after.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_tls_with_password_and_acl_on_both_protocols(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    protocol: str,
) -> None:
    broker = mosquitto(auth=True, tls=True)
    await world.add_pda("pda1")
    config = write_config(world, mqtt_table(broker, world.tmp, protocol=protocol))
    proc = daemon(config)
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        await obs.expect(STATUS, state="online")
        obs.publish(REQUEST, {"id": "tls1"})
        assert (await obs.expect(RESULT, id="tls1"))["ok"]
        # The broker's ACL lets "intruder" read but not request: its request never arrives
        # (QoS 0: mosquitto answers a denied QoS 1 publish with a v5 reason code that a
        # 3.1.1 client takes for a broken connection).
        intruder = await Observer.connect(broker, RESULT, user="intruder")
        intruder.publish(REQUEST, {"id": "sneaky"}, qos=0)
        intruder.close()  # DISCONNECT follows the publish on the same socket
        obs.publish(REQUEST, {"id": "after"})
        await obs.expect(RESULT, id="after")
        assert not [m for m in obs.messages if m.topic == RESULT and b"sneaky" in m.payload]
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
        await obs.expect(STATUS, state="offline")
    finally:
        obs.close()
