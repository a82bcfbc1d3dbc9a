"""The transports room's error tree: one root, subclasses by phase and by whose fault.

Foreign errors (``OSError``, ``ssl.SSLError``, ``TimeoutError``) are translated at the
edge with ``raise ... from exc`` so callers only ever catch :class:`TransportError`.
"""

from __future__ import annotations

__all__ = [
    "BadDeviceId",
    "ConnectFailed",
    "FramingError",
    "HandshakeFailed",
    "HandshakeInterrupted",
    "IdentityError",
    "ListenFailed",
    "PeerRejected",
    "RejectedByPeer",
    "TlsError",
    "TransportClosed",
    "TransportError",
    "TransportSpecError",
    "TransportTimeout",
]


class TransportError(Exception):
    """Root of every error raised by :mod:`transports`."""


class TransportSpecError(TransportError, ValueError):
    """A transport URL or option is malformed or names an unknown scheme (caller's fault)."""


class ConnectFailed(TransportError):  # noqa: N818 - the agreed interface names
    """The peer at a URL could not be reached; the message names the URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot connect to {url}: {reason}")
        self.url = url
        self.reason = reason


class ListenFailed(TransportError):  # noqa: N818 - the agreed interface names
    """A listener could not be opened (address in use, name taken, permission...)."""


class TransportClosed(TransportError):  # noqa: N818 - the agreed interface names
    """The link is closed: the peer closed it cleanly, or this side already did."""


class FramingError(TransportError):
    """The byte stream does not hold a well-formed frame (oversized or truncated)."""


class TransportTimeout(TransportError):  # noqa: N818 - the agreed interface names
    """A connect or a handshake did not finish within its time limit."""


class TlsError(TransportError):
    """Root of the TLS layer's errors."""


class PeerRejected(TlsError):  # noqa: N818 - the agreed interface names
    """This side refused the peer: its device id is not among the paired ones."""

    def __init__(self, fingerprint: str, peer: str) -> None:
        super().__init__(
            f"refused {peer}: its device id {fingerprint} is not paired; "
            f"pair it first (add {fingerprint} to the allowed device ids) if you trust it"
        )
        self.fingerprint = fingerprint
        self.peer = peer


class HandshakeFailed(TlsError):  # noqa: N818 - the agreed interface names
    """The TLS handshake (or the pairing exchange before it) failed."""


class HandshakeInterrupted(HandshakeFailed, TransportClosed):
    """The link ended during the handshake (peer gone, radio dropped): a lost link, retry."""


class RejectedByPeer(HandshakeFailed):
    """The peer refused this side: our device id is not paired on the peer."""

    def __init__(self, own_fingerprint: str, peer: str) -> None:
        super().__init__(
            f"{peer} rejected us: our device id {own_fingerprint} is not paired there; "
            f"pair it on the peer first"
        )
        self.own_fingerprint = own_fingerprint
        self.peer = peer


class IdentityError(TlsError):
    """A device identity (certificate + key) could not be created or loaded."""


class BadDeviceId(IdentityError, ValueError):  # noqa: N818 - the agreed interface names
    """A device id string is malformed (caller's fault)."""
