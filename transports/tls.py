"""Mutual TLS 1.3 over any :class:`FrameLink`, with pinned self-signed device identities.

Built on ``ssl.MemoryBIO`` + ``SSLObject`` rather than ``start_tls`` so the same code
runs over memory, TCP, serial and BLE links alike. Each batch of TLS bytes travels as
one frame of the inner link; application frames travel inside TLS with the same
4-byte length prefix as everywhere else.

Trust model (why it is sound with self-signed certificates): before TLS starts, each
side sends its certificate (public data) in a *pairing hello* and both sides send a
verdict. A side whose peer's fingerprint is not paired says so and raises
``PeerRejected``; the other side learns it was refused (``RejectedByPeer``) instead of
hanging. Only if both agree does TLS run, with ``verify_mode=CERT_REQUIRED`` and the
trust store holding *exactly* the one certificate the peer claimed: OpenSSL then
checks that the peer presents that certificate and proves possession of its key
(CertificateVerify), so the hello cannot be used to impersonate anyone. After the
handshake the presented certificate's fingerprint is compared once more. Hostname
checks are off because device ids, not names, identify peers. Cost of the design:
the certificates (hence device ids) are visible to an eavesdropper on the link,
which TLS 1.3 alone would hide; device ids are not secrets in this model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import Iterable

from .base import DEFAULT_MAX_FRAME, FrameLink, check_max_frame
from .errors import (
    FramingError,
    HandshakeFailed,
    HandshakeInterrupted,
    IdentityError,
    PeerRejected,
    RejectedByPeer,
    TlsError,
    TransportClosed,
    TransportError,
    TransportSpecError,
    TransportTimeout,
)
from .framing import FrameDecoder, encode_frame
from .identity import Identity, device_id_of, normalize_device_id

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "PRE_AUTH_MAX_FRAME",
    "RECORD_MAX_FRAME",
    "TlsLink",
    "tls_client",
    "tls_server",
]

#: Pairing + TLS handshake: 3 round trips and ~3 KB; under a second even over BLE or a
#: 115200-baud serial link, so 10 s leaves room for a slow radio and a busy peer while
#: bounding how long a stranger can keep a connection half-open.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0

_HELLO = b"simsync-pair/1 cert:"
_ACCEPT = b"simsync-pair/1 accept"
_REFUSE = b"simsync-pair/1 refuse"
_READY = b"simsync-pair/1 ready"  # first frame inside TLS, from the server
_RECORD = 16384  # plaintext per TLS record (the TLS maximum), so one record per inner frame
_RECORD_OVERHEAD = 256  # TLS 1.3 needs 22 bytes per record; room to spare
#: Largest inner frame before the peer is authenticated (4 KiB): the pairing hello is
#: ~420 bytes (a 20-byte tag and a ~400-byte P-256 certificate) and each TLS handshake
#: flight ~1.5 KB, so a stranger can make us hold no more than this per connection.
PRE_AUTH_MAX_FRAME = 4096
#: Largest inner frame once both sides are authenticated: one TLS record (16 KiB of
#: plaintext, at most 256 bytes of TLS around it); application frames inside TLS keep
#: the caller's ``max_frame`` (1 MiB by default).
RECORD_MAX_FRAME = _RECORD + _RECORD_OVERHEAD
_MIN_INNER_FRAME = PRE_AUTH_MAX_FRAME  # the pairing hello and handshake flights fit one frame


# One context per role, identity and paired peer certificate, kept for the next
# connection: building one (OpenSSL's SSL_CTX, both files read and the key parsed, the
# peer's certificate as the only trust anchor) costs 1-5 ms, on the path of every sync
# of the long-running PDA server and daemon. Only paired peers get here (after the
# pairing check), so strangers cannot fill it. No TLS session is kept or resumed: the
# server issues no tickets, and the client is never given a session to offer.
@functools.lru_cache(maxsize=16)
def _context(server_side: bool, identity: Identity, peer_der: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # peers are named by device id, not by host name
    ctx.verify_mode = ssl.CERT_REQUIRED  # both sides must present a certificate...
    ctx.load_verify_locations(cadata=peer_der)  # ...and it must be the one paired
    if server_side:
        ctx.num_tickets = 0  # no resumption: every connection proves its key afresh
    try:
        ctx.load_cert_chain(identity.cert_path, identity.key_path)
    except (OSError, ssl.SSLError) as exc:
        raise IdentityError(f"cannot load the device identity for TLS: {exc}") from exc
    return ctx


def _allowed_ids(allowed: Iterable[str]) -> frozenset[str]:
    if isinstance(allowed, str):
        raise TransportSpecError("allowed must be a collection of device ids, not one string")
    return frozenset(normalize_device_id(item) for item in allowed)


async def _recv_hs(link: FrameLink, what: str) -> bytes:
    try:
        return await link.recv()
    except TransportClosed as exc:
        raise HandshakeInterrupted(f"{link.peer} closed the link during {what}: {exc}") from exc
    except FramingError as exc:
        raise HandshakeFailed(
            f"{link.peer} sent more than the {PRE_AUTH_MAX_FRAME} bytes a frame may have "
            f"before authentication, during {what}: {exc}"
        ) from exc


async def _send_hs(link: FrameLink, frame: bytes, what: str) -> None:
    try:
        await link.send(frame)
    except TransportClosed as exc:
        raise HandshakeInterrupted(f"{link.peer} closed the link during {what}: {exc}") from exc


async def _pair_check(link: FrameLink, identity: Identity, allowed: frozenset[str]) -> bytes:
    """Exchange certificates and verdicts; return the peer's DER certificate."""
    await _send_hs(link, _HELLO + identity.cert_der, "the pairing hello")
    hello = await _recv_hs(link, "the pairing hello")
    if not hello.startswith(_HELLO):
        raise HandshakeFailed(f"{link.peer} is not a simsync TLS peer (bad pairing hello)")
    peer_der = hello[len(_HELLO) :]
    peer_id = device_id_of(peer_der)
    paired = peer_id in allowed
    if not paired:
        # A pinned fingerprint is the paired certificate itself (SHA-256); only bytes
        # from a stranger are parsed, to tell a malformed certificate from an unpaired one.
        from cryptography import x509

        try:
            x509.load_der_x509_certificate(peer_der)
        except ValueError as exc:
            raise HandshakeFailed(f"{link.peer} sent a malformed certificate: {exc}") from exc
    await _send_hs(link, _ACCEPT if paired else _REFUSE, "the pairing verdicts")
    # Wait for the peer's verdict even when refusing: closing with its verdict unread
    # could make TCP reset the connection and swallow our own refusal on its way.
    try:
        verdict: bytes | None = await link.recv()
    except TransportClosed:
        verdict = None
    if not paired:
        raise PeerRejected(peer_id, link.peer)
    if verdict == _REFUSE:
        raise RejectedByPeer(identity.device_id, link.peer)
    if verdict != _ACCEPT:
        raise HandshakeFailed(f"{link.peer} sent no valid pairing verdict")
    return peer_der


