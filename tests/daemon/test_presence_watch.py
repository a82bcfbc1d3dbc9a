"""The presence watcher against bleak and a mocked bluetoothd on a private system bus.

Everything real but bluetoothd: bleak's BlueZ backend, dbus-fast, dbus-daemon. The
tests await events and status changes, never sleep; time-outs are driven by an
injected clock except where the real timer itself is under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from daemon.presence import AdapterState, PresenceEvent, PresenceSettings, PresenceWatcher
from daemon.presence_state import Presence, PresenceReason, Thresholds
from tests.fixtures.bluez import BluezMock
from transports.ble_uuids import SERVICE_UUID

PDA = "AA:BB:CC:DD:EE:01"
OTHER = "AA:BB:CC:DD:EE:02"
WAIT = 10.0  # generous bound for anything that should take milliseconds
NEAR, AWAY = Presence.NEAR, Presence.AWAY


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(**kwargs: Any) -> PresenceSettings:
    thresholds = kwargs.pop("thresholds", Thresholds(near_rssi=-70, away_rssi=-85, away_after=30))
    return PresenceSettings(thresholds=thresholds, retry_initial=0.02, retry_max=0.1, **kwargs)


@asynccontextmanager
async def watching(
    watcher: PresenceWatcher,
) -> AsyncIterator[Callable[[], Any]]:
    """Run the watcher; yields ``next_event()``. Cancelled and awaited on exit."""
    async with watcher.events() as events:
        task = asyncio.create_task(watcher.run())
        try:

            async def next_event() -> PresenceEvent:
                return await asyncio.wait_for(anext(events), WAIT)

            yield next_event
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def scanning(watcher: PresenceWatcher) -> None:
    await asyncio.wait_for(watcher.wait_for(lambda s: s.state is AdapterState.SCANNING), WAIT)


def add_pda(bluez: BluezMock, address: str = PDA) -> None:
    bluez.add_device(address, uuids=(SERVICE_UUID,), paired=True, rssi=-100)


async def test_passive_where_bluez_offers_monitors_near_then_removed(bluez: BluezMock) -> None:
    add_pda(bluez)
    watcher = PresenceWatcher({"pda1": PDA}, settings())
    async with watching(watcher) as next_event:
        await scanning(watcher)
        assert watcher.status.scan == "passive"
        assert len(bluez.monitors()) == 1
        assert not bluez.discovering()  # nothing sent on air

        bluez.advertise(PDA, -60)
        ev = await next_event()
        assert (ev.pda, ev.state, ev.reason, ev.rssi) == ("pda1", NEAR, PresenceReason.SIGNAL, -60)
        assert ev.to_json()["type"] == "pda-near"
        assert watcher.state("pda1") is NEAR

        bluez.remove_device(PDA)  # unpaired or forgotten: BlueZ drops the object
        ev = await next_event()
        assert (ev.state, ev.reason) == (AWAY, PresenceReason.REMOVED)
        assert watcher.status.pdas == {"pda1": AWAY}
    assert bluez.monitors() == []  # the monitor is unregistered on the way out


async def test_active_discovery_where_bluez_offers_no_monitors(
    start_bluez: Callable[..., BluezMock],
) -> None:
    bluez = start_bluez(enable_monitor_api=False)
    bluez.add_adapter()
    add_pda(bluez)
    watcher = PresenceWatcher({"pda1": PDA}, settings())
    async with watching(watcher) as next_event:
        await scanning(watcher)
        assert watcher.status.scan == "active"
        assert bluez.discovering()
        bluez.advertise(PDA, -50)
        assert (await next_event()).state is NEAR
    assert not bluez.discovering()


async def test_scan_setting_forces_active_or_demands_passive(
    bluez: BluezMock, start_bluez: Callable[..., BluezMock]
) -> None:
    watcher = PresenceWatcher({"pda1": PDA}, settings(scan="active"))
    async with watching(watcher):
        await scanning(watcher)
        assert watcher.status.scan == "active"
        assert bluez.monitors() == []
    bluez.close()

    bluez = start_bluez(enable_monitor_api=False)
    bluez.add_adapter()
    watcher = PresenceWatcher({"pda1": PDA}, settings(scan="passive"))
    async with watching(watcher):
        st = await asyncio.wait_for(watcher.wait_for(lambda s: s.error is not None), WAIT)
        assert st.state is AdapterState.UNAVAILABLE
        assert st.error is not None
        assert "no advertisement monitors" in st.error


async def test_only_the_configured_identity_counts(bluez: BluezMock) -> None:
    add_pda(bluez)
    bluez.add_device(OTHER, uuids=(SERVICE_UUID,))  # a stranger running simsync too
    watcher = PresenceWatcher({"pda1": PDA}, settings())
    async with watching(watcher) as next_event:
        await scanning(watcher)
        bluez.advertise(OTHER, -30)
        bluez.advertise(PDA, -65)
        ev = await next_event()
        assert (ev.pda, ev.rssi) == ("pda1", -65)  # the stranger's -30 made nothing near
        bluez.remove_device(OTHER)
        bluez.remove_device(PDA)
        assert (await next_event()).reason is PresenceReason.REMOVED
    assert watcher.status.reports == 1


async def test_hysteresis_through_bluez(bluez: BluezMock) -> None:
    add_pda(bluez)
    clock = FakeClock()
    watcher = PresenceWatcher({"pda1": PDA}, settings(), clock=clock)

    async def heard(rssi: int, reports: int) -> None:
        bluez.advertise(PDA, rssi)
        await asyncio.wait_for(watcher.wait_for(lambda s: s.reports >= reports), WAIT)

    async with watching(watcher) as next_event:
        await scanning(watcher)
        await heard(-80, 1)  # in the band: not near yet
        await heard(-75, 2)
        assert watcher.state("pda1") is AWAY
        bluez.advertise(PDA, -70)  # at near_rssi
        assert ((ev := await next_event()).state, ev.rssi) == (NEAR, -70)

        clock.now += 20
        await heard(-84, 4)  # in the band: keeps it near, the time-out restarts
        clock.now += 25  # 45 s after the near, 25 s after the band report
        await heard(-95, 5)  # too weak to keep it near; the time-out is not due yet
        assert watcher.state("pda1") is NEAR
        clock.now += 6  # 31 s since the last report in the band
        bluez.advertise(PDA, -95)
        ev = await next_event()
        assert (ev.state, ev.reason, ev.rssi) == (AWAY, PresenceReason.TIMEOUT, -95)


async def test_away_after_silence_on_the_real_timer(bluez: BluezMock) -> None:
    add_pda(bluez)
    thresholds = Thresholds(near_rssi=-70, away_rssi=-85, away_after=0.2)
    watcher = PresenceWatcher({"pda1": PDA}, settings(thresholds=thresholds))
    async with watching(watcher) as next_event:
        await scanning(watcher)
        bluez.advertise(PDA, -60)
        assert (await next_event()).state is NEAR
        ev = await next_event()  # nothing more is heard
        assert (ev.state, ev.reason) == (AWAY, PresenceReason.TIMEOUT)


@pytest.mark.parametrize("with_devices", [False, True])
async def test_adapter_gone_and_back(bluez: BluezMock, with_devices: bool) -> None:
    add_pda(bluez)
    events: list[PresenceEvent] = []
    watcher = PresenceWatcher({"pda1": PDA}, settings(), on_event=events.append)
    async with watching(watcher) as next_event:
        await scanning(watcher)
        bluez.advertise(PDA, -60)
        assert (await next_event()).state is NEAR

        bluez.remove_adapter(with_devices=with_devices)
        ev = await next_event()
        # bluetoothd removes the devices first; either way nothing is claimed near
        expected = PresenceReason.REMOVED if with_devices else PresenceReason.ADAPTER
        assert (ev.state, ev.reason) == (AWAY, expected)
        st = await asyncio.wait_for(
            watcher.wait_for(lambda s: s.state is AdapterState.MISSING), WAIT
        )
        assert st.error == "adapter hci0 removed"
        assert st.retry_in is not None
        assert st.pdas == {"pda1": AWAY}
        # while it is missing, retries find no adapter and say so
        st = await asyncio.wait_for(
            watcher.wait_for(lambda s: s.error == "no Bluetooth adapter hci0"), WAIT
        )
        assert st.state is AdapterState.MISSING

        bluez.add_adapter()
        if with_devices:
            add_pda(bluez)  # bluetoothd reloads its bonded devices
        await scanning(watcher)
        assert watcher.status.scan == "passive"
        bluez.advertise(PDA, -55)
        ev = await next_event()
        assert (ev.state, ev.rssi) == (NEAR, -55)
    assert [e.type for e in events] == ["pda-near", "pda-away", "pda-near"]


async def test_adapter_powered_off_and_on(bluez: BluezMock) -> None:
    add_pda(bluez)
    watcher = PresenceWatcher({"pda1": PDA}, settings())
    async with watching(watcher) as next_event:
        await scanning(watcher)
        bluez.advertise(PDA, -60)
        assert (await next_event()).state is NEAR
        bluez.set_powered(False)
        ev = await next_event()
        assert (ev.state, ev.reason) == (AWAY, PresenceReason.ADAPTER)
        st = await asyncio.wait_for(watcher.wait_for(lambda s: s.state is AdapterState.OFF), WAIT)
        assert st.error == "adapter hci0 powered off"
        bluez.set_powered(True)
        await scanning(watcher)
        bluez.advertise(PDA, -61)
        assert (await next_event()).state is NEAR


async def test_no_adapter_at_start_then_plugged_in(start_bluez: Callable[..., BluezMock]) -> None:
    bluez = start_bluez()
    watcher = PresenceWatcher({"pda1": PDA}, settings())
    async with watching(watcher) as next_event:
        st = await asyncio.wait_for(
            watcher.wait_for(lambda s: s.state is AdapterState.MISSING), WAIT
        )
        assert st.error == "no Bluetooth adapter hci0"
        bluez.add_adapter()
        add_pda(bluez)
        await scanning(watcher)
        bluez.advertise(PDA, -60)
        assert (await next_event()).state is NEAR


async def test_bluetoothd_gone_and_back(bluez: BluezMock) -> None:
    add_pda(bluez)
    watcher = PresenceWatcher({"pda1": PDA}, settings())
    async with watching(watcher) as next_event:
        await scanning(watcher)
        bluez.advertise(PDA, -60)
        assert (await next_event()).state is NEAR
        bluez.stop()
        assert (await next_event()).reason is PresenceReason.ADAPTER
        st = await asyncio.wait_for(
            watcher.wait_for(lambda s: s.error == "bluetoothd is not running"), WAIT
        )
        assert st.state is AdapterState.UNAVAILABLE
        bluez.start()
        bluez.add_adapter()
        add_pda(bluez)
        await scanning(watcher)
        bluez.advertise(PDA, -60)
        assert (await next_event()).state is NEAR


async def test_no_system_bus_is_retried_not_raised(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/nothing-here")
    watcher = PresenceWatcher({"pda1": PDA}, settings())
    async with watching(watcher):
        st = await asyncio.wait_for(watcher.wait_for(lambda s: s.retry_in == 0.1), WAIT)
        assert st.state is AdapterState.UNAVAILABLE
        assert st.error is not None
        assert "FileNotFoundError" in st.error


async def test_a_returning_adapter_cuts_the_backoff_short(bluez: BluezMock) -> None:
    """With a 60 s backoff, plugging in, powering on or restarting bluetoothd is noticed now."""
    add_pda(bluez)
    slow = PresenceSettings(retry_initial=60.0, retry_max=60.0)
    watcher = PresenceWatcher({"pda1": PDA}, slow)

    async def state(want: AdapterState) -> None:
        await asyncio.wait_for(watcher.wait_for(lambda s: s.state is want), WAIT)

    async with watching(watcher):
        await scanning(watcher)
        bluez.remove_adapter()
        await state(AdapterState.MISSING)
        bluez.add_adapter()
        await scanning(watcher)

        bluez.set_powered(False)
        await state(AdapterState.OFF)
        bluez.set_powered(True)
        await scanning(watcher)

        bluez.stop()
        await state(AdapterState.UNAVAILABLE)
        bluez.start()
        bluez.add_adapter()  # its InterfacesAdded, or bluetoothd's arrival, ends the wait
        await scanning(watcher)
        assert watcher.status.retry_in is None


async def test_a_failing_consumer_does_not_stop_the_watcher(bluez: BluezMock) -> None:
    add_pda(bluez)
    calls: list[str] = []

    def broken(ev: PresenceEvent) -> None:
        calls.append(ev.type)
        raise RuntimeError("consumer bug")

    watcher = PresenceWatcher({"pda1": PDA}, settings(), on_event=broken)
    async with watching(watcher) as next_event:
        await scanning(watcher)
        bluez.advertise(PDA, -60)
        assert (await next_event()).state is NEAR
        bluez.remove_device(PDA)
        assert (await next_event()).state is AWAY
    assert calls == ["pda-near", "pda-away"]
