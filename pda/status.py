"""The vdir status table: what each .vcf file was when last read, so unchanged ones are not parsed.

One SQLite row per file: its stat key (size, mtime_ns, inode), the content
hash (the etag), the UID and the cached projection. The table is a cache and
never the truth: it is tied to one store_id (a re-created vdir starts empty),
any SQLite error makes the store drop and rebuild it from the files, and a row
whose file changed within RACY_WINDOW_NS of being recorded is checked by
content, because a same-size rewrite in the same timestamp tick keeps mtime
(Linux file times come from a coarse clock; git calls this "racily clean").
A file name that is not UTF-8 (surrogate-escaped by ``os.scandir``) is stored
as a BLOB of its bytes, which SQLite keeps apart from every TEXT name.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pda.store import StoreError

__all__ = ["RACY_WINDOW_NS", "StatusCorruptError", "StatusRow", "StatusTable"]

# Coarse file timestamps are at most a jiffy (1-10 ms) behind; ten times that is a safe margin.
RACY_WINDOW_NS = 100_000_000
_SCHEMA_VERSION = "2"  # 2: numbers in the card's alphabet (pause as ",")


class StatusCorruptError(StoreError):
    """The status DB could not be read; the store rebuilds it from the files."""


@dataclass(frozen=True, slots=True)
class StatusRow:
    """What one .vcf file was when it was last read.

    The file counts as unchanged while its stat key (size, mtime_ns, inode) is the
    same and `mtime_ns` lies more than RACY_WINDOW_NS before `checked_ns`
    (`VdirStore.scan` checks this inline, once per file per scan).
    """

    filename: str
    uid: str
    size: int
    mtime_ns: int
    inode: int
    etag: str
    name: str
    number: str | None
    checked_ns: int  # wall clock when the stat key was taken


def _key(filename: str) -> str | bytes:
    """The filename column's value: TEXT, or the raw bytes when the name is not UTF-8."""
    try:
        filename.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(filename)
    return filename


def _name(key: object) -> str:
    return os.fsdecode(key) if isinstance(key, bytes) else str(key)


_COLUMNS = "filename, uid, size, mtime_ns, inode, etag, name, number, checked_ns"


class StatusTable:
    """The status rows of one vdir, in one SQLite file; a connection per call, nothing held open."""

    def __init__(self, path: Path, store_id: str) -> None:
        self.path = path
        self.store_id = store_id
        self.rebuilds = 0  # how often a bad or foreign DB was thrown away (tests, logs)
        self.loads = 0  # how often every row was read (tests: a server reads them once)
        self.writes = 0  # transactions that changed rows (tests: one per sync's own writes)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StatusCorruptError(f"{self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        except sqlite3.Error as exc:
            raise StatusCorruptError(f"{self.path}: {exc}") from exc
        finally:
            conn.close()

    def _prepare(self, conn: sqlite3.Connection) -> bool:
        """Create or check the schema; False when the table was (re)made empty."""
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta == {"schema": _SCHEMA_VERSION, "store_id": self.store_id}:
            return True
        if meta:  # a DB from another schema or another (wiped and re-created) vdir: start over
            self.rebuilds += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DROP TABLE IF EXISTS files")
        conn.execute(
            "CREATE TABLE files (filename TEXT PRIMARY KEY, uid TEXT NOT NULL,"
            " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,"
            " etag TEXT NOT NULL, name TEXT NOT NULL, number TEXT, checked_ns INTEGER NOT NULL)"
        )
        conn.execute("DELETE FROM meta")
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema", _SCHEMA_VERSION), ("store_id", self.store_id)],
        )
        conn.execute("COMMIT")
        return False

    def load(self) -> dict[str, StatusRow]:
        """Every row by file name; an unreadable DB is deleted and rebuilt empty."""
        self.loads += 1
        try:
            return self._load()
        except StatusCorruptError:
            self._discard()
            return self._load()

    def _load(self) -> dict[str, StatusRow]:
        with self._connect() as conn:
            if not self._prepare(conn):
                return {}
            rows = conn.execute(f"SELECT {_COLUMNS} FROM files").fetchall()  # noqa: S608 - constant
        try:
            return {_name(row[0]): StatusRow(_name(row[0]), *row[1:]) for row in rows}
        except TypeError as exc:  # a row of the wrong shape: treat like corruption
            raise StatusCorruptError(f"{self.path}: {exc}") from exc

    def apply(
        self,
        upserts: Iterable[StatusRow],
        deletes: Iterable[str],
        everything: Callable[[], Iterable[StatusRow]] | None = None,
    ) -> None:
        """Write new/changed rows and drop rows of vanished files, in one transaction.

        Should the DB turn out unreadable, it is rebuilt holding `everything()` (the
        caller's whole table, when it keeps one) or else just `upserts`.
        """
        upserts, deletes = list(upserts), list(deletes)
        if not upserts and not deletes:
            return
        try:
            self._apply(upserts, deletes)
        except StatusCorruptError:
            # Losing the cache only costs a re-parse; the files stay the truth.
            self._discard()
            self._load()
            self._apply(list(everything()) if everything is not None else upserts, [])

    def _apply(self, upserts: list[StatusRow], deletes: list[str]) -> None:
        with self._connect() as conn:
            self._prepare(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM files WHERE filename = ?", [(_key(d),) for d in deletes])
            conn.executemany(
                f"INSERT OR REPLACE INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                [
                    (
                        _key(r.filename),
                        r.uid,
                        r.size,
                        r.mtime_ns,
                        r.inode,
                        r.etag,
                        r.name,
                        r.number,
                        r.checked_ns,
                    )
                    for r in upserts
                ],
            )
            conn.execute("COMMIT")
        self.writes += 1

    def _discard(self) -> None:
        self.rebuilds += 1
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(str(self.path) + suffix).unlink()
