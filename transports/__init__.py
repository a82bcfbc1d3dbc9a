"""Links chosen by URL scheme, framing, and the TLS layer that runs over any of them.

Scheme drivers (``transports.memory``, ``transports.tcp``) are imported lazily by
:func:`open_transport` / :func:`listen`; importing this package does not load them.
"""

from .base import DEFAULT_MAX_FRAME, FrameLink, Listener, TransportDriver
from .errors import (
    BadDeviceId,
    ConnectFailed,
    FramingError,
    HandshakeFailed,
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
from .framing import FrameDecoder, StreamFrameLink, encode_frame
from .identity import Identity, device_id_of, normalize_device_id
from .registry import TRANSPORTS, check_address, listen, open_transport, register_transport
from .tls import TlsLink, tls_client, tls_server

__all__ = [
    "DEFAULT_MAX_FRAME",
    "TRANSPORTS",
    "BadDeviceId",
    "ConnectFailed",
    "FrameDecoder",
    "FrameLink",
    "FramingError",
    "HandshakeFailed",
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
