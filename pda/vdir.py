"""VdirStore: the PDA's default contact store, a vdir (one vCard per .vcf file, named by UID).

The layout is the one khard and vdirsyncer use (https://vdirsyncer.pimutils.org/en/stable/vdir.html):
a flat directory of ``*.vcf`` files, one VCARD each. Files this store adds
itself start with a dot (the store-id marker, the status DB, temp files), so
vdir tools, which only look at ``*.vcf``, ignore them. See docs/pda.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from pda.status import RACY_WINDOW_NS, StatusRow, StatusTable
from pda.store import (
    BadContact,
    ContactExistsError,
    ContactInfo,
    ContactNotFoundError,
    Projection,
    StoreError,
    StoreIOError,
    new_uid,
    validate_projection,
    validate_uid,
)
from pda.vcard import (
    SUPPORTED_VERSIONS,
    CardError,
    apply_projection,
    decode_card,
    new_card,
    parse_card,
)
from pda.vfile import (
    MAX_VCARD_BYTES,
    bad_entry,
    load,
    name_uid,
    shown,
    uid_filename,
    unusable,
    write_atomic,
)

__all__ = [
    "MAX_VCARD_BYTES",
    "STATUS_DB_NAME",
    "STORE_ID_NAME",
    "ContactChangedError",
    "VdirStore",
    "uid_filename",
]

log = structlog.get_logger(__name__)

STORE_ID_NAME = ".simsync-store-id"
STATUS_DB_NAME = ".simsync-status.sqlite"


class ContactChangedError(StoreError):
    """The file changed on disk (another program) between reading and replacing it; retry."""


@dataclass(frozen=True)
class _Read:
    row: StatusRow
    data: bytes

    @property
    def text(self) -> str:
        """The card as text (a 2.1 card as its 3.0 equivalent: what an edit writes)."""
        return decode_card(self.data)


class VdirStore:
    """ContactStore over a vdir directory; `bad_files` lists what the last scan could not read."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_db: str | os.PathLike[str] | None = None,
        *,
        version: str = "3.0",
    ) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"version must be one of {SUPPORTED_VERSIONS}, not {version!r}")
        self.path = Path(path)
        self.version = version  # of newly created cards; an update keeps the file's own
        self._status_path = Path(status_db) if status_db is not None else self.path / STATUS_DB_NAME
        self.bad_files: list[BadContact] = []
        self.parse_count = 0  # cards parsed so far: what the status table exists to keep low
        # Bad files are not in the status DB (it only holds usable cards); remembered here so
        # a scan does not re-parse them while they stay as they are.
        self._bad_seen: dict[str, tuple[tuple[int, int, int], BadContact]] = {}
        self._index: dict[str, StatusRow] | None = None  # uid -> row, from the last scan
        self._logged: set[tuple[str, str]] = set()  # (file, reason) of set-aside files logged
        self.store_id: str = self._load_store_id()
        self._status = StatusTable(self._status_path, self.store_id)

    # -- store id ---------------------------------------------------------------------------

    def _load_store_id(self) -> str:
        """Read the marker, making the vdir and the marker on first use."""
        marker = self.path / STORE_ID_NAME
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                text = marker.read_text(encoding="ascii").strip()
                if text:
                    return text
            # No-clobber publish: if another process made one meanwhile, theirs wins.
            with contextlib.suppress(FileExistsError):
                self._write(marker, (secrets.token_hex(16) + "\n").encode(), exclusive=True)
            return marker.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreIOError(f"{marker}: cannot read or make the store id: {exc}") from exc

    def _refresh_store_id(self) -> None:
        store_id = self._load_store_id()
        if store_id != self.store_id:  # the vdir was wiped and re-created under us
            self.store_id = store_id
            self._status = StatusTable(self._status_path, store_id)
            self._index = None

    # -- reading ----------------------------------------------------------------------------

    def _read(self, filename: str, now_ns: int, old: StatusRow | None) -> _Read | None:
        """Read and (when its content changed) parse one file; None when it vanished."""
        got = load(self.path, filename, old.uid if old is not None else None)
        if got is None:
            return None
        data, st = got.data, got.st
        etag = hashlib.sha256(data).hexdigest()
        if old is not None and old.etag == etag:
            name, number, uid = old.name, old.number, old.uid
        else:
            self.parse_count += 1
            try:
                card = parse_card(decode_card(data))
            except CardError as exc:
                old_uid = old.uid if old is not None else None
                raise unusable(self.path, filename, data, str(exc), old_uid) from exc
            name, number = card.projection.name, card.projection.number
            # A hand-written card without UID: the file name stands in (the file is not rewritten).
            uid = card.uid or name_uid(filename)
        row = StatusRow(
            filename, uid, st.st_size, st.st_mtime_ns, st.st_ino, etag, name, number, now_ns
        )
        return _Read(row, data)

    def scan(self) -> dict[str, ContactInfo]:
        """Every readable contact by uid; parses only files whose stat key changed.

        Unreadable files are skipped and listed in `bad_files` (never rewritten),
        each logged once while it stays as it is; of two files with one UID, the one
        named after it (else the first by name) wins and the other is listed as bad.
        A bad file keeps the status row it had when it was last good, so the uid it
        held is known (and not taken for deleted) also by a later process.
        """
        self._refresh_store_id()
        now_ns = time.time_ns()  # taken before any stat: rows are racy relative to it
        old_rows = self._status.load()
        entries: list[tuple[str, tuple[int, int, int]]] = []
        bad: list[BadContact] = []
        bad_seen: dict[str, tuple[tuple[int, int, int], BadContact]] = {}
        try:
            with os.scandir(self.path) as listing:
                for e in listing:
                    if not e.name.endswith(".vcf") or e.name.startswith("."):
                        continue
                    if (odd := bad_entry(self.path, e)) is not None:
                        bad.append(odd)
                        continue
                    try:
                        st = e.stat()
                    except FileNotFoundError:  # gone since the listing
                        continue
                    except OSError as exc:  # one odd file never stops the scan
                        bad.append(BadContact(shown(e.path), f"cannot stat: {exc.strerror}"))
                        continue
                    entries.append((e.name, (st.st_size, st.st_mtime_ns, st.st_ino)))
        except OSError as exc:
            raise StoreIOError(f"{self.path}: cannot list the vdir: {exc}") from exc
        entries.sort()
        rows: dict[str, StatusRow] = {}
        upserts: list[StatusRow] = []
        for name, key in entries:
            old = old_rows.get(name)
            if old is not None and old.same_stat(*key):
                rows[name] = old
                continue
            seen = self._bad_seen.get(name)
            if seen is not None and seen[0] == key and key[1] < now_ns - RACY_WINDOW_NS:
                bad.append(seen[1])
                bad_seen[name] = seen
                continue
            try:
                got = self._read(name, now_ns, old)
            except BadContact as exc:
                bad.append(exc)
                bad_seen[name] = (key, exc)
                continue
            if got is not None:
                rows[name] = got.row
                upserts.append(got.row)
        kept = {name for name in bad_seen if name in old_rows}  # the uid a bad file last held
        gone = [name for name in old_rows if name not in rows and name not in kept]
        index: dict[str, StatusRow] = {}
        for name, row in rows.items():
            other = index.get(row.uid)
            if other is not None:
                keep, drop = (row, other) if name == uid_filename(row.uid) else (other, row)
                bad.append(
                    BadContact(
                        shown(self.path / drop.filename),
                        f"duplicate UID {row.uid!r}, also in {shown(keep.filename)}",
                        uids=(row.uid,),
                    )
                )
                index[row.uid] = keep
            else:
                index[row.uid] = row
        self._status.apply(upserts, gone)
        self._log_new(bad)
        self.bad_files = bad
        self._bad_seen = bad_seen
        self._index = index
        return {uid: _info(row) for uid, row in index.items()}

    def _log_new(self, bad: list[BadContact]) -> None:
        """Log each set-aside file once while it stays as it is (not at every scan)."""
        now = {(b.path, b.reason) for b in bad}
        for b in bad:
            if (b.path, b.reason) not in self._logged:
                log.warning("contact file set aside", file=b.path, reason=b.reason)
        self._logged = now

    def unreadable(self, uid: str) -> bool:
        """True when a file the last scan set aside may hold the contact (by name or UID)."""
        return any(uid in b.uids for b in self.bad_files) or uid_filename(uid) in {
            os.path.basename(b.path) for b in self.bad_files
        }

    def get(self, uid: str) -> ContactInfo | None:
        """One contact, read from its file now (BadContact when the file cannot be read)."""
        located = self._locate(uid)
        return None if located is None else _info(located.row)

    def _locate(self, uid: str) -> _Read | None:
        """Find and read the file holding `uid`, rescanning once when the index is stale."""
        scanned = self._index is None
        if self._index is None:
            self.scan()
        while True:
            assert self._index is not None
            row = self._index.get(uid)
            if row is not None:
                got = self._read(row.filename, time.time_ns(), row)
                if got is not None and got.row.uid == uid:
                    if got.row != row:
                        self._remember(got.row)
                    return got
            if scanned:
                return None
            self.scan()
            scanned = True

    # -- writing ----------------------------------------------------------------------------

    def create(self, projection: Projection, uid: str | None = None) -> str:
        """Write a new card (vCard `version`, FN, N, TEL;TYPE=CELL) named by its UID."""
        projection = validate_projection(projection)
        uid = new_uid() if uid is None else uid
        validate_uid(uid)
        if self._index is None:
            self.scan()
        assert self._index is not None
        if uid in self._index:
            raise ContactExistsError(
                f"contact {uid!r} already exists ({self._index[uid].filename})"
            )
        filename = uid_filename(uid)
        try:
            self._write(
                self.path / filename,
                new_card(uid, projection, self.version).encode(),
                exclusive=True,
            )
        except FileExistsError:
            raise ContactExistsError(f"{self.path / filename} already exists") from None
        self._after_write(filename)
        return uid

    def update_projection(self, uid: str, projection: Projection) -> None:
        """Change FN (N when absent or derived from FN) and the preferred TEL; keep the rest.

        An unchanged projection writes nothing. A number of None removes the
        preferred TEL (another TEL, if any, then becomes the preferred one).
        """
        projection = validate_projection(projection)
        located = self._locate(uid)
        if located is None:
            raise ContactNotFoundError(f"no contact {uid!r}")
        row, full = located.row, self.path / located.row.filename
        try:
            text = located.text
            new_text = apply_projection(text, projection)
        except CardError as exc:
            raise BadContact(shown(full), str(exc), uids=(uid,)) from exc
        if new_text is text:
            return
        self._write(full, new_text.encode(), expect=row)
        self._after_write(row.filename)

    def delete(self, uid: str) -> None:
        """Remove the contact's file."""
        located = self._locate(uid)
        if located is None:
            raise ContactNotFoundError(f"no contact {uid!r}")
        try:
            # A symlink goes, its target stays: the contact leaves this vdir, nothing is lost.
            (self.path / located.row.filename).unlink()
        except FileNotFoundError:
            raise ContactNotFoundError(f"no contact {uid!r}") from None
        except OSError as exc:
            raise StoreIOError(f"cannot delete {shown(located.row.filename)}: {exc}") from exc
        self._status.apply([], [located.row.filename])
        if self._index is not None:
            self._index.pop(uid, None)

    def _after_write(self, filename: str) -> None:
        """Record our own write in the status table, so the next scan does not re-parse it."""
        got = self._read(filename, time.time_ns(), None)
        if got is not None:
            self._remember(got.row)

    def _remember(self, row: StatusRow) -> None:
        self._status.apply([row], [])
        if self._index is not None:
            self._index[row.uid] = row

    def _write(
        self, target: Path, data: bytes, *, exclusive: bool = False, expect: StatusRow | None = None
    ) -> None:
        """Atomically put `data` at `target` (vfile.write_atomic: a symlink's target).

        `exclusive`: fail with FileExistsError rather than replace. `expect`: the
        file must still be what was read, else ContactChangedError.
        """

        def unchanged(real: Path) -> None:
            if expect is None:
                return
            try:
                st = os.stat(real)
            except FileNotFoundError:
                gone = f"{shown(target)} vanished while being updated"
                raise ContactNotFoundError(gone) from None
            if (st.st_size, st.st_mtime_ns, st.st_ino) != (
                expect.size,
                expect.mtime_ns,
                expect.inode,
            ):
                raise ContactChangedError(f"{shown(target)} changed while being updated")

        write_atomic(target, data, exclusive=exclusive, check=unchanged)


def _info(row: StatusRow) -> ContactInfo:
    return ContactInfo(row.uid, Projection(row.name, row.number), row.etag)
