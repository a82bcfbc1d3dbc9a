"""The phone's durable state about cards: the local copy of EF.ADN and plain-SIM anchors.

One SQLite file (``state_dir/cards.sqlite``) keyed by ICCID, so it survives
restarts and several cards can come and go:

- the *local copy* (the patent's "local copy of the smartcard memory"): every
  record of EF.ADN as raw bytes, valid against the card's sync object for the
  host's own partner id. ``host_last`` is the object of the last completed
  refresh; ``host_pending`` the one proposed by a refresh whose STORESYNC may or
  may not have reached the card (the next save records the one the card then
  proves, so no promotion is written). A card presenting either means the copy
  plus the card's change list is exact; anything else means a full read.
- the phone's *own writes* per partner (PDA): the records it wrote in that
  partner's sessions, with the sync object of the partner's last STORESYNC. The
  partner's baseline holds exactly those bytes, so its change list proves which
  of them the card still holds (``PhonebookCard`` reads the others).
- for *plain SIMs* (no sync commands), the sync objects the host keeps itself,
  per (ICCID, partner, database), with a digest of every record as the partner
  last saw it; changes are found by comparing a full read with that snapshot.

Every update is one transaction, so a crash leaves the previous state.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cardio import errors

__all__ = ["CardStateDB", "OwnWrites", "PlainSnapshot", "StateError", "digest"]


class StateError(errors.CardioError):
    """The host's card state file is unreadable, foreign, busy or from a newer simsync."""


def _state_error(path: Path, exc: sqlite3.Error) -> StateError:
    if "locked" in str(exc) or "busy" in str(exc):
        return StateError(f"{path}: in use by another simsync process (waited 10 s)")
    return StateError(f"{path}: {exc}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS copy_meta (
    iccid TEXT PRIMARY KEY,
    records INTEGER NOT NULL,
    record_len INTEGER NOT NULL,
    host_last BLOB,
    host_pending BLOB
);
CREATE TABLE IF NOT EXISTS copy (
    iccid TEXT NOT NULL,
    record INTEGER NOT NULL,
    raw BLOB NOT NULL,
    PRIMARY KEY (iccid, record)
);
CREATE TABLE IF NOT EXISTS plain_anchor (
    iccid TEXT NOT NULL,
    partner BLOB NOT NULL,
    db INTEGER NOT NULL,
    last BLOB NOT NULL,
    PRIMARY KEY (iccid, partner, db)
);
CREATE TABLE IF NOT EXISTS own_writes (
    iccid TEXT NOT NULL,
    partner BLOB NOT NULL,
    obj BLOB NOT NULL,
    record INTEGER NOT NULL,
    raw BLOB NOT NULL,
    PRIMARY KEY (iccid, partner, record)
);
CREATE TABLE IF NOT EXISTS plain_snapshot (
    iccid TEXT NOT NULL,
    partner BLOB NOT NULL,
    db INTEGER NOT NULL,
    record INTEGER NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (iccid, partner, db, record)
);
"""
_SCHEMA_VERSION = "1"  # tables added later are created by IF NOT EXISTS above


def digest(raw: bytes) -> bytes:
    """A short content digest of one record (collisions only cost precision, never data)."""
    return hashlib.blake2b(raw, digest_size=16).digest()


@dataclass(frozen=True)
class PlainSnapshot:
    """What a partner last saw of a plain SIM: its sync object and each record's digest."""

    last: bytes
    digests: Mapping[int, bytes]


@dataclass(frozen=True)
class OwnWrites:
    """Records the phone wrote in a partner's sessions, as that partner's baseline holds
    them, valid while the card's last object for the partner is ``obj``."""

    partner: bytes
    obj: bytes
    records: Mapping[int, bytes]


