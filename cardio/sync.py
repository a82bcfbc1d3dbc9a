"""The three sync-object commands (card.md §4): NEWSYNC, GETCHANGES, STORESYNC.

They run on the ``Sim``'s logical channel with CLA ``8X``; the session the card
opens on NEWSYNC is bound to that channel. GETCHANGES paging is hidden: each page
asks for exactly ``2 + 3n`` bytes, ``n`` the entries still missing, capped by
what a short Le can carry.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

import structlog

from cardio import errors
from cardio.apdu import Command, Op, check
from cardio.files import parse_tlvs
from cardio.localcopy import CardStateDB, digest
from cardio.sim import Sim

log = structlog.get_logger(__name__)

INS_NEWSYNC = 0x3A
INS_GETCHANGES = 0x3C
INS_STORESYNC = 0x3E
TAG_PARTNER = 0xC0
TAG_DATABASE = 0xC1
TAG_LAST = 0xC2
TAG_PROPOSED = 0xC3
TAG_COUNT = 0xC4
SYNC_OBJECT_LEN = 8
ENTRY_LEN = 3
# Largest 2 + 3n that fits a short Le (256): n = 84 -> Le 254.
MAX_ENTRIES_PER_PAGE = (256 - 2) // ENTRY_LEN
DEFAULT_DB = 0x6F3A


class ChangeKind(Enum):
    """Type byte of a change entry."""

    ADDED = 0x01
    MODIFIED = 0x02
    DELETED = 0x03


@dataclass(frozen=True)
class Change:
    """One entry of the frozen change list: what happened to which record."""

    kind: ChangeKind
    record: int


@dataclass(frozen=True)
class NewSyncResult:
    """NEWSYNC's answer: last sync object (None: never synced, or evicted), proposed, count."""

    last: bytes | None
    proposed: bytes
    changes: int


class CardSync:
    """The sync commands of one session, on ``sim``'s logical channel."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self._count: int | None = None

    async def new_sync(self, partner: bytes, db: int = DEFAULT_DB) -> NewSyncResult:
        """NEWSYNC: open a session for ``partner`` on database EF ``db``.

        Raises ``SyncUnsupported`` if the card has no sync applet (``6D00``/``6E00``).
        """
        if not 1 <= len(partner) <= 16:
            raise errors.InvalidRequest(f"partner id of {len(partner)} bytes (1..16 allowed)")
        if not 0 <= db <= 0xFFFF:
            raise errors.InvalidRequest(f"database FID must be 2 bytes, got {db:#x}")
        data = (
            bytes((TAG_PARTNER, len(partner)))
            + bytes(partner)
            + bytes((TAG_DATABASE, 2))
            + db.to_bytes(2, "big")
        )
        command = Command(self.sim.sync_cla, INS_NEWSYNC, 0, 0, data, le=256)
        response = check(await self.sim.link.transmit(command), Op.NEWSYNC)
        tags = parse_tlvs(response.data)
        last = tags.get(TAG_LAST)
        proposed = tags.get(TAG_PROPOSED)
        count = tags.get(TAG_COUNT)
        if last is not None and len(last) != SYNC_OBJECT_LEN:
            raise errors.MalformedResponse(f"NEWSYNC last sync object of {len(last)} bytes")
        if proposed is None or len(proposed) != SYNC_OBJECT_LEN:
            raise errors.MalformedResponse("NEWSYNC answer lacks an 8-byte proposed object (C3)")
        if count is None or len(count) != 2:
            raise errors.MalformedResponse("NEWSYNC answer lacks a 2-byte change count (C4)")
        self._count = int.from_bytes(count, "big")
        log.info("newsync", channel=self.sim.channel, changes=self._count, fast=last is not None)
        return NewSyncResult(last, proposed, self._count)

    async def changes(self) -> list[Change]:
        """Every entry of the session's change list, fetched in as few pages as fit."""
        out: list[Change] = []
        total = self._count
        while total is None or len(out) < total:
            remaining = MAX_ENTRIES_PER_PAGE if total is None else total - len(out)
            n = min(remaining, MAX_ENTRIES_PER_PAGE)
            index = len(out)
            command = Command(
                self.sim.sync_cla, INS_GETCHANGES, index >> 8, index & 0xFF, le=2 + ENTRY_LEN * n
            )
            data = check(await self.sim.link.transmit(command), Op.GETCHANGES).data
            page_total, entries = _parse_page(data)
            if total is not None and page_total != total:
                raise errors.MalformedResponse(
                    f"GETCHANGES total {page_total} differs from NEWSYNC's {total}"
                )
            total = page_total
            if not entries and len(out) < total:
                raise errors.MalformedResponse("GETCHANGES returned no entries before the end")
            out.extend(entries)
        if len(out) != total:
            raise errors.MalformedResponse(f"GETCHANGES gave {len(out)} entries of {total}")
        return out

    async def store_sync(self, sync_object: bytes) -> None:
        """STORESYNC: commit ``sync_object`` (the proposed one); ends the session."""
        if len(sync_object) != SYNC_OBJECT_LEN:
            raise errors.InvalidRequest(f"sync object of {len(sync_object)} bytes (8 needed)")
        data = bytes((TAG_PROPOSED, SYNC_OBJECT_LEN)) + bytes(sync_object)
        command = Command(self.sim.sync_cla, INS_STORESYNC, 0, 0, data)
        check(await self.sim.link.transmit(command), Op.STORESYNC)
        self._count = None
        log.info("storesync", channel=self.sim.channel)


