"""The presence watcher: which configured PDAs are within Bluetooth range (bleak, BlueZ).

Each PDA is configured by its BLE *identity* address. A bonded PDA that advertises
from resolvable private addresses is still reported by BlueZ on the device object
of its identity (BlueZ resolves the addresses with the bond's IRK), so the watcher
matches advertisements on that object, ``/org/bluez/<adapter>/dev_<identity>``.

Scanning is passive (an advertisement monitor: nothing is sent on air) where BlueZ
offers ``AdvertisementMonitorManager1`` with ``or_patterns``, active discovery
otherwise, or as configured (``[presence] scan``). Both look for the simsync service
UUID. The rules deciding near and away live in :mod:`daemon.presence_state`; this
module feeds them and owns the adapter: a missing, powered-off or returning
adapter (or bluetoothd) is retried with exponential backoff, shown in
:attr:`PresenceWatcher.status` and logged, and never ends :meth:`PresenceWatcher.run`.

bleak is imported here and in the BLE link only; dbus-fast (bleak's own D-Bus
library) watches the adapter itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import structlog
from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from daemon.presence_state import (
    Presence,
    PresenceReason,
    PresenceTracker,
    ScanMode,
    Thresholds,
)
from transports.ble_uuids import SERVICE_UUID, uuid128_ad_bytes
from transports.bluez import BLUEZ, BLUEZ_OWNER_RULE, add_match

__all__ = [
    "AdapterState",
    "PresenceEvent",
    "PresenceSettings",
    "PresenceStatus",
    "PresenceWatcher",
    "device_path",
]

log = structlog.get_logger("simsync.presence")

_ADAPTER = "org.bluez.Adapter1"
_DEVICE = "org.bluez.Device1"
_MONITOR_MANAGER = "org.bluez.AdvertisementMonitorManager1"
_CALL_TIMEOUT = 10.0  # a healthy bluetoothd answers in milliseconds


def device_path(adapter: str, address: str) -> str:
    """BlueZ's object path of the device with ``address`` on ``adapter``."""
    return f"/org/bluez/{adapter}/dev_{address.upper().replace(':', '_')}"


class AdapterState(StrEnum):
    """What the watcher's adapter is doing (``status`` and logs)."""

    STARTING = "starting"
    SCANNING = "scanning"
    MISSING = "missing"  # no such adapter (unplugged, or another name)
    OFF = "off"  # present but powered off (rfkill, bluetoothctl power off)
    UNAVAILABLE = "unavailable"  # no system bus, no bluetoothd, or it refused


@dataclass(frozen=True)
class PresenceSettings:
    """``[presence]`` of the config, minus the auto-sync keys the service applies."""

    adapter: str = "hci0"
    scan: ScanMode = "auto"
    thresholds: Thresholds = field(default_factory=Thresholds)
    retry_initial: float = 1.0
    retry_max: float = 60.0


@dataclass(frozen=True)
class PresenceEvent:
    """A PDA came near or went away; :meth:`to_json` is spec/mqtt.md's ``ROOT/event``."""

    pda: str
    state: Presence
    reason: PresenceReason
    rssi: int | None
    at: datetime

    @property
    def type(self) -> str:
        """``pda-near`` or ``pda-away``."""
        return f"pda-{self.state}"

    def to_json(self) -> dict[str, Any]:
        """The ``ROOT/event`` payload."""
        at = self.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"type": self.type, "pda": self.pda, "at": at}


@dataclass(frozen=True)
class PresenceStatus:
    """The watcher as the status topic and logs show it."""

    adapter: str
    state: AdapterState = AdapterState.STARTING
    scan: Literal["passive", "active"] | None = None
    error: str | None = None
    retry_in: float | None = None
    reports: int = 0  # advertisements of configured PDAs taken so far
    pdas: Mapping[str, Presence] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON object for the daemon's status."""
        return {
            "adapter": self.adapter,
            "state": str(self.state),
            "scan": self.scan,
            "error": self.error,
            "retry_in": self.retry_in,
            "pdas": {name: str(p) for name, p in self.pdas.items()},
        }


class _NotReadyError(Exception):
    def __init__(self, state: AdapterState, message: str) -> None:
        super().__init__(message)
        self.state = state


