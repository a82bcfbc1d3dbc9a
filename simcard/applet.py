"""The sync-object applet: change tracking, sessions, NEWSYNC/GETCHANGES/STORESYNC rules.

The rule, in the terms of spec/card.md section 4:

*Table.* K slots (8..16, fixed at creation). Slot i holds a partner id (1-16
bytes + a length byte), the database FID (2), the last sync object (8) and a
4-byte STORESYNC sequence number: 31 bytes.

*Per record* of every linear fixed EF under DF.TELECOM, two 16-bit masks: D (bit
i: the record was written since slot i's baseline) and E (bit i, meaningful when
D_i is set: the record was empty at slot i's baseline, as far as the card knows).
4 bytes per record.

*UPDATE RECORD r* (by anyone): for every slot i of that EF whose D_i is clear,
set D_i and E_i = "r was empty just before this write". Because no write touched
r between the baseline and this first one, that is exactly "empty at baseline".
Every open session on the same EF notes r too (volatile RAM): a write on the
session's own channel means the partner now knows r as written, so r leaves the
session's *foreign* map; a write on any other channel enters it (if r is not
there yet) with "was r empty just before" -- the content the partner last knew.

*NEWSYNC(partner, db)* freezes a change list in the session: without a slot for
(partner, db), every non-empty record as 01 (added); with slot i, every r with D_i
set: 03 if empty now, else 01 if E_i else 02; a record empty now and empty at
baseline is left out (nothing to tell). Ascending record numbers. It proposes 8
bytes from ``secrets`` and writes nothing persistent.

*STORESYNC(obj)* takes the slot of (partner, db) or allocates one (a free one,
else the one with the oldest STORESYNC, whose partner then gets a full sync).
The new baseline is "the card now, minus the foreign writes of this session", so
in ONE transaction: slot := (partner, db, obj, next seq), and for every record r
of the EF: not in the foreign map -> D_i = 0 (the partner holds r as it is now:
it read it, wrote it last, or it did not change); in the foreign map -> D_i = 1,
E_i = the map's "empty before" (the content the partner knew is the baseline, so
the next type is exact). The lead's first proposal kept a record written both by
the session and by others as "don't know" (E_i = 0); tracking which came last
costs nothing and makes that case exact too: a session write after the foreign
ones means the partner knows the current content, a foreign write after the
session's means the baseline is what the session wrote. A re-marked record may
be listed once more although it ends up unchanged (another terminal wrote the
same bytes): the spec's precision slack.

Why this is complete: a record whose content differs from the baseline was
written after it (D_i set then) or was foreign-written in the last session (D_i
kept set). D_i is cleared only at a STORESYNC of slot i, which moves the baseline.
Why precise: D_i is set only by a write after the baseline, or kept for a foreign
write of the session that produced the baseline.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from simcard.state import (
    SYNC_OBJECT_LEN,
    CardState,
    Change,
    RecordChange,
    Slot,
    SlotChange,
    is_empty,
)

__all__ = [
    "ADDED",
    "DELETED",
    "MODIFIED",
    "Session",
    "find_slot",
    "metadata_bytes",
    "new_session",
    "store_changes",
    "write_meta",
]

ADDED = 0x01
MODIFIED = 0x02
DELETED = 0x03
SLOT_BYTES = 1 + 16 + 2 + SYNC_OBJECT_LEN + 4


@dataclass
class Session:
    """A sync session, bound to the logical channel NEWSYNC came on (volatile)."""

    partner: bytes
    fid: int
    last: bytes | None
    proposed: bytes
    changes: tuple[tuple[int, int], ...]
    # Records written by others since the partner last knew them -> "was empty then".
    foreign: dict[int, bool] = field(default_factory=dict)

    def note_write(self, rec: int, own: bool, was_empty: bool) -> None:
        """Remember a write to this session's EF made during the session."""
        if own:
            self.foreign.pop(rec, None)  # the partner knows what it just wrote
        else:
            self.foreign.setdefault(rec, was_empty)


def find_slot(state: CardState, partner: bytes, fid: int) -> int | None:
    """Index of the slot of (partner, fid), or None."""
    for i, slot in enumerate(state.slots):
        if slot is not None and slot.partner == partner and slot.fid == fid:
            return i
    return None


def _d(meta: int, i: int) -> bool:
    return bool(meta >> i & 1)


def _e(meta: int, i: int) -> bool:
    return bool(meta >> (16 + i) & 1)


def new_session(state: CardState, partner: bytes, fid: int) -> Session:
    """What NEWSYNC computes: last object, proposal, frozen change list."""
    i = find_slot(state, partner, fid)
    changes: list[tuple[int, int]] = []
    last: bytes | None = None
    if i is None:
        changes = [(ADDED, r) for r, rec in enumerate(state.records[fid], 1) if not is_empty(rec)]
    else:
        slot = state.slots[i]
        assert slot is not None
        last = slot.obj
        for r, (rec, meta) in enumerate(zip(state.records[fid], state.meta[fid], strict=True), 1):
            if not _d(meta, i):
                continue
            empty_at_baseline = _e(meta, i)
            if is_empty(rec):
                if not empty_at_baseline:
                    changes.append((DELETED, r))
            else:
                changes.append((ADDED if empty_at_baseline else MODIFIED, r))
    return Session(partner, fid, last, secrets.token_bytes(SYNC_OBJECT_LEN), tuple(changes))


def write_meta(state: CardState, fid: int, rec: int, was_empty: bool) -> int:
    """The metadata of record ``rec`` after an UPDATE RECORD to it."""
    meta = state.meta[fid][rec - 1]
    for i, slot in enumerate(state.slots):
        if slot is not None and slot.fid == fid and not _d(meta, i):
            meta |= 1 << i
            if was_empty:
                meta |= 1 << (16 + i)
            else:
                meta &= ~(1 << (16 + i))
    return meta


def store_changes(state: CardState, session: Session) -> list[Change]:
    """The one transaction of a successful STORESYNC of ``session``."""
    i = find_slot(state, session.partner, session.fid)
    if i is None:
        free = [k for k, s in enumerate(state.slots) if s is None]
        # Full table: evict the entry whose STORESYNC is oldest.
        i = free[0] if free else min(range(len(state.slots)), key=lambda k: _seq(state.slots[k]))
    seq = max((_seq(s) for s in state.slots), default=0) + 1
    slot = Slot(session.partner, session.fid, session.proposed, seq)
    out: list[Change] = [SlotChange(i, slot)]
    d_bit, e_bit = 1 << i, 1 << (16 + i)
    for r, meta in enumerate(state.meta[session.fid], 1):
        new = meta & ~(d_bit | e_bit)
        if r in session.foreign:
            new |= d_bit
            if session.foreign[r]:
                new |= e_bit
        if new != meta:
            out.append(RecordChange(session.fid, r, None, new))
    return out


def _seq(slot: Slot | None) -> int:
    return -1 if slot is None else slot.seq


def metadata_bytes(state: CardState) -> int:
    """Bytes of sync metadata: 4 per tracked record plus one table entry per slot."""
    return 4 * sum(len(m) for m in state.meta.values()) + SLOT_BYTES * len(state.slots)
