"""A whole daemon run never shows the PIN, the PUK or the MQTT password anywhere.

The daemon runs as systemd would (sd_notify socket, watchdog), with debug logs, against
a mosquitto that wants a user and password over TLS, with Home Assistant discovery
on; it syncs, refuses a wrong PIN (twice: once presented, once declined), reloads,
syncs again and stops. Everything it said is then searched (``tests/mqtt/leaks.py``):
its stdout and stderr, every message on the broker (``#``), every sd_notify
datagram, and every file in its state directory.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

from simcard import create_image
from tests.e2e.harness import World
from tests.fixtures.mosquitto import USERS, Broker
from tests.fixtures.sdnotify import NotifySocket
from tests.mqtt.leaks import encodings, find_leaks
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config
from tests.mqtt.test_errors import error
from tests.mqtt.test_notify import until

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
RESULT = f"{ROOT}/sync/result"

# Distinct values, so a find is never a coincidence with a port or a record number.
PIN = "73915284"
WRONG_PIN = "58206137"
PUK = "94817263"
SECRETS = {"pin": PIN, "wrong pin": WRONG_PIN, "puk": PUK, "mqtt password": USERS["phone"][0]}


def state_files(world: World) -> Iterator[tuple[str, bytes]]:
    for path in sorted(world.state_dir.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes()


async def test_no_secret_in_anything_a_whole_run_says(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    notify_socket: NotifySocket,
) -> None:
    broker = mosquitto(auth=True, tls=True)
    world.image.unlink()  # the World's card, with a PIN and a PUK nobody would guess
    create_image(world.image, records=40, pin=PIN, puk=PUK)
    pin_file = world.tmp / "pin"
    pin_file.write_text(PIN + "\n")
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    config = write_config(world, mqtt_table(broker, world.tmp, ha_discovery=True))
    obs = await Observer.connect(broker, "#")
    try:
        proc = daemon(
            config, env={"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "2000000"}
        )
        await until(notify_socket, lambda m: "READY" in m)
        await obs.expect(STATUS, state="online")
        obs.publish(REQUEST, {"id": "s1"})
        assert (await obs.expect(RESULT, id="s1"))["ok"]

        pin_file.write_text(WRONG_PIN + "\n")
        obs.publish(REQUEST, {"id": "w1"})  # presented, rejected
        assert error(await obs.expect(RESULT, id="w1")) == "pin_rejected"
        obs.publish(REQUEST, {"id": "w2"})  # declined: not presented again
        assert error(await obs.expect(RESULT, id="w2")) == "pin_rejected"
        # The PIN guard's record exists only until the right PIN is back: look now too.
        refused = [(f"{name} (after the refusal)", data) for name, data in state_files(world)]

        pin_file.write_text(PIN + "\n")
        proc.signal(signal.SIGHUP)
        await until(notify_socket, lambda m: "RELOADING" in m)
        await until(notify_socket, lambda m: "READY" in m)
        pda.add("Zoe", "+4912")
        obs.publish(REQUEST, {"id": "s2"})
        again = await obs.expect(RESULT, id="s2")
        assert again["ok"], again["error"]

        proc.signal(signal.SIGTERM)
        await until(notify_socket, lambda m: "STOPPING" in m)
        assert await proc.exited() == 0
        await obs.expect(STATUS, state="offline")
    finally:
        obs.close()

    log = proc.log.read_bytes()
    messages = [(f"mqtt {m.topic}", m.topic.encode() + b" " + m.payload) for m in obs.messages]
    datagrams = [(f"sd_notify #{i}", m.raw) for i, m in enumerate(notify_socket.received)]
    files = [*refused, *state_files(world)]
    # The run said plenty, so finding nothing means something.
    assert b"pin rejected" in log
    assert b"config reloaded" in log
    assert len(messages) >= 20
    assert any(b"homeassistant/" in body for _, body in messages)
    assert len(datagrams) >= 5
    assert any("pin-guard" in name for name, _ in files)
    assert any(name.endswith("cards.sqlite") for name, _ in files)

    leaks = find_leaks(SECRETS, [("daemon stdout+stderr", log), *messages, *datagrams, *files])
    assert leaks == []


def test_the_search_finds_each_form() -> None:
    """The search above can fail: a secret planted in any of its forms is found."""
    for secret in (PIN, USERS["phone"][0]):
        for form, needle in encodings(secret).items():
            blob = b'{"event": "connect", "detail": "x' + needle + b'y", "n": 12}'
            found = find_leaks({"s": secret}, [("planted", blob)])
            assert form in {leak.form for leak in found}, form
            assert all(secret.encode() not in leak.context for leak in found if leak.form == "raw")
    assert find_leaks({"pin": PIN}, [("clean", b"pin_file = /etc/simsync/pin; tries 3")]) == []