class PresenceWatcher:
    """Watches for the PDAs ``{name: identity address}``; :meth:`run` until cancelled.

    Events go to ``on_event`` (called in the loop, must not block) and to every
    :meth:`events` subscription. ``clock`` (monotonic seconds) and ``wall_clock``
    are injectable for tests.
    """

    def __init__(
        self,
        pdas: Mapping[str, str],
        settings: PresenceSettings | None = None,
        *,
        on_event: Callable[[PresenceEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings or PresenceSettings()
        self._adapter_path = f"/org/bluez/{self.settings.adapter}"
        self._paths = {device_path(self.settings.adapter, a): name for name, a in pdas.items()}
        self._tracker = PresenceTracker(pdas, self.settings.thresholds)
        self._on_event = on_event
        self._clock, self._wall_clock = clock, wall_clock
        self._subscribers: list[asyncio.Queue[PresenceEvent]] = []
        self._changed = asyncio.Event()  # replaced by a fresh one at every status change
        self._wake = asyncio.Event()  # a report moved the next time-out
        self._lost = asyncio.Event()  # the adapter, bluetoothd or the bus went away
        self._back = asyncio.Event()  # ...and may be back: retry before the backoff ends
        self._lost_why = (AdapterState.UNAVAILABLE, "")
        self.status = PresenceStatus(self.settings.adapter, pdas=self._tracker.states())

    # -- what the service uses ---------------------------------------------------------

    def state(self, pda: str) -> Presence:
        """Whether ``pda`` is near or away now."""
        return self._tracker.state(pda)

    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[AsyncIterator[PresenceEvent]]:
        """``async with watcher.events() as it: async for ev in it`` (subscribed on entry)."""
        queue: asyncio.Queue[PresenceEvent] = asyncio.Queue()
        self._subscribers.append(queue)

        async def iterate() -> AsyncGenerator[PresenceEvent]:
            while True:
                yield await queue.get()

        gen = iterate()
        try:
            yield gen
        finally:
            self._subscribers.remove(queue)
            await gen.aclose()

    async def wait_for(self, predicate: Callable[[PresenceStatus], bool]) -> PresenceStatus:
        """Wait until ``predicate(status)`` holds; returns that status."""
        while not predicate(self.status):
            await self._changed.wait()
        return self.status

    async def run(self) -> None:
        """Watch until cancelled; Bluetooth trouble is retried, never raised."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._timeouts())
            await self._supervise()

    # -- internals ---------------------------------------------------------------------

    def _set_status(self, **changes: Any) -> None:
        self.status = replace(self.status, pdas=self._tracker.states(), **changes)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _emit(self, changes: list[Any]) -> None:
        for c in changes:
            ev = PresenceEvent(c.pda, c.state, c.reason, c.rssi, self._wall_clock())
            log.info(f"presence.{c.state}", pda=c.pda, reason=str(c.reason), rssi=c.rssi)
            for q in self._subscribers:
                q.put_nowait(ev)
            if self._on_event is not None:
                try:
                    self._on_event(ev)
                except Exception:  # a consumer's bug must not stop the watching
                    log.exception("presence.on_event failed", pda=c.pda)
        if changes:
            self._wake.set()
            self._set_status()

    async def _timeouts(self) -> None:
        while True:
            self._wake.clear()
            deadline = self._tracker.next_deadline()
            if deadline is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - self._clock()))
            self._emit(self._tracker.tick(self._clock()))

    async def _supervise(self) -> None:
        delay = self.settings.retry_initial
        bus: MessageBus | None = None
        try:
            while True:
                state, error = AdapterState.UNAVAILABLE, ""
                self._back.clear()  # from here on, a returning adapter cuts the wait short
                try:
                    if bus is None or not bus.connected:
                        bus = await self._connect()
                    await self._session(bus)
                    state, error = self._lost_why
                    delay = self.settings.retry_initial  # it worked until now: retry promptly
                except _NotReadyError as exc:
                    state, error = exc.state, str(exc)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
                self._emit(self._tracker.lost(PresenceReason.ADAPTER))
                log.warning(
                    "presence.adapter", adapter=self.settings.adapter, state=str(state),
                    error=error, retry_in=delay,
                )  # fmt: skip
                self._set_status(state=state, scan=None, error=error, retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._back.wait(), delay)
                delay = min(delay * 2, self.settings.retry_max)
                self._set_status(state=AdapterState.STARTING, retry_in=None)
        finally:
            if bus is not None:
                bus.disconnect()

    async def _connect(self) -> MessageBus:
        """A system bus connection that hears the adapter, its devices and bluetoothd."""
        bus = await asyncio.wait_for(MessageBus(bus_type=BusType.SYSTEM).connect(), _CALL_TIMEOUT)
        try:
            bus.add_message_handler(self._on_signal)
            for rule in (
                f"type='signal',sender='{BLUEZ}',interface='org.freedesktop.DBus.ObjectManager'",
                f"type='signal',sender='{BLUEZ}',path='{self._adapter_path}',"
                "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
                BLUEZ_OWNER_RULE,
            ):
                await self._call(bus, add_match(rule))
        except BaseException:
            bus.disconnect()
            raise
        return bus

    async def _session(self, bus: MessageBus) -> None:
        """Scan until the adapter is lost; raises ``_NotReadyError`` if it cannot start."""
        self._lost.clear()
        objects = await self._managed_objects(bus)
        mode = self._check_adapter(objects.get(self._adapter_path, {}))
        scanner = self._scanner(mode)
        await asyncio.wait_for(scanner.start(), _CALL_TIMEOUT)
        try:
            log.info("presence.scanning", adapter=self.settings.adapter, scan=mode)
            self._set_status(state=AdapterState.SCANNING, scan=mode, error=None)
            # shield: cancelling our wait must not cancel the bus's own disconnect future
            disconnected = asyncio.shield(bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
            lost = asyncio.ensure_future(self._lost.wait())
            try:
                await asyncio.wait({disconnected, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for f in (disconnected, lost):
                    f.cancel()
            if not self._lost.is_set():
                self._lost_why = (AdapterState.UNAVAILABLE, "the system bus connection closed")
        finally:
            # The adapter may be gone already: stopping is best effort.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(scanner.stop(), _CALL_TIMEOUT)

    async def _call(self, bus: MessageBus, msg: Message) -> Any:
        reply = await asyncio.wait_for(bus.call(msg), _CALL_TIMEOUT)
        assert reply is not None  # a method call always gets a reply
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body else ""
            if reply.error_name in (
                "org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
            ):
                raise _NotReadyError(AdapterState.UNAVAILABLE, "bluetoothd is not running")
            raise _NotReadyError(AdapterState.UNAVAILABLE, f"{reply.error_name}: {text}")
        return reply.body

    async def _managed_objects(self, bus: MessageBus) -> dict[str, dict[str, dict[str, Any]]]:
        msg = Message(
            destination=BLUEZ,
            path="/",
            interface="org.freedesktop.DBus.ObjectManager",
            member="GetManagedObjects",
        )
        body = await self._call(bus, msg)
        return {
            path: {iface: {k: v.value for k, v in props.items()} for iface, props in ifaces.items()}
            for path, ifaces in body[0].items()
        }

    def _check_adapter(self, adapter: dict[str, dict[str, Any]]) -> Literal["passive", "active"]:
        name = self.settings.adapter
        if _ADAPTER not in adapter:
            raise _NotReadyError(AdapterState.MISSING, f"no Bluetooth adapter {name}")
        if not adapter[_ADAPTER].get("Powered"):
            raise _NotReadyError(AdapterState.OFF, f"adapter {name} is powered off")
        monitors = "or_patterns" in adapter.get(_MONITOR_MANAGER, {}).get(
            "SupportedMonitorTypes", []
        )
        if self.settings.scan == "passive" and not monitors:
            raise _NotReadyError(
                AdapterState.UNAVAILABLE,
                f"scan = 'passive' but BlueZ offers no advertisement monitors on {name} "
                "(bluetoothd --experimental, kernel >= 5.10), or set scan = 'auto'",
            )
        if self.settings.scan == "active" or not monitors:
            return "active"
        return "passive"

    def _scanner(self, mode: Literal["passive", "active"]) -> BleakScanner:
        args: BlueZScannerArgs = {"adapter": self.settings.adapter}
        if mode == "passive":
            # The service UUID at the start of a (complete or incomplete) 128-bit UUID list.
            raw = uuid128_ad_bytes(SERVICE_UUID)
            args["or_patterns"] = [
                OrPattern(0, AdvertisementDataType.COMPLETE_LIST_SERVICE_UUID128, raw),
                OrPattern(0, AdvertisementDataType.INCOMPLETE_LIST_SERVICE_UUID128, raw),
            ]
            return BleakScanner(self._seen, scanning_mode="passive", bluez=args)
        return BleakScanner(
            self._seen, service_uuids=[SERVICE_UUID], scanning_mode="active", bluez=args
        )

    def _seen(self, device: BLEDevice, adv: AdvertisementData) -> None:
        pda = self._paths.get(device.details.get("path", ""))
        # BlueZ drops RSSI from a device it no longer hears: that is no advertisement.
        if pda is None or "RSSI" not in adv.platform_data[1]:
            return
        self._emit(self._tracker.heard(pda, adv.rssi, self._clock()))
        self._wake.set()
        self._set_status(reports=self.status.reports + 1)

    def _on_signal(self, msg: Message) -> None:
        """Adapter, device and bluetoothd comings and goings (bleak reports the adverts)."""
        if msg.message_type != MessageType.SIGNAL:
            return
        why: tuple[AdapterState, str] | None = None
        name, back = self.settings.adapter, False
        if msg.member == "InterfacesRemoved":
            path, interfaces = msg.body
            if path == self._adapter_path and _ADAPTER in interfaces:
                why = (AdapterState.MISSING, f"adapter {name} removed")
            elif _DEVICE in interfaces and path in self._paths:
                self._emit(self._tracker.lost(PresenceReason.REMOVED, self._paths[path]))
        elif msg.member == "InterfacesAdded":
            back = msg.body[0] == self._adapter_path  # plugged in
        elif msg.member == "PropertiesChanged" and msg.path == self._adapter_path:
            iface, changed, _invalidated = msg.body
            if iface == _ADAPTER and "Powered" in changed:
                back = bool(changed["Powered"].value)
                if not back:
                    why = (AdapterState.OFF, f"adapter {name} powered off")
        elif msg.member == "NameOwnerChanged" and msg.body[0] == BLUEZ:
            back = bool(msg.body[2])  # bluetoothd (re)started
            if not back:
                why = (AdapterState.UNAVAILABLE, "bluetoothd left the bus")
        if back:
            self._back.set()
        if why and not self._lost.is_set():
            self._lost_why = why
            self._lost.set()
