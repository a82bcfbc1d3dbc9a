"""Links chosen by URL scheme, framing, and the TLS layer that runs over any of them.

Scheme drivers (``transports.memory``, ``transports.tcp``, ``transports.serial``,
``transports.ble``) are imported lazily by :func:`open_transport` / :func:`listen`;
importing this package does not load them (nor bleak, nor dbus-fast).
Nor does it load asyncio, ssl or cryptography: every name but the errors comes from
its module on first use (PEP 562), so a config check or ``--help`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BadDeviceId,
    ConnectFailed,
    FramingError,
    HandshakeFailed,
    HandshakeInterrupted,
    IdentityError,
    ListenFailed,
    PeerRejected,
    RejectedByPeer,
    TlsError,
    TransportClosed,
    TransportError,
    TransportSpecError,
    TransportTimeout,
)

if TYPE_CHECKING:
    from .base import DEFAULT_MAX_FRAME, FrameLink, Listener, TransportDriver
    from .framing import FrameDecoder, StreamFrameLink, encode_frame
    from .identity import Identity, device_id_of, normalize_device_id
    from .registry import TRANSPORTS, check_address, listen, open_transport, register_transport
    from .tls import TlsLink, tls_client, tls_server

#: name -> the module that defines it, imported when the name is first asked for.
_LAZY = {
    "DEFAULT_MAX_FRAME": "transports.base",
    "FrameLink": "transports.base",
    "Listener": "transports.base",
    "TransportDriver": "transports.base",
    "FrameDecoder": "transports.framing",
    "StreamFrameLink": "transports.framing",
    "encode_frame": "transports.framing",
    "Identity": "transports.identity",
    "device_id_of": "transports.identity",
    "normalize_device_id": "transports.identity",
    "TRANSPORTS": "transports.registry",
    "check_address": "transports.registry",
    "listen": "transports.registry",
    "open_transport": "transports.registry",
    "register_transport": "transports.registry",
    "TlsLink": "transports.tls",
    "tls_client": "transports.tls",
    "tls_server": "transports.tls",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'transports' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups never come back here
    return value


__all__ = [
    "DEFAULT_MAX_FRAME",
    "TRANSPORTS",
    "BadDeviceId",
    "ConnectFailed",
    "FrameDecoder",
    "FrameLink",
    "FramingError",
    "HandshakeFailed",
    "HandshakeInterrupted",
    "Identity",
    "IdentityError",
    "ListenFailed",
    "Listener",
    "PeerRejected",
    "RejectedByPeer",
    "StreamFrameLink",
    "TlsError",
    "TlsLink",
    "TransportClosed",
    "TransportDriver",
    "TransportError",
    "TransportSpecError",
    "TransportTimeout",
    "check_address",
    "device_id_of",
    "encode_frame",
    "listen",
    "normalize_device_id",
    "open_transport",
    "register_transport",
    "tls_client",
    "tls_server",
]