def _parse_page(data: bytes) -> tuple[int, list[Change]]:
    if len(data) < 2 or (len(data) - 2) % ENTRY_LEN:
        raise errors.MalformedResponse(f"GETCHANGES answer of {len(data)} bytes is not 2 + 3n")
    total = int.from_bytes(data[:2], "big")
    entries: list[Change] = []
    for i in range(2, len(data), ENTRY_LEN):
        try:
            kind = ChangeKind(data[i])
        except ValueError as exc:
            raise errors.MalformedResponse(f"GETCHANGES entry type {data[i]:02X}") from exc
        entries.append(Change(kind, int.from_bytes(data[i + 1 : i + 3], "big")))
    return total, entries


class HostSync:
    """The same three operations for a plain SIM (no sync commands), emulated by the host.

    ``read_all()`` reads every record of EF.ADN; NEWSYNC compares that read with
    the host's snapshot for (ICCID, partner, database), so the change list is
    frozen at NEWSYNC like the card's. STORESYNC stores the proposed object and
    the digests of what the partner then holds: the read plus the session's own
    writes (``wrote``), never another terminal's since.
    """

    def __init__(
        self,
        state: CardStateDB,
        iccid: str,
        read_all: Callable[[], Awaitable[dict[int, bytes]]],
    ) -> None:
        self._state = state
        self._iccid = iccid
        self._read_all = read_all
        self._partner = b""
        self._db = DEFAULT_DB
        self._proposed: bytes | None = None
        self._held: dict[int, bytes] = {}
        self._changes: list[Change] = []

    @property
    def open(self) -> bool:
        """True between NEWSYNC and STORESYNC."""
        return self._proposed is not None

    async def new_sync(self, partner: bytes, db: int = DEFAULT_DB) -> NewSyncResult:
        """Read the card whole and list what changed since ``partner``'s snapshot."""
        content = await self._read_all()
        snap = self._state.plain_snapshot(self._iccid, partner, db)
        listed: list[Change] = []
        for n, raw in sorted(content.items()):
            empty = all(b == 0xFF for b in raw)
            if snap is None:
                if not empty:
                    listed.append(Change(ChangeKind.ADDED, n))
                continue
            before = snap.digests.get(n)
            if before == digest(raw):
                continue
            was_empty = before is None or before == digest(b"\xff" * len(raw))
            if empty:
                if not was_empty:
                    listed.append(Change(ChangeKind.DELETED, n))
            else:
                listed.append(Change(ChangeKind.ADDED if was_empty else ChangeKind.MODIFIED, n))
        self._partner, self._db = partner, db
        self._proposed = secrets.token_bytes(SYNC_OBJECT_LEN)
        self._held = dict(content)
        self._changes = listed
        return NewSyncResult(snap.last if snap else None, self._proposed, len(listed))

    async def changes(self) -> list[Change]:
        """The change list frozen at NEWSYNC, ascending by record number."""
        if self._proposed is None:
            raise errors.InvalidRequest("no session: call new_sync() first")
        return list(self._changes)

    def wrote(self, record: int, raw: bytes) -> None:
        """The session itself wrote ``raw`` to ``record``: the partner holds it."""
        if self._proposed is not None:
            self._held[record] = raw

    async def store_sync(self, sync_object: bytes) -> None:
        """Commit ``sync_object`` (the proposed one) with the digests the partner holds."""
        if self._proposed is None:
            raise errors.InvalidRequest("no session: call new_sync() first")
        if sync_object != self._proposed:
            raise errors.WrongSyncObject(0x6A80, "STORESYNC", "not the proposed sync object")
        self._state.store_plain(
            self._iccid, self._partner, self._db, self._proposed, self._held.items()
        )
        self._proposed = None


__all__ = ["CardSync", "Change", "ChangeKind", "HostSync", "NewSyncResult"]
