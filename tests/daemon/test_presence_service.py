"""The service's presence wiring in-process: the BlueZ mock on a private bus, bleak in
this process, no broker. What the daemon does with a change (events, auto-sync, a
reload of the presence keys) is checked on the Control; tests/mqtt/test_presence.py
checks the same on the wire."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from daemon.config import load_config
from daemon.control import Control
from daemon.notify import Notifier
from daemon.presence import AdapterState, PresenceStatus
from daemon.presence_service import status_note
from daemon.presence_state import Presence, PresenceReason
from daemon.result import SyncResult
from daemon.service import Service
from tests.fixtures.bluez import BluezMock, close_bleak_manager
from tests.fixtures.sdnotify import NotifySocket
from transports.ble_uuids import SERVICE_UUID

PDA = "AA:BB:CC:DD:EE:01"
WAIT = 10.0


def write(tmp: Path, presence: str) -> Path:
    """A config with no card (the image is not there) and one watched PDA."""
    path = tmp / "phone.toml"
    path.write_text(
        f'[node]\nid = "x"\nstate_dir = "{tmp / "state"}"\n'
        f'[card]\nimage = "{tmp / "no-card.sqlite"}"\n'
        f'[[pda]]\nname = "pda1"\naddress = "tcp://127.0.0.1:9"\ndevice_id = "{"ab" * 32}"\n'
        f'ble_identity = "{PDA}"\n[presence]\n{presence}'
    )
    return path


async def never_runs(*_a: Any, **_kw: Any) -> SyncResult:
    raise AssertionError("no sync may start without a card")


class Events:
    """Control.event, recorded and awaitable."""

    def __init__(self, control: Control) -> None:
        self.queue: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        original = control.event

        def event(kind: Any, pda: str | None = None, *, at: str | None = None) -> None:
            self.queue.put_nowait((kind, pda))
            original(kind, pda, at=at)

        control.event = event  # type: ignore[method-assign]

    async def next(self) -> tuple[str, str | None]:
        return await asyncio.wait_for(self.queue.get(), WAIT)


async def test_no_card_no_arrival_sync_and_a_reload_restarts_only_what_changed(
    tmp_path: Path, bluez: BluezMock, notify_socket: NotifySocket
) -> None:
    bluez.add_device(PDA, uuids=(SERVICE_UUID,), paired=True, rssi=-100)
    config = load_config(write(tmp_path, "auto_sync = true\nauto_sync_min_interval = 0\n"))
    notifier = Notifier(notify_socket.address)
    service = Service(config, notify=notifier, runner=never_runs)
    ctl, presence = service.control, service.presence
    events = Events(ctl)
    task = asyncio.create_task(service.run())

    async def reloaded() -> None:
        service._reload.set()
        while "READY" not in await notify_socket.areceive(WAIT):
            pass

    async def scanning() -> Any:
        while "bluetooth hci0 scanning" not in (await notify_socket.areceive(WAIT)).fields.get(
            "STATUS", ""
        ):
            pass
        assert presence.watcher is not None
        assert presence.watcher.status.state is AdapterState.SCANNING
        return presence.watcher

    try:
        watcher = await scanning()
        async with watcher.events() as heard:
            bluez.advertise(PDA, -50)
            assert await events.next() == ("pda-near", "pda1")
            assert ctl.present is False
            assert len(ctl.queue) == 0  # no card: the arrival started nothing...
            assert presence.gate.wait_left("pda1", presence.clock()) == 0  # ...and counts not
            assert ctl.presence == {"pda1": "near"}
            assert "near: pda1" in ctl.status_line()

            # The same presence keys, auto_sync changed: the watcher keeps running.
            write(tmp_path, "auto_sync = false\n")
            await reloaded()
            bluez.remove_device(PDA)
            ev = await asyncio.wait_for(anext(heard), WAIT)  # still the first watcher
            assert (ev.state, ev.reason) == (Presence.NEAR, PresenceReason.SIGNAL)
            ev = await asyncio.wait_for(anext(heard), WAIT)
            assert (ev.state, ev.reason) == (Presence.AWAY, PresenceReason.REMOVED)
            assert await events.next() == ("pda-away", "pda1")
            assert presence.watcher is watcher

        bluez.add_device(PDA, uuids=(SERVICE_UUID,), paired=True, rssi=-100)
        bluez.advertise(PDA, -50)
        assert await events.next() == ("pda-near", "pda1")

        # Presence off: the near PDA goes away, nothing is watched, the note is gone.
        write(tmp_path, "enabled = false\n")
        await reloaded()
        assert await events.next() == ("pda-away", "pda1")
        assert ctl.presence == {}
        assert "bluetooth" not in ctl.status_line()

        # On again with other thresholds: a new watcher, every PDA away until heard.
        write(tmp_path, "near_rssi = -60\naway_rssi = -80\n")
        await reloaded()
        second = await scanning()
        assert second is not watcher
        assert ctl.presence == {"pda1": "away"}
        bluez.advertise(PDA, -65)  # near under the old -70, not under -60
        await asyncio.wait_for(second.wait_for(lambda s: s.reports >= 1), WAIT)
        assert ctl.presence == {"pda1": "away"}
        bluez.advertise(PDA, -59)
        assert await events.next() == ("pda-near", "pda1")
    finally:
        service._stopping.set()
        assert await asyncio.wait_for(task, 30) == 0
        await close_bleak_manager()
        notifier.close()
    assert events.queue.empty()  # stopping sends nobody away


def test_status_note() -> None:
    near = PresenceStatus(
        "hci0", AdapterState.SCANNING, scan="passive",
        pdas={"pda1": Presence.NEAR, "pda2": Presence.AWAY},
    )  # fmt: skip
    assert status_note(near) == "bluetooth hci0 scanning (passive); near: pda1"
    gone = PresenceStatus(
        "hci0", AdapterState.MISSING, error="adapter hci0 removed", retry_in=2.0,
        pdas={"pda1": Presence.AWAY},
    )  # fmt: skip
    assert status_note(gone) == (
        "bluetooth hci0 missing: adapter hci0 removed, retry in 2 s; no PDA near"
    )