async def _handshake(
    link: FrameLink, identity: Identity, allowed: frozenset[str], server_side: bool, max_frame: int
) -> TlsLink:
    peer_der = await _pair_check(link, identity, allowed)
    peer_id = device_id_of(peer_der)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = _context(server_side, identity, peer_der).wrap_bio(
        incoming, outgoing, server_side=server_side
    )
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                await _send_hs(link, outgoing.read(), "the TLS handshake")
            incoming.write(await _recv_hs(link, "the TLS handshake"))
        except ssl.SSLError as exc:
            if outgoing.pending:  # the alert tells the peer why, instead of a bare close
                with contextlib.suppress(TransportError):
                    await link.send(outgoing.read())
            raise HandshakeFailed(
                f"TLS handshake with {link.peer} failed: {exc.reason or exc}"
            ) from exc
    if outgoing.pending:
        await _send_hs(link, outgoing.read(), "the TLS handshake")
    presented = obj.getpeercert(binary_form=True)
    if presented is None or device_id_of(presented) != peer_id:
        raise PeerRejected(device_id_of(presented) if presented else "(none)", link.peer)
    tls = TlsLink(link, obj, incoming, outgoing, peer_id=peer_id, max_frame=max_frame)
    # A TLS 1.3 client finishes its handshake before the server has checked the
    # client's certificate; the server's READY makes both sides return only once
    # both are satisfied, so a refusal surfaces here and not at the first recv.
    try:
        if server_side:
            await tls.send(_READY)
        elif await tls.recv() != _READY:
            raise HandshakeFailed(f"{link.peer} did not confirm the TLS handshake")
    except (TransportClosed, TlsError) as exc:
        if isinstance(exc, HandshakeFailed):
            raise
        raise HandshakeFailed(f"{link.peer} ended the TLS handshake: {exc}") from exc
    return tls


