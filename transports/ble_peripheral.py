"""The PDA's end of a BLE link: a GATT application and an advertisement on BlueZ's D-Bus API.

dbus-fast (which bleak brings along) exports the simsync service with its two
characteristics and registers it with ``GattManager1.RegisterApplication``; an
``LEAdvertisement1`` carrying the service UUID goes to
``LEAdvertisingManager1.RegisterAdvertisement`` so phones notice the PDA coming
near. The characteristics demand an encrypted link (``encrypt-write``,
``encrypt-notify``), so BlueZ itself refuses a phone that is not bonded.

A phone's link starts with its HELLO chunk (written after it subscribed to
notifications, so our HELLO can reach it). Notifications go to every subscribed
central — BlueZ's D-Bus API cannot address one — so one phone is served at a
time; another phone's chunks are ignored until the current link ends.

bluetoothd forgets every application and advertisement when it restarts: the
listener watches ``org.bluez`` on the bus (``NameOwnerChanged``), ends the current
link when bluetoothd goes away, and registers both again, with backoff, once it is
back and has our adapter. Closing the listener disconnects the phones that wrote
to it, so none waits on a PDA that stopped serving.
"""

# No `from __future__ import annotations`: dbus-fast reads the D-Bus signatures from
# the evaluated annotations, and "None" as a string is not a signature it knows.
import asyncio
import contextlib
import itertools
from collections.abc import Mapping
from typing import Annotated, Any

import structlog
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBytes, DBusDict, DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from .base import Listener, QueueListener, reject_options
from .ble_address import BleAddress
from .ble_frames import (
    NOTIFY_CHAR_UUID,
    SERVICE_UUID,
    WRITE_CHAR_UUID,
    Kind,
    chunk_size_for_mtu,
)
from .ble_link import ChunkLink
from .bluez import BLUEZ, BLUEZ_OWNER_RULE, add_match
from .errors import ListenFailed, TransportClosed

__all__ = ["BlePeripheralListener", "serve_peripheral"]

log = structlog.get_logger("simsync.transports.ble")

_REGISTER_RETRY_MAX = 2.0  # seconds between tries to register with a returning bluetoothd
_paths = itertools.count()
DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusPath = Annotated[str, DBusSignature("o")]


