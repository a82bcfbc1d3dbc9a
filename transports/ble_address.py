"""BLE URLs: ``ble://AA:BB:CC:DD:EE:FF[?adapter=hciN]`` to connect, ``ble:[?...]`` to listen.

Plain parsing, no Bluetooth library: the driver (:mod:`transports.ble`) and both
link ends import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TransportSpecError

__all__ = ["DEFAULT_ADAPTER", "BleAddress", "parse_ble_listen_url", "parse_ble_url"]

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