async def _establish(
    link: FrameLink,
    identity: Identity,
    allowed: Iterable[str],
    *,
    server_side: bool,
    timeout: float | None,  # noqa: ASYNC109 - the public functions' deadline, passed on
    max_frame: int,
) -> TlsLink:
    # Bad arguments are refused before the link is touched (and it stays open).
    allowed_ids = _allowed_ids(allowed)
    check_max_frame(max_frame)
    if link.max_frame < _MIN_INNER_FRAME:
        raise TransportSpecError(
            f"TLS needs an inner link carrying frames of {_MIN_INNER_FRAME} bytes or more; "
            f"{link.peer} allows {link.max_frame}"
        )
    inner_limit = link.max_frame
    # Until the peer has proved who it is, its frames are bounded by what a pairing hello
    # and a handshake flight need (the link checks the length prefix before reading).
    link.max_frame = PRE_AUTH_MAX_FRAME
    try:
        async with asyncio.timeout(timeout):
            tls = await _handshake(link, identity, allowed_ids, server_side, max_frame)
    except TimeoutError as exc:
        await link.close()
        raise TransportTimeout(
            f"TLS handshake with {link.peer} did not finish within {timeout} s"
        ) from exc
    except BaseException:
        # Whoever refused or failed closes the link, so the other side never hangs.
        await link.close()
        raise
    link.max_frame = min(inner_limit, RECORD_MAX_FRAME)
    return tls


async def tls_client(
    link: FrameLink,
    identity: Identity,
    allowed: Iterable[str],
    *,
    timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,  # noqa: ASYNC109 - handshake deadline
    max_frame: int = DEFAULT_MAX_FRAME,
) -> TlsLink:
    """Run the client side of mutual TLS 1.3 over *link*, pinning *allowed* device ids.

    On any failure the inner link is closed and ``PeerRejected`` (peer not paired),
    ``RejectedByPeer`` (we are not paired there), ``HandshakeFailed`` or
    ``TransportTimeout`` is raised.
    """
    return await _establish(
        link, identity, allowed, server_side=False, timeout=timeout, max_frame=max_frame
    )


async def tls_server(
    link: FrameLink,
    identity: Identity,
    allowed: Iterable[str],
    *,
    timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,  # noqa: ASYNC109 - handshake deadline
    max_frame: int = DEFAULT_MAX_FRAME,
) -> TlsLink:
    """Run the server side of mutual TLS 1.3 over *link*; see :func:`tls_client`."""
    return await _establish(
        link, identity, allowed, server_side=True, timeout=timeout, max_frame=max_frame
    )


