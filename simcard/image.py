"""The card image: the whole card in one SQLite file, one transaction per state change.

Why SQLite: each state-changing APDU becomes one ``BEGIN IMMEDIATE ... COMMIT``,
and SQLite's journal makes that all-or-nothing under ``kill -9`` and power loss,
which a hand-written file format would have to re-invent. WAL mode with
``synchronous=FULL`` fsyncs the WAL at every commit, so an APDU is answered only
after its change is durable ("nothing acknowledged is lost"), and a crash leaves
either the state before or the state after, never a torn record.

Exclusive use: ``open_image`` takes a non-blocking ``flock`` on the image file
(independent of SQLite's own POSIX locks) and holds it until ``close``; a second
opener, in this process or another, gets ``ImageLocked``.

Validation happens before anything is written: a file that is not an SQLite
database, not ours (``application_id``), of another schema version, or whose
contents do not add up is refused with ``ImageCorrupt`` and left untouched.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from simcard import fs
from simcard.card import SimCard
from simcard.errors import (
    ImageCorrupt,
    ImageExists,
    ImageLocked,
    ImageMissing,
    ImageWriteError,
)
from simcard.state import (
    DEFAULT_ICCID,
    MAX_PARTNER_LEN,
    PIN_TRIES,
    PUK_TRIES,
    SYNC_OBJECT_LEN,
    CardParams,
    CardState,
    Change,
    ChvChange,
    RecordChange,
    Slot,
    new_state,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "ImageStore", "create_image", "open_image"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x53494D53  # "SIMS", in the SQLite header: tells our files from others
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE card (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    records INTEGER NOT NULL, alpha_len INTEGER NOT NULL, iccid TEXT NOT NULL,
    partners INTEGER NOT NULL, sync_applet INTEGER NOT NULL,
    pin BLOB NOT NULL, puk BLOB NOT NULL, pin_left INTEGER NOT NULL, puk_left INTEGER NOT NULL
);
CREATE TABLE binary (fid INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE record (
    fid INTEGER NOT NULL, rec INTEGER NOT NULL, data BLOB NOT NULL, meta INTEGER NOT NULL,
    PRIMARY KEY (fid, rec)
);
CREATE TABLE slot (
    idx INTEGER PRIMARY KEY, partner BLOB, fid INTEGER, obj BLOB, seq INTEGER
);
"""


def create_image(
    path: str | os.PathLike[str],
    *,
    records: int = 250,
    alpha_len: int = 18,
    iccid: str = DEFAULT_ICCID,
    pin: str = "0000",
    puk: str = "12345678",
    partners: int = 8,
    sync_applet: bool = True,
) -> None:
    """Write a fresh card image at ``path``; refuses to overwrite (``ImageExists``).

    The image is built under a temporary name and linked into place, so ``path``
    either does not exist or holds a complete image. Raises ``CardParamError``.
    """
    target = Path(path)
    state = new_state(CardParams(records, alpha_len, iccid, partners, sync_applet), pin, puk)
    if target.exists():
        raise ImageExists(f"{target}: file exists, not overwriting it")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _write_new(tmp, state)
        try:
            os.link(tmp, target)  # fails if the target appeared meanwhile: no overwrite
        except FileExistsError as exc:
            raise ImageExists(f"{target}: file exists, not overwriting it") from exc
        except OSError as exc:
            raise ImageWriteError(f"{target}: cannot create image: {exc.strerror}") from exc
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_new(tmp: Path, state: CardState) -> None:
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
    except sqlite3.Error as exc:
        raise ImageWriteError(f"{tmp.parent}: cannot create image: {exc}") from exc
    try:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: recorded in the header
        conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(_SCHEMA)  # a temporary file: atomicity comes from the link below
        conn.execute("BEGIN")
        p = state.params
        conn.execute(
            "INSERT INTO card VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (p.records, p.alpha_len, p.iccid, p.partners, int(p.sync_applet),
             state.pin, state.puk, state.pin_left, state.puk_left),
        )  # fmt: skip
        conn.executemany("INSERT INTO binary VALUES (?, ?)", state.binaries.items())
        conn.executemany(
            "INSERT INTO record VALUES (?, ?, ?, ?)",
            [
                (fid, r, data, state.meta[fid][r - 1])
                for fid, recs in state.records.items()
                for r, data in enumerate(recs, 1)
            ],
        )
        conn.executemany(
            "INSERT INTO slot (idx) VALUES (?)", [(i,) for i in range(len(state.slots))]
        )
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ImageWriteError(f"{tmp.parent}: cannot create image: {exc}") from exc
    finally:
        conn.close()  # a clean close checkpoints the WAL: one self-contained file


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_image(path: str | os.PathLike[str]) -> SimCard:
    """Open a card image for exclusive use; ``card.close()`` releases it.

    Raises ``ImageMissing``, ``ImageLocked`` or ``ImageCorrupt`` (file untouched).
    """
    return SimCard(ImageStore(path))


