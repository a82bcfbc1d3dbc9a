"""``ble://AA:BB:CC:DD:EE:FF`` (phone, GATT client) and ``ble:`` (PDA, GATT server).

The URL module the registry loads: it parses and checks URLs and imports the
Bluetooth code only when a link is opened, so ``check_address`` costs nothing and
the phone never loads dbus-fast's server side, nor the PDA bleak:

- connect: :mod:`transports.ble_central` (bleak, BlueZ on Linux);
- listen: :mod:`transports.ble_peripheral` (BlueZ's D-Bus GATT API over dbus-fast).

Both take ``?adapter=hciN`` (default ``hci0``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .base import FrameLink, Listener, TransportDriver
from .errors import TransportSpecError

__all__ = ["DRIVER", "BleAddress", "connect", "listen", "parse_ble_listen_url", "parse_ble_url"]

DEFAULT_ADAPTER = "hci0"
_ADDRESS = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){5}")
_ADAPTER = re.compile(r"hci[0-9]{1,3}")


@dataclass(frozen=True)
class BleAddress:
    """A parsed BLE URL: the peer's address (None when listening) and our adapter."""

    address: str | None
    adapter: str = DEFAULT_ADAPTER

    @property
    def url(self) -> str:
        """The canonical URL."""
        query = "" if self.adapter == DEFAULT_ADAPTER else f"?adapter={self.adapter}"
        return f"ble://{self.address}{query}" if self.address else f"ble:{query}"


def _adapter(url: str, query: str) -> str:
    if not query:
        return DEFAULT_ADAPTER
    key, sep, value = query.partition("=")
    if key != "adapter" or not sep or "&" in value:
        raise TransportSpecError(f"bad ble URL {url!r}: the only option is ?adapter=hciN")
    if not _ADAPTER.fullmatch(value):
        raise TransportSpecError(f"bad ble URL {url!r}: adapter must look like hci0, not {value!r}")
    return value


def parse_ble_url(url: str) -> BleAddress:
    """Parse ``ble://AA:BB:CC:DD:EE:FF[?adapter=hciN]`` (the PDA's identity address)."""
    if not isinstance(url, str) or not url.startswith("ble://"):
        raise TransportSpecError(
            f"not a ble URL to connect to: {url!r} (expected ble://AA:BB:CC:DD:EE:FF)"
        )
    rest, _, query = url[len("ble://") :].partition("?")
    address = rest.upper()
    if not _ADDRESS.fullmatch(address):
        raise TransportSpecError(
            f"bad ble URL {url!r}: {rest!r} is not a Bluetooth address (AA:BB:CC:DD:EE:FF); "
            "use the PDA's identity address as `bluetoothctl devices Paired` lists it"
        )
    return BleAddress(address, _adapter(url, query))


def parse_ble_listen_url(url: str) -> BleAddress:
    """Parse ``ble:[?adapter=hciN]``: serve on that adapter."""
    if not isinstance(url, str) or not url.startswith("ble:"):
        raise TransportSpecError(f"not a ble URL: {url!r} (expected ble: or ble:?adapter=hci0)")
    rest, _, query = url[len("ble:") :].partition("?")
    if rest:
        raise TransportSpecError(
            f"bad ble listen URL {url!r}: listen on ble: (or ble:?adapter=hciN); "
            "the address phones connect to is the adapter's own"
        )
    return BleAddress(None, _adapter(url, query))


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
