"""``ble://AA:BB:CC:DD:EE:FF`` (phone, GATT client) and ``ble:`` (PDA, GATT server).

The URL module the registry loads: it parses and checks URLs and imports the
Bluetooth code only when a link is opened, so ``check_address`` costs nothing and
the phone never loads dbus-fast's server side, nor the PDA bleak:

- connect: :mod:`transports.ble_central` (bleak, BlueZ on Linux);
- listen: :mod:`transports.ble_peripheral` (BlueZ's D-Bus GATT API over dbus-fast).

Both take ``?adapter=hciN`` (default ``hci0``).
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import FrameLink, Listener, TransportDriver
from .ble_address import BleAddress, parse_ble_listen_url, parse_ble_url

__all__ = ["DRIVER", "BleAddress", "connect", "listen", "parse_ble_listen_url", "parse_ble_url"]


async def connect(url: str, *, max_frame: int, options: Mapping[str, object]) -> FrameLink:
    """Driver entry: connect to the PDA at ``ble://ADDRESS`` (bleak)."""
    target = parse_ble_url(url)
    from .ble_central import connect_central

    return await connect_central(target, max_frame=max_frame, options=options)


async def listen(url: str, *, max_frame: int, options: Mapping[str, object]) -> Listener:
    """Driver entry: serve the simsync GATT service and advertise it (BlueZ D-Bus)."""
    target = parse_ble_listen_url(url)
    from .ble_peripheral import serve_peripheral

    return await serve_peripheral(target, max_frame=max_frame, options=options)


#: The registry's entry point for this scheme.
DRIVER = TransportDriver(connect=connect, listen=listen, check=parse_ble_url)