class TlsLink(FrameLink):
    """A :class:`FrameLink` protected by TLS; made by :func:`tls_client`/:func:`tls_server`."""

    def __init__(
        self,
        link: FrameLink,
        obj: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        *,
        peer_id: str,
        max_frame: int,
    ) -> None:
        self.peer = f"{link.peer} [device {peer_id}]"
        #: The peer's verified device id (certificate fingerprint).
        self.peer_id = peer_id
        self.max_frame = max_frame
        self._link = link
        self._obj = obj
        self._incoming = incoming
        self._outgoing = outgoing
        self._decoder = FrameDecoder(max_frame)
        self._send_lock = asyncio.Lock()
        self._recv_lock = asyncio.Lock()
        self._closed = False
        self._ended: TransportError | None = None  # sticky end state of recv

    @property
    def tls_version(self) -> str:
        """The negotiated protocol version (always ``"TLSv1.3"``)."""
        return self._obj.version() or "unknown"

    async def _flush(self) -> None:
        # Callers hold _send_lock: TLS records must reach the link in BIO order.
        if self._outgoing.pending:
            await self._link.send(self._outgoing.read())

    async def send(self, frame: bytes) -> None:
        """Encrypt and send one frame (one inner frame per TLS record)."""
        data = encode_frame(frame, self.max_frame)
        if self._closed:
            raise TransportClosed(f"link to {self.peer} is closed")
        async with self._send_lock:
            view = memoryview(data)
            # From the inner link's current limit: it is lowered until authentication.
            chunk = min(_RECORD, self._link.max_frame - _RECORD_OVERHEAD)
            for start in range(0, len(data), chunk):
                try:
                    self._obj.write(view[start : start + chunk])
                except ssl.SSLError as exc:
                    raise TlsError(f"TLS write to {self.peer} failed: {exc.reason or exc}") from exc
                await self._flush()

    async def recv(self) -> bytes:
        """Receive and decrypt the next frame."""
        async with self._recv_lock:
            while True:
                if self._ended is not None:
                    raise self._ended
                if self._closed:
                    raise TransportClosed(f"link to {self.peer} is closed")
                try:
                    frame = self._decoder.next_frame()
                except FramingError as exc:
                    self._ended = exc
                    raise
                if frame is not None:
                    return frame
                await self._pump()

    async def _pump(self) -> None:
        """Move decrypted bytes into the decoder, reading one inner frame if needed."""
        try:
            data = self._obj.read(65536)
        except ssl.SSLWantReadError:
            if self._outgoing.pending:  # e.g. a KeyUpdate answer
                async with self._send_lock:
                    await self._flush()
            try:
                record = await self._link.recv()
            except TransportClosed as exc:
                if self._closed:
                    raise
                # Keep the inner link's reason: "line dropped" is not "peer closed".
                self._end(TransportClosed(f"link ended without a TLS close_notify: {exc}"))
                return
            self._incoming.write(record)
            return
        except ssl.SSLZeroReturnError:
            data = b""
        except ssl.SSLError as exc:
            self._ended = TlsError(f"TLS stream from {self.peer} broke: {exc.reason or exc}")
            # Tampered or broken stream: drop the link so the peer fails too, not hangs.
            await self._link.close()
            return
        if data:
            self._decoder.feed(data)
        else:
            self._end(TransportClosed(f"{self.peer} closed the link"))

    def _end(self, closed: TransportClosed) -> None:
        try:
            self._decoder.check_eof()
        except FramingError as exc:
            self._ended = exc
            return
        self._ended = closed

    async def close(self) -> None:
        """Send a TLS close_notify (if the link is free) and close the inner link."""
        if self._closed:
            return
        self._closed = True
        if not self._send_lock.locked():
            # unwrap() then wants the peer's close_notify too; we do not wait for it.
            with contextlib.suppress(ssl.SSLError):
                self._obj.unwrap()
            # The peer may be gone already; closing is all that is left then.
            with contextlib.suppress(TransportError):
                async with self._send_lock:
                    await self._flush()
        await self._link.close()
