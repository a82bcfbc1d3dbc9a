"""simsync's GATT framing on a real BLE stack: bumble's virtual controllers on a LocalLink.

The central writes chunks with ATT Write Command to the write characteristic and
receives notifications; the peripheral serves the simsync service. Both ends run
:class:`transports.ble_link.ChunkLink`, the same driver the bleak and D-Bus links
use, so what passes here is the framing and flow control over real ATT PDUs,
MTU exchange and LL disconnects. Also used by ``bench/ble.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bumble.core import UUID
from bumble.device import Connection, Device, Peer
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.testing.test_utils import TwoDevices

from transports.base import DEFAULT_MAX_FRAME
from transports.ble_frames import (
    NOTIFY_CHAR_UUID,
    SERVICE_UUID,
    WRITE_CHAR_UUID,
    chunk_size_for_mtu,
)
from transports.ble_link import ChunkLink


@dataclass
class BumbleRig:
    """Two connected bumble devices: ``central`` (index 0) and ``peripheral`` (index 1)."""

    devices: TwoDevices
    notify_char: Characteristic[bytes]
    accepted: asyncio.Queue[ChunkLink] = field(default_factory=asyncio.Queue)
    links: list[ChunkLink] = field(default_factory=list)
    #: Chunks the peripheral has received (for "drop after N chunks" tests).
    peripheral_chunks: int = 0
    drop_after: int | None = None
    mtu: int = 23
    #: max_frame of the peripheral's links, and the largest unread backlog they held.
    peripheral_max_frame: int = DEFAULT_MAX_FRAME
    max_backlog: int = 0
    backlog_over_limit: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def central_connection(self) -> Connection:
        return self.devices.connections[0]

    @property
    def peripheral_connection(self) -> Connection:
        return self.devices.connections[1]

    def _on_write(self, connection: Connection, value: bytes) -> None:
        if getattr(connection, "simsync_dropping", False):
            return  # the radio is gone: nothing more arrives
        self.peripheral_chunks += 1
        if self.drop_after is not None and self.peripheral_chunks > self.drop_after:
            self.drop_after = None
            connection.simsync_dropping = True  # type: ignore[attr-defined]
            self._tasks.add(asyncio.get_running_loop().create_task(connection.disconnect()))
            return
        link = getattr(connection, "simsync_link", None)
        if link is None:
            # The central's first chunk (its HELLO, written after it subscribed) opens
            # the link: only now can our own HELLO notification reach it.
            device: Device = self.devices[1]
            notify = self.notify_char

            async def write(chunk: bytes) -> None:
                await device.notify_subscriber(connection, notify, chunk)

            link = ChunkLink(
                write,
                chunk_size_for_mtu(connection.att_mtu),
                "bumble central",
                max_frame=self.peripheral_max_frame,
            )
            connection.simsync_link = link  # type: ignore[attr-defined]
            connection.on(connection.EVENT_DISCONNECTION, lambda *_: link.lost("LL disconnect"))
            self.links.append(link)
            link.feed(value)
            link.start()
            self.accepted.put_nowait(link)
            return
        link.feed(value)
        self.max_backlog = max(self.max_backlog, link.channel.unread_bytes)
        if link.channel.unread_bytes > self.peripheral_max_frame:
            self.backlog_over_limit.set()

    async def open_central(self) -> ChunkLink:
        """Discover the service, agree the MTU, subscribe, and start the central's link."""
        connection = self.central_connection
        peer = Peer(connection)
        if self.mtu > 23:
            await peer.request_mtu(self.mtu)
        await peer.discover_services([UUID(SERVICE_UUID)])
        await peer.discover_characteristics()
        (write_char,) = peer.get_characteristics_by_uuid(UUID(WRITE_CHAR_UUID))
        (notify_char,) = peer.get_characteristics_by_uuid(UUID(NOTIFY_CHAR_UUID))

        async def write(chunk: bytes) -> None:
            await peer.write_value(write_char, chunk, with_response=False)

        async def disconnect() -> None:
            if connection.handle in self.devices[0].connections:
                await connection.disconnect()

        link = ChunkLink(
            write,
            chunk_size_for_mtu(connection.att_mtu),
            "bumble peripheral",
            on_close=disconnect,
        )
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: link.lost("LL disconnect"))
        await peer.subscribe(notify_char, link.feed)
        self.links.append(link)
        link.start()
        return link

    async def close(self) -> None:
        """Close every link and power both devices off."""
        for link in self.links:
            await link.close()
        for task in self._tasks:
            await task
        for device in self.devices.devices:
            await device.power_off()


async def bumble_rig(mtu: int = 23) -> BumbleRig:
    """Two virtual controllers, the simsync service on the peripheral, connected."""
    devices = TwoDevices()
    if mtu > 23:
        # A large MTU goes with LE Data Length Extension (251-byte LL payloads), as on
        # any phone made since 2016; without it each ATT PDU crosses in 27-byte pieces.
        for controller in devices.controllers:
            controller.le_acl_data_packet_length = 251
    holder: list[BumbleRig] = []

    def on_write(connection: Connection, value: Any) -> None:
        holder[0]._on_write(connection, bytes(value))

    write_char: Characteristic[bytes] = Characteristic(
        WRITE_CHAR_UUID,
        Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
        Characteristic.WRITEABLE,
        CharacteristicValue(write=on_write),
    )
    notify_char: Characteristic[bytes] = Characteristic(
        NOTIFY_CHAR_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
    )
    devices[1].add_service(Service(SERVICE_UUID, [write_char, notify_char]))
    # The peripheral's server offers the largest MTU; the central asks for what it wants.
    devices[1].gatt_server.max_mtu = 517
    rig = BumbleRig(devices, notify_char, mtu=mtu)
    holder.append(rig)
    await devices.setup_connection()
    return rig


async def connected_pair(rig: BumbleRig) -> tuple[ChunkLink, ChunkLink]:
    """Open the central's link and wait for the peripheral to accept it."""
    central = await rig.open_central()
    peripheral = await rig.accepted.get()
    return central, peripheral
