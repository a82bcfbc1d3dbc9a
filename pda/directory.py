"""A PDA directory: its paths, its TLS identity and who may sync (see pda.node for the layout).

Apart from the server, so that ``simsync pda id`` and ``allow`` load neither the
vdir, the vCard parser nor the sync engine.
"""

from __future__ import annotations

from pathlib import Path

from transports import Identity, normalize_device_id

from .errors import PdaError

__all__ = ["PdaDir", "PdaDirError"]


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
        from .cardstate import CardStateDB
        from .vdir import VdirStore

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
