"""The phone's end of a BLE link: bleak as GATT client (the only transports module importing it).

Connects to a *bonded* PDA by its identity address (BlueZ knows bonded devices
without a scan, even while they advertise behind resolvable private addresses),
finds the simsync service, subscribes to the notify characteristic, sends its HELLO
and returns once the PDA's HELLO came back (``HELLO_TIMEOUT``), then writes chunks
with write commands sized to the negotiated MTU. A lost connection ends
the link with ``TransportClosed`` (``FramingError`` if it cut a frame).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from bleak import BleakClient
from bleak.backends.bluezdbus.manager import get_global_bluez_manager
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from .base import FrameLink, reject_options
from .ble_address import BleAddress
from .ble_frames import (
    ATT_MAX_VALUE,
    NOTIFY_CHAR_UUID,
    SERVICE_UUID,
    WRITE_CHAR_UUID,
)
from .ble_link import HELLO_TIMEOUT, ChunkLink
from .errors import ConnectFailed, FramingError, TransportError, TransportTimeout

__all__ = ["connect_central"]

#: What bleak raises for BlueZ and D-Bus failures (D-Bus errors are BleakError too).
_BLE_ERRORS = (BleakError, EOFError, OSError)


def _device_path(target: BleAddress) -> str:
    assert target.address is not None
    return f"/org/bluez/{target.adapter}/dev_{target.address.replace(':', '_')}"


async def connect_central(
    target: BleAddress, *, max_frame: int, options: Mapping[str, object]
) -> FrameLink:
    """Connect, check the bond, find the service and start a :class:`ChunkLink`."""
    url = target.url
    reject_options(url, options)
    path = _device_path(target)
    try:
        manager = await get_global_bluez_manager()
    except _BLE_ERRORS as exc:
        raise ConnectFailed(url, f"BlueZ is not reachable on the system bus: {exc}") from exc
    if not manager.is_paired(path):
        raise ConnectFailed(
            url,
            f"{target.address} is not bonded with {target.adapter}; pair it first "
            f"(bluetoothctl: `pair {target.address}` then `trust {target.address}`, "
            "see docs/transports.md)",
        )
    holder: list[ChunkLink] = []

    def disconnected(_: BleakClient) -> None:
        if holder:
            holder[0].lost("the PDA disconnected or went out of range")

    client = BleakClient(
        BLEDevice(target.address or "", None, {"path": path, "props": {}}),
        disconnected_callback=disconnected,
        bluez={"adapter": target.adapter},
    )
    try:
        await client.connect()
    except _BLE_ERRORS as exc:
        raise ConnectFailed(url, f"BLE connect failed: {exc}") from exc
    try:
        write_char, notify_char = _characteristics(client, url)

        def chunk_size() -> int:
            return min(write_char.max_write_without_response_size, ATT_MAX_VALUE)

        async def write(data: bytes) -> None:
            await client.write_gatt_char(write_char, data, response=False)

        async def close() -> None:
            # Called even after the PDA dropped us: bleak releases its D-Bus
            # connection only in disconnect().
            with contextlib.suppress(*_BLE_ERRORS):  # already gone: nothing to release
                await client.disconnect()

        link = ChunkLink(
            write,
            chunk_size(),
            url,
            max_frame=max_frame,
            on_close=close,
            chunk_size_now=chunk_size,
        )
        holder.append(link)
        await client.start_notify(notify_char, lambda _, data: link.feed(bytes(data)))
        link.start()
    except BaseException as exc:
        with contextlib.suppress(*_BLE_ERRORS):
            await client.disconnect()
        if isinstance(exc, _BLE_ERRORS):
            raise ConnectFailed(url, f"setting up the BLE link failed: {exc}") from exc
        raise
    try:
        # Connected only once the PDA answered: it took our HELLO and opened a link.
        await link.wait_hello()
    except TransportError as exc:
        await link.close()
        if isinstance(exc, FramingError):
            # Notifications reach every subscriber: another phone's link, not ours.
            raise ConnectFailed(
                url, f"the PDA is serving another phone; sync again when it is done ({exc})"
            ) from exc
        if isinstance(exc, TransportTimeout):
            raise ConnectFailed(
                url,
                f"the PDA did not answer our HELLO within {HELLO_TIMEOUT:g} s: is it serving "
                "another phone, or is `simsync pda serve DIR --listen ble:` not running?",
            ) from exc
        raise ConnectFailed(url, str(exc)) from exc
    except BaseException:
        await link.close()
        raise
    return link


def _characteristics(
    client: BleakClient, url: str
) -> tuple[BleakGATTCharacteristic, BleakGATTCharacteristic]:
    service = client.services.get_service(SERVICE_UUID)
    if service is None:
        raise ConnectFailed(
            url,
            "the device offers no simsync service: is `simsync pda serve DIR --listen ble:` "
            "running on it?",
        )
    write_char = service.get_characteristic(WRITE_CHAR_UUID)
    notify_char = service.get_characteristic(NOTIFY_CHAR_UUID)
    if write_char is None or notify_char is None:
        raise ConnectFailed(url, "the simsync service lacks its write or notify characteristic")
    return write_char, notify_char
