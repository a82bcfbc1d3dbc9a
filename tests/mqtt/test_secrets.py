"""A whole daemon run never shows the PIN, the PUK or the MQTT password anywhere.

The daemon runs as systemd would (sd_notify socket, watchdog), with debug logs, against
a mosquitto that wants a user and password over TLS, with Home Assistant discovery
on; it syncs, refuses a wrong PIN (twice: once presented, once declined), reloads,
syncs again and stops. Everything it said is then searched (``tests/mqtt/leaks.py``):
its stdout and stderr, every message on the broker (``#``), every sd_notify
datagram, and every file in its state directory.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable, Iterator
from typing import Literal

import pytest
import structlog

from daemon.logs import configure_logging, register_secret, reset_logging
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


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_the_log_masker_hides_each_form_and_leaves_other_numbers_readable(
    capsys: pytest.CaptureFixture[str], fmt: Literal["json", "console"]
) -> None:
    """What the run above relies on, form by form: every form the search looks for is
    masked where it stands alone, in a sentence, as key=value or inside a JSON string, and
    the encodings inside a longer value of their own kind too. A secret's digits inside
    another number (the emulator's PIN 0000 in the PC/SC code 0x8010000C) stay readable:
    masking them would garble the code and tell the PIN all the same."""
    password = USERS["phone"][0]
    reset_logging()
    configure_logging("info", fmt, journal=False)
    try:
        for secret in ("0000", PIN, password):
            register_secret(secret)
        log = structlog.get_logger("masking")
        log.warning("transmit failed", error="Card was reset (0x8010000C)", sw="6F00")
        log.warning("pin 0000 refused", detail="pin=0000", body=json.dumps({"pin": "0000"}))
        # Printed bytes: a length byte's escape right before the secret (a VERIFY APDU,
        # an MQTT CONNECT packet) does not make the secret part of a longer token.
        verify = b"\x00\x20\x00\x01\x08" + PIN.encode()
        connect = b"\x00\x05phone\x00" + bytes([len(password)]) + password.encode()
        log.warning("apdu", data=verify, text=repr(verify)[2:-1])
        log.warning("packet", data=connect, control="\x07" + password)
        lines = 4
        for secret in (PIN, password):
            for form, needle in encodings(secret).items():
                text = needle.decode()
                log.warning(text)
                log.warning(f"the value {text} was refused", detail=f"{form}={text}")
                log.warning("request", body=json.dumps({"value": text, "form": form}))
                lines += 3
                if form not in ("raw", "url"):  # the secret's own text needs a token
                    log.warning(f"dump A0200001{text}FFFF", b64=f"dXNl{text}cjo=")
                    lines += 1
        out = capsys.readouterr().err
    finally:
        reset_logging()
    assert out.count("\n") == lines, out  # everything was said
    assert "0x8010000C" in out
    assert "pin *** refused" in out
    assert not re.search(r"(?<![0-9A-Za-z])0000(?![0-9A-Za-z])", out), out  # not as a token
    assert find_leaks({"pin": PIN, "mqtt password": password}, [("log", out.encode())]) == []