class CardStateDB:
    """The host's per-card state file; one writer at a time (the daemon or the CLI)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._tx():
                self._db.executescript(_SCHEMA)
                row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
                elif row[0] != _SCHEMA_VERSION:
                    raise StateError(
                        f"{path}: card state schema {row[0]}, this simsync reads {_SCHEMA_VERSION}"
                    )
        except sqlite3.OperationalError as exc:
            raise _state_error(path, exc) from exc
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{path}: not a simsync card state file ({exc})") from exc

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def host_partner(self) -> bytes:
        """This phone's own partner id on cards (made once, random, 16 bytes)."""
        try:  # read without a write transaction: every sync asks, only the first makes it
            row = self._db.execute("SELECT value FROM meta WHERE key='host_partner'").fetchone()
        except sqlite3.Error as exc:
            raise _state_error(self.path, exc) from exc
        if row is not None:
            return bytes.fromhex(row[0])
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='host_partner'").fetchone()
            if row is None:
                # "H" keeps it apart from PDA ids (certificate fingerprints) by construction.
                value = "48" + secrets.token_hex(15)
                db.execute("INSERT INTO meta VALUES ('host_partner', ?)", (value,))
            else:
                value = row[0]
        return bytes.fromhex(value)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction (BEGIN IMMEDIATE); SQLite's errors become ``StateError``."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            with self._db:  # commits, or rolls back on an exception
                yield self._db
        except sqlite3.Error as exc:
            raise _state_error(self.path, exc) from exc

    # --- the local copy --------------------------------------------------------

    def copy(self, iccid: str, records: int, record_len: int) -> dict[int, bytes] | None:
        """The cached records of ``iccid`` (all of them), or None if there is no usable copy."""
        row = self._db.execute(
            "SELECT records, record_len FROM copy_meta WHERE iccid=?", (iccid,)
        ).fetchone()
        if row is None or tuple(row) != (records, record_len):
            return None
        rows = self._db.execute("SELECT record, raw FROM copy WHERE iccid=?", (iccid,)).fetchall()
        out = {int(r): bytes(raw) for r, raw in rows}
        if set(out) != set(range(1, records + 1)):
            return None
        return out

    def host_objects(self, iccid: str) -> tuple[bytes | None, bytes | None]:
        """(last, pending) sync objects of the host's own partner id for ``iccid``."""
        row = self._db.execute(
            "SELECT host_last, host_pending FROM copy_meta WHERE iccid=?", (iccid,)
        ).fetchone()
        if row is None:
            return None, None
        return (bytes(row[0]) if row[0] else None, bytes(row[1]) if row[1] else None)

    def save_copy(
        self,
        iccid: str,
        records: int,
        record_len: int,
        content: Mapping[int, bytes],
        *,
        host_last: bytes | None,
        host_pending: bytes | None,
        replace: bool,
        drop_own_writes: bool = False,
    ) -> None:
        """Store records (all of them when ``replace``) and the host objects, atomically;
        ``drop_own_writes``: forget the partners' own writes too (the host's new anchor,
        once stored, covers them)."""
        with self._tx() as db:
            if replace:
                db.execute("DELETE FROM copy WHERE iccid=?", (iccid,))
            if drop_own_writes:
                db.execute("DELETE FROM own_writes WHERE iccid=?", (iccid,))
            db.execute(
                "INSERT INTO copy_meta VALUES (?, ?, ?, ?, ?) ON CONFLICT(iccid) DO UPDATE SET "
                "records=excluded.records, record_len=excluded.record_len, "
                "host_last=excluded.host_last, host_pending=excluded.host_pending",
                (iccid, records, record_len, host_last, host_pending),
            )
            db.executemany(
                "INSERT OR REPLACE INTO copy VALUES (?, ?, ?)",
                ((iccid, r, raw) for r, raw in content.items()),
            )

    def put_records(
        self, iccid: str, content: Mapping[int, bytes], own: OwnWrites | None = None
    ) -> None:
        """Record what the phone itself wrote to the card (the copy follows the card) and
        a partner's own writes after its STORESYNC: one sync's writes, one transaction."""
        with self._tx() as db:
            db.executemany(
                "UPDATE copy SET raw=? WHERE iccid=? AND record=?",
                ((raw, iccid, r) for r, raw in content.items()),
            )
            if own is not None:
                db.execute(
                    "DELETE FROM own_writes WHERE iccid=? AND partner=?", (iccid, own.partner)
                )
                db.executemany(
                    "INSERT INTO own_writes VALUES (?, ?, ?, ?, ?)",
                    ((iccid, own.partner, own.obj, r, raw) for r, raw in own.records.items()),
                )

    def own_writes(self, iccid: str) -> dict[bytes, OwnWrites]:
        """Every partner's own writes kept for ``iccid``."""
        rows = self._db.execute(
            "SELECT partner, obj, record, raw FROM own_writes WHERE iccid=?", (iccid,)
        ).fetchall()
        found: dict[bytes, tuple[bytes, dict[int, bytes]]] = {}
        for partner, obj, record, raw in rows:
            found.setdefault(bytes(partner), (bytes(obj), {}))[1][int(record)] = bytes(raw)
        return {p: OwnWrites(p, obj, records) for p, (obj, records) in found.items()}

    # --- plain SIMs -------------------------------------------------------------

    def plain_snapshot(self, iccid: str, partner: bytes, db: int) -> PlainSnapshot | None:
        """The partner's last sync object and record digests on a plain SIM, if any."""
        row = self._db.execute(
            "SELECT last FROM plain_anchor WHERE iccid=? AND partner=? AND db=?",
            (iccid, partner, db),
        ).fetchone()
        if row is None:
            return None
        rows = self._db.execute(
            "SELECT record, digest FROM plain_snapshot WHERE iccid=? AND partner=? AND db=?",
            (iccid, partner, db),
        ).fetchall()
        return PlainSnapshot(bytes(row[0]), {int(r): bytes(d) for r, d in rows})

    def store_plain(
        self, iccid: str, partner: bytes, db: int, last: bytes, records: Iterable[tuple[int, bytes]]
    ) -> None:
        """STORESYNC on a plain SIM: the new object and the digests of what the partner holds."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO plain_anchor VALUES (?, ?, ?, ?)",
                (iccid, partner, db, last),
            )
            conn.execute(
                "DELETE FROM plain_snapshot WHERE iccid=? AND partner=? AND db=?",
                (iccid, partner, db),
            )
            conn.executemany(
                "INSERT INTO plain_snapshot VALUES (?, ?, ?, ?, ?)",
                ((iccid, partner, db, r, digest(raw)) for r, raw in records),
            )
