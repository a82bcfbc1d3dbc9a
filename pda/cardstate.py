"""Per-card sync state on the PDA, in SQLite.

For every (ICCID, database) the PDA keeps: the store it synced with
(`store_id`), the last anchor and its map, and a *pending* anchor with the map
that goes with it. The pending pair is written, in one transaction, before the
PDA answers `Prepared`; it becomes the last pair, in one transaction, when the
phone reports `Committed` or when the card later shows it accepted it. So a
crash anywhere leaves either the old pair or the new one, never a mix.

The map holds, per record, the contact's uid, what the card held and the
contact's projection after the sync (values, not hashes: a few dozen bytes per
record, and the planner needs the card's content for unchanged records).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from syncproto import Entry, Synced

from .errors import PdaError

__all__ = ["CardState", "CardStateDB", "CardStateError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS card (
    iccid TEXT NOT NULL,
    db INTEGER NOT NULL,
    store_id TEXT NOT NULL,
    last_anchor BLOB,
    pending_anchor BLOB,
    PRIMARY KEY (iccid, db)
);
CREATE TABLE IF NOT EXISTS map (
    iccid TEXT NOT NULL,
    db INTEGER NOT NULL,
    gen TEXT NOT NULL CHECK (gen IN ('last', 'pending')),
    record INTEGER NOT NULL,
    uid TEXT NOT NULL,
    card_name TEXT NOT NULL,
    card_number TEXT,
    pda_name TEXT NOT NULL,
    pda_number TEXT,
    PRIMARY KEY (iccid, db, gen, record),
    UNIQUE (iccid, db, gen, uid)
);
"""


class CardStateError(PdaError):
    """The per-card state database cannot be read or written; nothing was changed."""


@dataclass(frozen=True)
class CardState:
    """What the PDA remembers of one card database."""

    store_id: str | None = None  # None: never synced
    last: bytes | None = None
    pending: bytes | None = None
    synced: Mapping[int, Synced] = field(default_factory=dict)  # goes with `last`
    pending_synced: Mapping[int, Synced] = field(default_factory=dict)


class CardStateDB:
    """The SQLite file holding every card's state; every update is one transaction."""

    def __init__(self, path: str | Path) -> None:
        try:
            # Autocommit mode: transactions are the explicit BEGIN IMMEDIATE below.
            self._conn = sqlite3.connect(str(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise CardStateError(f"cannot open card state {path}: {exc}") from exc
        try:
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._conn.close()
            raise CardStateError(f"cannot open card state {path}: {exc}") from exc

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise CardStateError(f"card state update failed: {exc}") from exc

    def load(self, iccid: str, db: int) -> CardState:
        """The state of one card database (an empty CardState when never synced)."""
        try:
            row = self._conn.execute(
                "SELECT store_id, last_anchor, pending_anchor FROM card WHERE iccid=? AND db=?",
                (iccid, db),
            ).fetchone()
            if row is None:
                return CardState()
            maps: dict[str, dict[int, Synced]] = {"last": {}, "pending": {}}
            for gen, record, uid, cn, cnum, pn, pnum in self._conn.execute(
                "SELECT gen, record, uid, card_name, card_number, pda_name, pda_number "
                "FROM map WHERE iccid=? AND db=?",
                (iccid, db),
            ):
                maps[gen][record] = Synced(uid, Entry(cn, cnum), Entry(pn, pnum))
        except sqlite3.Error as exc:
            raise CardStateError(f"cannot read card state: {exc}") from exc
        return CardState(row[0], row[1], row[2], maps["last"], maps["pending"])

    def prepare(
        self, iccid: str, db: int, store_id: str, anchor: bytes, synced: Mapping[int, Synced]
    ) -> None:
        """Store `anchor` as pending with its map, replacing any earlier pending pair."""
        with self._txn() as c:
            c.execute(
                "INSERT INTO card (iccid, db, store_id, pending_anchor) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (iccid, db) DO UPDATE SET pending_anchor=excluded.pending_anchor",
                (iccid, db, store_id, anchor),
            )
            # A different store means the last pair belongs to a store that is gone.
            old = c.execute(
                "SELECT store_id FROM card WHERE iccid=? AND db=?", (iccid, db)
            ).fetchone()[0]
            if old != store_id:
                c.execute(
                    "UPDATE card SET store_id=?, last_anchor=NULL WHERE iccid=? AND db=?",
                    (store_id, iccid, db),
                )
                c.execute("DELETE FROM map WHERE iccid=? AND db=? AND gen='last'", (iccid, db))
            c.execute("DELETE FROM map WHERE iccid=? AND db=? AND gen='pending'", (iccid, db))
            c.executemany(
                "INSERT INTO map VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                [
                    (iccid, db, r, s.uid, s.card.name, s.card.number, s.pda.name, s.pda.number)
                    for r, s in sorted(synced.items())
                ],
            )

    def promote(self, iccid: str, db: int, anchor: bytes) -> None:
        """Make the pending pair the last one; CardStateError if `anchor` is not the pending."""
        with self._txn() as c:
            row = c.execute(
                "SELECT pending_anchor FROM card WHERE iccid=? AND db=?", (iccid, db)
            ).fetchone()
            if row is None or row[0] != anchor:
                raise CardStateError("the anchor to promote is not the pending one")
            c.execute(
                "UPDATE card SET last_anchor=pending_anchor, pending_anchor=NULL "
                "WHERE iccid=? AND db=?",
                (iccid, db),
            )
            c.execute("DELETE FROM map WHERE iccid=? AND db=? AND gen='last'", (iccid, db))
            c.execute(
                "UPDATE map SET gen='last' WHERE iccid=? AND db=? AND gen='pending'", (iccid, db)
            )

    def forget(self, iccid: str, db: int) -> None:
        """Drop everything about one card database (its next sync is slow)."""
        with self._txn() as c:
            c.execute("DELETE FROM map WHERE iccid=? AND db=?", (iccid, db))
            c.execute("DELETE FROM card WHERE iccid=? AND db=?", (iccid, db))