class _Service(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.bluez.GattService1")

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> Annotated[str, DBusSignature("s")]:  # noqa: N802 - BlueZ's name
        return SERVICE_UUID

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> Annotated[bool, DBusSignature("b")]:  # noqa: N802 - BlueZ's name
        return True


class _Characteristic(ServiceInterface):
    def __init__(
        self, uuid: str, service: str, flags: list[str], listener: "BlePeripheralListener"
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._uuid = uuid
        self._service = service
        self._flags = flags
        self._listener = listener
        self.value = b""
        self.notifying = False

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> Annotated[str, DBusSignature("s")]:  # noqa: N802 - BlueZ's name
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusPath:  # noqa: N802 - BlueZ's name
        return self._service

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:  # noqa: N802 - BlueZ's name
        return self._flags

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:  # noqa: N802 - BlueZ's name
        return self.value

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:  # noqa: N802
        """A phone wrote a chunk."""
        self._listener._on_write(bytes(value), options)

    @dbus_method()
    def StartNotify(self) -> None:  # noqa: N802 - BlueZ's name
        """A phone subscribed."""
        self.notifying = True

    @dbus_method()
    def StopNotify(self) -> None:  # noqa: N802 - BlueZ's name
        """The phone unsubscribed (BlueZ calls this when it disconnects, too)."""
        self.notifying = False
        self._listener._lost("the phone unsubscribed from notifications")

    def notify(self, chunk: bytes) -> None:
        if not self.notifying:
            raise TransportClosed("the phone is not subscribed to notifications")
        self.value = chunk
        self.emit_properties_changed({"Value": chunk})


class _Advertisement(ServiceInterface):
    def __init__(self, name: str) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self._name = name

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> Annotated[str, DBusSignature("s")]:  # noqa: N802 - BlueZ's name
        return "peripheral"

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:  # noqa: N802 - BlueZ's name
        return [SERVICE_UUID]

    @dbus_property(access=PropertyAccess.READ)
    def LocalName(self) -> Annotated[str, DBusSignature("s")]:  # noqa: N802 - BlueZ's name
        return self._name

    @dbus_method()
    def Release(self) -> None:  # noqa: N802 - BlueZ's name
        """BlueZ dropped the advertisement (adapter reset); nothing to free."""


class BlePeripheralListener(QueueListener):
    """Serves the simsync GATT service on one adapter; each phone's HELLO is one link."""

    def __init__(self, bus: MessageBus, target: BleAddress, url: str, max_frame: int) -> None:
        super().__init__(url)
        self._bus = bus
        self._adapter_path = f"/org/bluez/{target.adapter}"
        self._max_frame = max_frame
        self._root = f"/org/simsync/ble{next(_paths)}"
        self._service_path = f"{self._root}/service0"
        self.write_char = _Characteristic(
            WRITE_CHAR_UUID,
            self._service_path,
            ["write-without-response", "encrypt-write"],
            self,
        )
        self.notify_char = _Characteristic(
            NOTIFY_CHAR_UUID, self._service_path, ["notify", "encrypt-notify"], self
        )
        self._link: ChunkLink | None = None
        self._link_device: str | None = None
        self._registered: list[tuple[str, str, str]] = []  # (iface, unregister member, path)
        self._ready = asyncio.Event()  # registered with the running bluetoothd
        self._phones: set[str] = set()  # devices that wrote to us: disconnected on close
        self._reregister_task: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        bus = self._bus
        bus.export(self._service_path, _Service())
        bus.export(f"{self._service_path}/char0", self.write_char)
        bus.export(f"{self._service_path}/char1", self.notify_char)
        bus.export(f"{self._root}/adv", _Advertisement("simsync"))
        bus.add_message_handler(self._on_signal)
        await self._register()

    async def _register(self) -> None:
        """Register the application, then the advertisement (each once per bluetoothd)."""
        steps = [
            ("org.bluez.GattManager1", "RegisterApplication", "UnregisterApplication", self._root),
            (
                "org.bluez.LEAdvertisingManager1",
                "RegisterAdvertisement",
                "UnregisterAdvertisement",
                f"{self._root}/adv",
            ),
        ]
        for interface, member, undo, path in steps:
            if (interface, undo, path) not in self._registered:
                await self._bluez(interface, member, path)
                self._registered.append((interface, undo, path))
        self._ready.set()

    async def wait_registered(self) -> None:
        """Return once the service and advertisement are registered with bluetoothd."""
        await self._ready.wait()

    async def _bluez(self, interface: str, member: str, path: str) -> None:
        with_options = member.startswith("Register")
        reply = await self._bus.call(
            Message(
                destination=BLUEZ,
                path=self._adapter_path,
                interface=interface,
                member=member,
                signature="oa{sv}" if with_options else "o",
                body=[path, {}] if with_options else [path],
            )
        )
        if reply is None or reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply is not None and reply.body else "no reply"
            error = reply.error_name if reply is not None else "?"
            raise ListenFailed(f"BlueZ refused {member} on {self._adapter_path}: {error}: {detail}")

    # -- from the phone ------------------------------------------------------------

    def _on_write(self, chunk: bytes, options: Mapping[str, Variant]) -> None:
        device = str(options["device"].value) if "device" in options else "phone"
        mtu = int(options["mtu"].value) if "mtu" in options else 23
        if "device" in options:
            self._phones.add(device)
        link = self._link
        is_hello = bool(chunk) and chunk[0] >> 5 == Kind.HELLO
        if link is not None and not link.ended and device != self._link_device:
            log.warning("second phone ignored while one is syncing", device=device)
            return
        if not is_hello and (link is None or link.ended):
            # The tail of a link that has ended (the phone's CLOSE or credits crossing
            # our own CLOSE): only a HELLO opens a link.
            return
        if link is None or link.ended or is_hello:
            if link is not None and not link.ended:
                link.lost("the phone started a new link")
            if self._closed:
                return
            link = self._new_link(device, mtu)
            link.feed(chunk)
            link.start()
            self._deliver(link)
            return
        if chunk_size_for_mtu(mtu) != link.channel.chunk_size:
            link.set_chunk_size(chunk_size_for_mtu(mtu))
        link.feed(chunk)

    def _new_link(self, device: str, mtu: int) -> ChunkLink:
        notify = self.notify_char

        async def write(chunk: bytes) -> None:
            notify.notify(chunk)

        link = ChunkLink(write, chunk_size_for_mtu(mtu), device, max_frame=self._max_frame)
        self._link, self._link_device = link, device
        return link

    def _lost(self, reason: str) -> None:
        if self._link is not None:
            self._link.lost(reason)

    def _on_signal(self, msg: Message) -> None:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.sender == "org.freedesktop.DBus"
            and msg.body[0] == BLUEZ
        ):
            self._bluez_owner_changed(old=msg.body[1], new=msg.body[2])
            return
        # BlueZ tells us a phone went away by its device's Connected turning false.
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "PropertiesChanged"
            and msg.path == self._link_device
            and msg.body[0] == "org.bluez.Device1"
        ):
            connected = msg.body[1].get("Connected")
            if connected is not None and not connected.value:
                self._lost("the phone disconnected or went out of range")

    def _bluez_owner_changed(self, old: str, new: str) -> None:
        if self._closed:
            return
        if old:
            # bluetoothd stopped or crashed: it forgot our application and advertisement.
            self._registered.clear()
            self._ready.clear()
            self._phones.clear()
            self._lost("bluetoothd went away")
            log.warning("ble: bluetoothd went away; will register again when it returns")
        if new and (self._reregister_task is None or self._reregister_task.done()):
            self._reregister_task = asyncio.create_task(
                self._reregister(), name=f"ble register {self.url}"
            )

    async def _reregister(self) -> None:
        # A returning bluetoothd owns its name before it has set up our adapter: retry.
        delay = 0.1
        while not self._closed:
            try:
                await self._register()
            except (ListenFailed, DBusError, OSError, EOFError) as exc:
                log.info("ble: bluetoothd is back, cannot register yet", error=str(exc))
                await asyncio.sleep(delay)  # backoff between tries, nothing to await instead
                delay = min(delay * 2, _REGISTER_RETRY_MAX)
                continue
            log.info("ble: registered again with bluetoothd", url=self.url)
            return

    async def _watch(self) -> None:
        rules = [
            f"type='signal',sender='{BLUEZ}',interface='org.freedesktop.DBus.Properties',"
            "member='PropertiesChanged',arg0='org.bluez.Device1'",
            BLUEZ_OWNER_RULE,
        ]
        for rule in rules:
            await self._bus.call(add_match(rule))

    async def close(self) -> None:
        """Withdraw the advertisement and the service, end the links, disconnect phones."""
        if self._closed:
            return
        self._closed = True
        task = self._reregister_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._link is not None:
            await self._link.close()
        for interface, member, path in reversed(self._registered):
            # BlueZ went away first: nothing is left registered.
            with contextlib.suppress(ListenFailed, DBusError, OSError, EOFError):
                await self._bluez(interface, member, path)
        await self._close_pending()
        for device in sorted(self._phones):
            # A phone whose HELLO crossed our close would otherwise wait for an answer.
            with contextlib.suppress(DBusError, OSError, EOFError):
                await self._bus.call(
                    Message(
                        destination=BLUEZ,
                        path=device,
                        interface="org.bluez.Device1",
                        member="Disconnect",
                    )
                )
        self._bus.disconnect()
        await self._bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