class ImageStore:
    """A ``Store`` backed by an image file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError as exc:
            raise ImageMissing(f"{self.path}: no such card image") from exc
        except IsADirectoryError as exc:
            raise ImageCorrupt(f"{self.path}: is a directory, not a card image") from exc
        except OSError as exc:
            raise ImageCorrupt(f"{self.path}: cannot open: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ImageLocked(f"{self.path}: card image is in use by another process") from exc
        self._fd: int | None = fd
        try:
            self._conn, self._state = self._open_validated()
        except BaseException:
            self._release()
            raise

    def _open_validated(self) -> tuple[sqlite3.Connection, CardState]:
        assert self._fd is not None
        header = os.pread(self._fd, len(_SQLITE_MAGIC), 0)
        if header != _SQLITE_MAGIC:
            raise ImageCorrupt(f"{self.path}: not a simsync card image (not an SQLite file)")
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ImageCorrupt(f"{self.path}: cannot open as SQLite: {exc}") from exc
        try:
            state = _load(conn, self.path)  # reads only: nothing is written before this passes
            conn.execute("PRAGMA synchronous = FULL")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            conn.close()
            raise ImageCorrupt(f"{self.path}: damaged card image: {exc}") from exc
        except (TypeError, ValueError) as exc:
            # SQLite does not enforce column types: a hand-edited value of the wrong type.
            conn.close()
            raise ImageCorrupt(
                f"{self.path}: damaged card image: a value of the wrong type ({exc})"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn, state

    def load(self) -> CardState:
        """The validated state read at open."""
        return copy.deepcopy(self._state)

    def commit(self, changes: Sequence[Change]) -> None:
        """One durable transaction for the whole list, or ``ImageWriteError``."""
        if self._fd is None:
            raise ImageWriteError(f"{self.path}: card image is closed")
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for ch in changes:
                if isinstance(ch, RecordChange):
                    if ch.data is None:
                        conn.execute(
                            "UPDATE record SET meta = ? WHERE fid = ? AND rec = ?",
                            (ch.meta, ch.fid, ch.rec),
                        )
                    else:
                        conn.execute(
                            "UPDATE record SET data = ?, meta = ? WHERE fid = ? AND rec = ?",
                            (ch.data, ch.meta, ch.fid, ch.rec),
                        )
                elif isinstance(ch, ChvChange):
                    conn.execute(
                        "UPDATE card SET pin = ?, pin_left = ?, puk_left = ? WHERE id = 1",
                        (ch.pin, ch.pin_left, ch.puk_left),
                    )
                else:
                    s = ch.slot
                    conn.execute(
                        "UPDATE slot SET partner = ?, fid = ?, obj = ?, seq = ? WHERE idx = ?",
                        (None, None, None, None, ch.index)
                        if s is None
                        else (s.partner, s.fid, s.obj, s.seq, ch.index),
                    )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise ImageWriteError(f"{self.path}: cannot write card image: {exc}") from exc

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        if self._fd is not None:
            self._conn.close()
            self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _load(conn: sqlite3.Connection, path: Path) -> CardState:
    """Read and check the whole image; ``ImageCorrupt`` if it is not a sane card."""

    def bad(why: str) -> ImageCorrupt:
        return ImageCorrupt(f"{path}: not a valid simsync card image: {why}")

    if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        raise bad("not written by simsync (foreign SQLite database)")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise bad(f"schema version {version}, this simsync reads {SCHEMA_VERSION}")
    check = conn.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise bad(f"integrity check failed: {check}")
    row = conn.execute(
        "SELECT records, alpha_len, iccid, partners, sync_applet, pin, puk, pin_left, puk_left"
        " FROM card WHERE id = 1"
    ).fetchone()
    if row is None:
        raise bad("card row missing")
    try:
        params = CardParams(int(row[0]), int(row[1]), str(row[2]), int(row[3]), bool(row[4]))
    except (ValueError, TypeError) as exc:
        raise bad(str(exc)) from exc
    pin, puk, pin_left, puk_left = row[5:]
    if not (isinstance(pin, bytes) and isinstance(puk, bytes) and len(pin) == len(puk) == 8):
        raise bad("CHV codes malformed")
    if not (0 <= pin_left <= PIN_TRIES and 0 <= puk_left <= PUK_TRIES):
        raise bad("CHV counters out of range")
    state = new_state(params, "0000", "00000000")  # the shape; contents follow
    state.pin, state.puk, state.pin_left, state.puk_left = pin, puk, pin_left, puk_left
    binaries = dict(conn.execute("SELECT fid, data FROM binary").fetchall())
    if set(binaries) != set(state.binaries) or any(
        not isinstance(binaries[f], bytes) or len(binaries[f]) != len(state.binaries[f])
        for f in binaries
    ):
        raise bad("transparent files do not match the card layout")
    state.binaries = binaries
    seen = 0
    for fid, rec, data, meta in conn.execute("SELECT fid, rec, data, meta FROM record"):
        recs = state.records.get(fid)
        if recs is None or not 1 <= rec <= len(recs):
            raise bad(f"record {rec} of {fid:04X} does not belong to the card layout")
        if not isinstance(data, bytes) or len(data) != fs.record_length(fid, params.alpha_len):
            raise bad(f"record {rec} of {fid:04X} has the wrong length")
        if not (isinstance(meta, int) and 0 <= meta < 1 << 32):
            raise bad(f"record {rec} of {fid:04X} has bad sync metadata")
        recs[rec - 1] = data
        state.meta[fid][rec - 1] = meta
        seen += 1
    if seen != sum(len(r) for r in state.records.values()):
        raise bad("records missing")
    slots = conn.execute("SELECT idx, partner, fid, obj, seq FROM slot ORDER BY idx").fetchall()
    if [s[0] for s in slots] != list(range(params.partners)):
        raise bad("partner table does not match its size")
    for idx, partner, fid, obj, seq in slots:
        if partner is None:
            continue
        if not (
            isinstance(partner, bytes)
            and 1 <= len(partner) <= MAX_PARTNER_LEN
            and fid in fs.LINEAR_EFS
            and isinstance(obj, bytes)
            and len(obj) == SYNC_OBJECT_LEN
            and isinstance(seq, int)
            and 0 <= seq < 1 << 32
        ):
            raise bad(f"partner table entry {idx} malformed")
        state.slots[idx] = Slot(partner, fid, obj, seq)
    return state
