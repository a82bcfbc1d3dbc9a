"""The PDA as a running peer: its directory, its identity, who may sync, and the server.

A PDA directory holds::

    DIR/identity/        TLS key pair; the device id is the certificate's SHA-256
    DIR/contacts/        the address book: a vdir, one .vcf per contact
    DIR/state.sqlite     per card: anchors (last, pending), map record <-> uid
    DIR/allowed          device ids of paired phones, one per line ('#' comments)

The server accepts a phone over any transport, runs mutual TLS pinned to the
allowed ids, then one `SyncEngine` session; one sync at a time per directory.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from cardio.codecs import card_name
from transports import (
    FrameLink,
    Listener,
    PeerRejected,
    TransportClosed,
    TransportError,
    listen,
    tls_server,
)

from .cardstate import CardStateDB
from .directory import PdaDir, PdaDirError
from .engine import NameFits, SyncEngine
from .vdir import FULL_SCAN_EVERY, VdirStore

__all__ = ["PdaDir", "PdaDirError", "PdaServer"]

log = structlog.get_logger(__name__)

# Longest silence accepted from a phone between two messages (its card work included).
MESSAGE_TIMEOUT = 120.0
# Connections still in the pairing/TLS handshake at once; more are closed on arrival.
# A PDA serves a handful of paired phones, one connection per sync: 16 leaves room for
# retries and a phone reconnecting while its old connection times out, while strangers
# can hold at most 16 x (one 4 KiB pre-authentication frame + buffers), well under 2 MB,
# each for at most the handshake time-out (transports.DEFAULT_HANDSHAKE_TIMEOUT, 10 s).
MAX_UNAUTHENTICATED = 16


class PdaServer:
    """Serves syncs for one PDA directory on one listening URL."""

    def __init__(
        self, directory: PdaDir, *, watch: bool = True, full_scan_every: float = FULL_SCAN_EVERY
    ) -> None:
        self.dir = directory
        self.identity = directory.identity()
        # `watch`: inotify names the files that changed between syncs (else a stat of each);
        # `full_scan_every`: seconds after which a sync stats every file again (0: never).
        self.store = VdirStore(directory.contacts, watch=watch, full_scan_every=full_scan_every)
        self.state = CardStateDB(directory.state_db)
        # The card codec's own shortening rule, so content matching sees what the card
        # holds; remembered across sessions, so a sync fits only names new to it.
        self.fits = NameFits(card_name)
        self._lock = asyncio.Lock()
        self._listener: Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.syncs = 0
        self.unauthenticated = 0  # connections in the handshake now
        self.turned_away = 0  # connections closed on arrival because the cap was reached

    @property
    def url(self) -> str:
        """The URL phones connect to (with the real port when started on port 0)."""
        assert self._listener is not None, "start() first"
        return self._listener.url

    async def start(self, url: str) -> str:
        """Start listening; returns the real URL."""
        self._listener = await listen(url)
        log.info("pda listening", url=self._listener.url, device_id=self.identity.device_id)
        return self._listener.url

    async def serve_forever(self) -> None:
        """Accept phones until ``close()``."""
        assert self._listener is not None, "start() first"
        while True:
            try:
                link = await self._listener.accept()
            except TransportClosed:
                return
            task = asyncio.create_task(self._serve_one(link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop listening, end running sessions, release the files."""
        if self._listener is not None:
            await self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.state.close()
        self.store.close()

    async def _serve_one(self, link: FrameLink) -> None:
        peer = link.peer
        if self.unauthenticated >= MAX_UNAUTHENTICATED:
            if self.turned_away == 0:  # once per flood, not once per connection
                log.warning(
                    "too many connections in the handshake: closing new ones",
                    limit=MAX_UNAUTHENTICATED,
                    peer=peer,
                )
            self.turned_away += 1
            await link.close()
            return
        try:
            self.unauthenticated += 1
            try:
                tls = await self._authenticate(link)
            finally:
                self.unauthenticated -= 1
                if self.unauthenticated == 0 and self.turned_away:
                    log.warning("handshake flood over", turned_away=self.turned_away)
                    self.turned_away = 0
            if tls is None:
                return
            async with self._lock:
                await self._session(tls)
        except (TransportError, OSError) as exc:
            log.warning("sync connection failed", peer=peer, error=str(exc))
        finally:
            await link.close()

    async def _authenticate(self, link: FrameLink) -> FrameLink | None:
        """Pairing check and TLS; None when the phone is not allowed (logged)."""
        try:
            allowed = self.dir.allowed()
        except (PdaDirError, OSError) as exc:
            log.warning("cannot read the allow list: no phone can sync", error=str(exc))
            return None
        try:
            return await tls_server(link, self.identity, allowed)
        except PeerRejected as exc:
            log.warning("phone refused", peer=link.peer, device_id=exc.fingerprint)
            return None

    async def _session(self, link: FrameLink) -> None:
        engine = SyncEngine(self.store, self.state, fits=self.fits)
        while not engine.finished:
            try:
                async with asyncio.timeout(MESSAGE_TIMEOUT):
                    frame = await link.recv()
            except TimeoutError:
                # A silent phone must not hold the one-sync-at-a-time lock forever.
                log.warning("phone went silent: session abandoned", seconds=MESSAGE_TIMEOUT)
                return
            for out in engine.handle(frame):
                await link.send(out)
        self.syncs += 1
        if engine.outcome is not None:
            o = engine.outcome
            log.info(
                "sync done",
                mode=o.mode.value,
                added=o.added,
                modified=o.modified,
                deleted=o.deleted,
                conflicts=o.conflicts,
                skipped=o.skipped,
                set_aside=o.set_aside,
            )
        else:
            log.warning("sync ended early", error=str(engine.error))
