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
from pathlib import Path

import structlog

from cardio.codecs import card_name
from transports import (
    FrameLink,
    Identity,
    Listener,
    PeerRejected,
    TransportClosed,
    TransportError,
    listen,
    normalize_device_id,
    tls_server,
)

from .cardstate import CardStateDB
from .engine import NameFits, SyncEngine
from .errors import PdaError
from .vdir import VdirStore

__all__ = ["PdaDir", "PdaDirError", "PdaServer"]

log = structlog.get_logger(__name__)

# Longest silence accepted from a phone between two messages (its card work included).
MESSAGE_TIMEOUT = 120.0


class PdaDirError(PdaError):
    """A PDA directory that is missing, not initialised, or already initialised."""


class PdaDir:
    """Paths and small files of one PDA directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity_dir = path / "identity"
        self.contacts = path / "contacts"
        self.state_db = path / "state.sqlite"
        self.allowed_file = path / "allowed"

    @classmethod
    def init(cls, path: Path) -> PdaDir:
        """Create identity, empty vdir and state; refuses an already initialised directory."""
        d = cls(path)
        if d.identity_dir.exists():
            raise PdaDirError(f"{path} is already a PDA directory (it has identity/)")
        path.mkdir(parents=True, exist_ok=True)
        d.contacts.mkdir(exist_ok=True)
        Identity.load_or_create(d.identity_dir)
        VdirStore(d.contacts)  # makes the store id and the status table
        CardStateDB(d.state_db).close()
        d.allowed_file.touch()
        return d

    @classmethod
    def open(cls, path: Path) -> PdaDir:
        """An existing PDA directory."""
        d = cls(path)
        if not d.identity_dir.is_dir() or not d.contacts.is_dir():
            raise PdaDirError(f"{path} is not a PDA directory: run `simsync pda init {path}`")
        return d

    def identity(self) -> Identity:
        """This PDA's TLS identity."""
        return Identity.load_or_create(self.identity_dir)

    def allowed(self) -> set[str]:
        """Device ids of the phones allowed to sync (read fresh each time)."""
        ids: set[str] = set()
        if not self.allowed_file.exists():
            return ids
        for n, line in enumerate(self.allowed_file.read_text("utf-8").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                ids.add(normalize_device_id(text))
            except ValueError as exc:
                raise PdaDirError(f"{self.allowed_file}:{n}: {exc}") from exc
        return ids

    def allow(self, device_id: str) -> bool:
        """Add a phone's device id; False if it was allowed already."""
        norm = normalize_device_id(device_id)
        if norm in self.allowed():
            return False
        with self.allowed_file.open("a", encoding="utf-8") as f:
            f.write(norm + "\n")
        return True


class PdaServer:
    """Serves syncs for one PDA directory on one listening URL."""

    def __init__(self, directory: PdaDir) -> None:
        self.dir = directory
        self.identity = directory.identity()
        self.store = VdirStore(directory.contacts)
        self.state = CardStateDB(directory.state_db)
        # The card codec's own shortening rule, so content matching sees what the card
        # holds; remembered across sessions, so a sync fits only names new to it.
        self.fits = NameFits(card_name)
        self._lock = asyncio.Lock()
        self._listener: Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.syncs = 0

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

    async def _serve_one(self, link: FrameLink) -> None:
        peer = link.peer
        try:
            try:
                allowed = self.dir.allowed()
            except (PdaDirError, OSError) as exc:
                log.warning("cannot read the allow list: no phone can sync", error=str(exc))
                return
            try:
                tls = await tls_server(link, self.identity, allowed)
            except PeerRejected as exc:
                log.warning("phone refused", peer=peer, device_id=exc.fingerprint)
                return
            async with self._lock:
                await self._session(tls)
        except (TransportError, OSError) as exc:
            log.warning("sync connection failed", peer=peer, error=str(exc))
        finally:
            await link.close()

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
            )
        else:
            log.warning("sync ended early", error=str(engine.error))
