"""Every error code the daemon produces, each as a result on ROOT/sync/result."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from simcard import open_image
from tests.e2e.harness import ADN, World, _gr
from tests.fixtures.mosquitto import Broker
from tests.fixtures.sdnotify import NotifySocket
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config
from tests.mqtt.test_notify import until

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
CANCEL = f"{ROOT}/sync/cancel"
RESULT = f"{ROOT}/sync/result"


async def started(
    world: World,
    broker: Broker,
    daemon: Callable[..., DaemonProc],
    *tables: str,
    env: dict[str, str] | None = None,
) -> tuple[DaemonProc, Observer]:
    """A daemon for the World on ``broker`` and an observer that saw it come online."""
    proc = daemon(write_config(world, mqtt_table(broker, world.tmp), *tables), env=env)
    obs = await Observer.connect(broker, f"{ROOT}/#")
    try:
        obs.online = await obs.expect(STATUS, state="online")
    except BaseException:
        obs.close()
        raise
    return proc, obs


def error(result: dict[str, object]) -> str:
    assert result["ok"] is False
    err = result["error"]
    assert isinstance(err, dict)
    assert err["message"]
    return str(err["code"])


async def test_request_errors_and_the_daemon_carries_on(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    await world.add_pda("stranger", pair=False)  # its PDA does not know this phone
    gone = await world.add_pda("gone")
    await gone.stop()  # nobody listens at its address any more
    proc, obs = await started(world, broker, daemon)
    try:
        obs.publish(REQUEST, b"sync please")
        bad = await obs.expect(RESULT, id=None)
        assert error(bad) == "bad_request"
        assert "not JSON" in bad["error"]["message"]
        assert bad["pda"] is None
        assert bad["mode"] is None

        obs.publish(REQUEST, {"id": "m1", "pda": "pda1", "mode": "fastest"})
        assert error(await obs.expect(RESULT, id="m1")) == "bad_request"
        obs.publish(REQUEST, {"id": "n1"})  # three PDAs configured: which one?
        several = await obs.expect(RESULT, id="n1")
        assert error(several) == "bad_request"
        assert "several PDAs" in several["error"]["message"]
        obs.publish(REQUEST, {"id": "u1", "pda": "nope"})
        unknown = await obs.expect(RESULT, id="u1")
        assert error(unknown) == "unknown_pda"
        assert unknown["pda"] == "nope"
        obs.publish(REQUEST, {"id": "g1", "pda": "gone"})
        assert error(await obs.expect(RESULT, id="g1")) == "pda_unreachable"
        obs.publish(REQUEST, {"id": "s1", "pda": "stranger"})
        assert error(await obs.expect(RESULT, id="s1")) == "peer_rejected"
        obs.publish(CANCEL, b"[]")
        cancel = await obs.expect(RESULT, id=None)
        assert error(cancel) == "bad_request"
        assert "cancel" in cancel["error"]["message"]

        # After all that, a good request still syncs.
        obs.publish(REQUEST, {"id": "ok1", "pda": "pda1"})
        assert (await obs.expect(RESULT, id="ok1"))["ok"]
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
    finally:
        obs.close()


async def test_no_card_then_timeout_of_a_silent_pda(
    world: World,
    mosquitto: Callable[..., Broker],
    daemon: Callable[..., DaemonProc],
    notify_socket: NotifySocket,
) -> None:
    broker = mosquitto()
    pda = await world.add_pda("pda1")
    world.image.rename(world.tmp / "elsewhere.sqlite")
    proc, obs = await started(
        world,
        broker,
        daemon,
        "[daemon]\nsync_timeout = 1\n",
        env={"NOTIFY_SOCKET": notify_socket.address},
    )
    try:
        assert obs.online["card"] == "absent"
        obs.publish(REQUEST, {"id": "nc"})
        assert error(await obs.expect(RESULT, id="nc")) == "no_card"
        (world.tmp / "elsewhere.sqlite").rename(world.image)
        # The PDA serves one sync at a time: holding its lock makes it silent.
        assert pda.server is not None
        async with pda.server._lock:
            obs.publish(REQUEST, {"id": "slow"})
            late = await obs.expect(RESULT, id="slow")
        assert error(late) == "timeout"
        assert late["duration_ms"] >= 1000
        assert "sync_timeout" in late["error"]["message"]
        # A healthy sync can take over 1 s on a loaded machine: the default again (a
        # reload) before the sync that must work.
        text = proc.config.read_text()
        assert "sync_timeout = 1\n" in text
        proc.config.write_text(text.replace("sync_timeout = 1\n", ""))
        proc.signal(signal.SIGHUP)
        await until(notify_socket, lambda m: "RELOADING" in m)
        ready = (await until(notify_socket, lambda m: "READY" in m))[-1]
        assert "config reload failed" not in ready.fields["STATUS"]
        obs.publish(REQUEST, {"id": "after"})
        assert (await obs.expect(RESULT, id="after"))["ok"]
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
    finally:
        obs.close()


def block_pin(image: Path) -> None:
    """Three wrong PINs, as a careless person at another phone would type them."""
    card = open_image(image)
    try:
        card.power_on()
        for apdu in ADN:
            _gr(card, apdu)
        wrong = bytes.fromhex("A020000108") + b"9999".ljust(8, b"\xff")
        for _ in range(3):
            assert card.transmit(wrong)[-2:] != b"\x90\x00"
    finally:
        card.close()


async def test_pin_rejected_card_blocked_and_internal(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    await world.add_pda("pda1")
    (world.tmp / "pin").write_text("1234\n")  # not the card's PIN
    proc, obs = await started(world, broker, daemon)
    try:
        obs.publish(REQUEST, {"id": "p1"})
        assert error(await obs.expect(RESULT, id="p1")) == "pin_rejected"
        assert (await obs.expect(STATUS, card="blocked"))["last_sync"]["id"] == "p1"
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
    finally:
        obs.close()

    block_pin(world.image)
    (world.tmp / "pin").write_text("0000\n")
    proc, obs = await started(world, broker, daemon)
    try:
        obs.publish(REQUEST, {"id": "b1"})
        assert error(await obs.expect(RESULT, id="b1")) == "card_blocked"
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
    finally:
        obs.close()

    # A state dir that cannot be made: the phone's own fault, "internal".
    world.state_dir = world.tmp / "a-file"
    world.state_dir.write_text("not a directory")
    proc, obs = await started(world, broker, daemon)
    try:
        obs.publish(REQUEST, {"id": "i1"})
        assert error(await obs.expect(RESULT, id="i1")) == "internal"
    finally:
        obs.close()