async def serve_peripheral(
    target: BleAddress, *, max_frame: int, options: Mapping[str, object]
) -> Listener:
    """Register the simsync GATT service and advertisement on the adapter; the listener."""
    url = target.url
    reject_options(url, options)
    try:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    except (OSError, EOFError, DBusError, ValueError) as exc:
        raise ListenFailed(f"cannot listen on {url}: no system D-Bus ({exc})") from exc
    try:
        address = await _adapter_address(bus, target)
        listener = BlePeripheralListener(bus, target, f"ble://{address}", max_frame)
        await listener._watch()
        await listener._start()
    except BaseException:
        bus.disconnect()
        await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        raise
    log.info("ble peripheral ready", adapter=target.adapter, address=address)
    return listener


async def _adapter_address(bus: MessageBus, target: BleAddress) -> str:
    reply = await bus.call(
        Message(
            destination=BLUEZ,
            path=f"/org/bluez/{target.adapter}",
            interface="org.freedesktop.DBus.Properties",
            member="Get",
            signature="ss",
            body=["org.bluez.Adapter1", "Address"],
        )
    )
    if reply is None or reply.message_type == MessageType.ERROR:
        detail: Any = reply.body if reply is not None else "no reply"
        raise ListenFailed(
            f"cannot listen on {target.url}: no Bluetooth adapter {target.adapter} "
            f"(is bluetoothd running and the adapter powered?): {detail}"
        )
    return str(reply.body[0].value).upper()
