"""One card, ready to sync: a logical channel open, EF.ADN selected there, the PIN verified.

``PhonebookCard`` gives everything above ``cardio`` one API, whether or not the
card has the sync commands:

- **sync-object cards**: NEWSYNC/GETCHANGES/STORESYNC go to the card on the
  session's logical channel -- the one ``open`` opened first, which starts at the
  MF (so the ICCID costs no SELECT of the MF) and keeps EF.ADN selected whatever
  other terminals select on channel 0. The local copy is refreshed with the same
  three commands under the host's own partner id, on a second channel when a
  partner's session is open (so it stays open meanwhile).
- **plain SIMs** (NEWSYNC answered ``6D00``/``6E00``, i.e. every SIM in phones
  today): the same calls work; changes are found by a full read compared with
  the host's snapshot for that (ICCID, partner), and the host keeps the sync
  objects itself. Slower, never wrong. ``change_detection`` is then False.

The card is the truth and the local copy follows it: every record the phone
writes is written to the copy too, and a copy that cannot be proven current
(its host object is not the card's) is rebuilt from the card.

The phone's own writes in a partner's session are changes for the host's own id
too (a write belongs to the session of one channel only, card.md section 4). So
``settle_copy`` keeps them, per partner, with the partner's sync object, and the
next refresh proves them without reading them back: after the host's NEWSYNC, one
NEWSYNC for the partner on channel 0, never stored, whose list names every record
someone else wrote since the phone did (the partner's baseline holds the phone's
writes). See docs/cardio.md.

Cost on a 250-record card (``python -m bench.card_cost``, in process; ``simsync
sync`` adds the VERIFY asking the PIN's tries left): 11 APDUs for a sync with
nothing changed (MANAGE CHANNEL, SELECT EF.ICCID, READ BINARY, SELECT DF.TELECOM,
SELECT EF.ADN + GET RESPONSE, VERIFY, NEWSYNC + GET RESPONSE, STORESYNC, close);
a slow sync adds 5 for the refresh (a second channel, NEWSYNC + GET RESPONSE,
STORESYNC, close) and 2 for the free-record check, plus one READ per record
the refresh must read and one UPDATE per record written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from cardio import entries, errors
from cardio.entries import Contact, Refused, Unreadable, Written
from cardio.files import FileInfo
from cardio.link import CardLink
from cardio.localcopy import CardStateDB, OwnWrites
from cardio.sim import CLA_GSM, Sim
from cardio.sync import (
    DEFAULT_DB,
    MAX_ENTRIES_PER_PAGE,
    CardSync,
    Change,
    ChangeKind,
    HostSync,
    NewSyncResult,
)

__all__ = ["ADN_PATH", "EXT1_FID", "PhonebookCard", "RefreshStats"]

log = structlog.get_logger(__name__)

ADN_PATH = (0x3F00, 0x7F10, 0x6F3A)
EXT1_FID = 0x6F4A  # beside EF.ADN under DF.TELECOM
_EMPTY = 0xFF
# Asking a partner's change list on channel 0: NEWSYNC + GET RESPONSE (GETCHANGES too
# when others wrote). Worth it for more READs.
_WITNESS_COST = 2
_T = TypeVar("_T")


def _is_empty(raw: bytes) -> bool:
    return all(b == _EMPTY for b in raw)


async def _identify(adn: Sim, pin: str | None) -> tuple[str, FileInfo]:
    """On a fresh channel (or channel 0): the ICCID, EF.ADN selected, the PIN verified."""
    iccid = await adn.iccid(at_mf=bool(adn.channel))
    # EF.ICCID sits under the MF, so DF.TELECOM is a child of the current DF now; only
    # EF.ADN's answer (its geometry) is needed.
    await adn.select_quiet(ADN_PATH[1:2])
    info = await adn.select(ADN_PATH[2])
    if not info.is_record_ef or info.record_length < 14 or not info.record_count:
        raise errors.MalformedResponse(f"EF.ADN is not a linear fixed file of ADN records ({info})")
    if pin is not None:
        await adn.verify_pin(pin)
    return iccid, info


@dataclass(frozen=True)
class RefreshStats:
    """What a refresh of the local copy cost and found."""

    full: bool
    changed: int
    apdus: int


class PhonebookCard:
    """EF.ADN of one card, with its local copy; create with ``await PhonebookCard.open(...)``."""

    def __init__(
        self,
        link: CardLink,
        sim: Sim,
        adn: Sim,
        state: CardStateDB,
        *,
        iccid: str,
        records: int,
        record_len: int,
        host_partner: bytes,
    ) -> None:
        self.link = link
        self._sim0 = sim  # the basic channel: MANAGE CHANNEL, and sync commands never stored
        # The channel opened first, EF.ADN selected: the partner session's, or the refresh's
        # when no session is open (channel 0 itself on a card without logical channels).
        self._adn = adn
        self._session: Sim | None = None
        self._no_channels = not adn.channel
        self._state = state
        self.iccid = iccid
        self.records = records
        self.record_len = record_len
        self.host_partner = host_partner
        # None until the first sync command tells whether the card has them.
        self.change_detection: bool | None = None
        self._copy: dict[int, bytes] | None = None
        self._refreshed = False  # refreshed during this connection
        self._ext1_free: list[int] | None = None
        self._host_sim: Sim | None = None
        self._sync: CardSync | None = None
        # A plain SIM's session, emulated by the host (None on a card with the commands).
        self._plain: HostSync | None = None
        self._session_open = False
        # Records ``put`` wrote in this session: never handed out again as free.
        self.put_records: set[int] = set()
        # The open partner session: its id, the card's last object for it, the records
        # its change list named (None: not asked) and the EF.ADN records it wrote.
        self._partner: bytes | None = None
        self._session_last: bytes | None = None
        self._listed: set[int] | None = None
        self._wrote: dict[int, bytes] = {}
        # (partner, object) of the last STORESYNC of a partner session, until settle_copy.
        self._committed: tuple[bytes, bytes] | None = None
        # Records written since the copy was last saved (saved in one transaction).
        self._unsaved: dict[int, bytes] = {}
        # The host object this connection stored (its refresh).
        self._host_stored: bytes | None = None
        # The copy's free records were checked on the card during this partner session.
        self._slots_checked = False

    @property
    def alpha_len(self) -> int:
        """Bytes of the alpha identifier in each ADN record (record length − 14)."""
        return self.record_len - 14

    @classmethod
    async def open(
        cls, link: CardLink, state: CardStateDB, *, pin: str | None, host_partner: bytes
    ) -> PhonebookCard:
        """Open a logical channel, read the ICCID and select EF.ADN there, verify ``pin``.

        The link must be open. A wrong PIN raises ``PinRejected`` (tries left
        attached); nothing here ever retries a PIN. Everything happens on one
        fresh logical channel (channel 0 where the card has none): it starts at
        the MF, so the ICCID costs no SELECT of the MF, and it keeps EF.ADN
        selected for the partner's session (or the refresh) whatever other
        terminals select on channel 0. Close with ``close()``.
        """
        if not 1 <= len(host_partner) <= 16:
            raise errors.InvalidRequest("host partner id must be 1..16 bytes")
        # Channel 0's current file is everyone's: keep other programs off the card until
        # the session runs on a channel of its own (new_sync), or to the end (close).
        await link.hold()
        try:
            return await cls._open_held(link, state, pin=pin, host_partner=host_partner)
        except BaseException:
            with contextlib.suppress(errors.CardioError):
                await link.release()
            raise

    @classmethod
    async def _open_held(
        cls, link: CardLink, state: CardStateDB, *, pin: str | None, host_partner: bytes
    ) -> PhonebookCard:
        sim0 = Sim(link)
        adn = await sim0.open_channel()
        if not adn.channel:
            adn = sim0  # one Sim per channel: channel 0's current file is tracked once
        try:
            iccid, info = await _identify(adn, pin)
        except BaseException:
            if adn.channel:
                with contextlib.suppress(errors.CardioError):  # keep the first error
                    await adn.close_channel()
            raise
        log.info("card ready", iccid=iccid, records=info.record_count)
        return cls(
            link,
            sim0,
            adn,
            state,
            iccid=iccid,
            records=info.record_count,
            record_len=info.record_length,
            host_partner=host_partner,
        )

    async def pin_tries_left(self) -> int | None:
        """PIN tries left (None: verified already on this card); EF.ADN stays selected."""
        tries = await self._adn.pin_tries_left()
        if self._adn.cla == CLA_GSM:  # a GSM card tells in the MF's answer: back to EF.ADN
            await self._adn.select_path(ADN_PATH[1:])
        return tries

    async def verify_pin(self, pin: str) -> None:
        """VERIFY CHV1 (``PinRejected`` with the tries left, ``CardBlocked``); never retried."""
        await self._adn.verify_pin(pin)

    async def close(self) -> None:
        """Save writes not saved yet, close the logical channels this object opened
        (the link stays open)."""
        try:
            self._flush()
        except errors.CardioError as exc:  # StateError: the card holds them; a refresh reads them
            log.warning("local copy not saved", error=str(exc))
        sims = (self._host_sim, self._session, self._adn)
        for sim in {id(s): s for s in sims if s is not None}.values():
            if sim.channel:
                try:
                    await sim.close_channel()
                except errors.CardioError as exc:  # the card may be gone already
                    log.info("channel close failed", channel=sim.channel, error=str(exc))
        self._host_sim = self._session = None
        self._sync = None
        with contextlib.suppress(errors.CardioError):  # a card gone has ended the hold
            await self.link.release()

    async def _session_sim(self) -> Sim:
        if self._session is None:
            self._session = self._adn
            self._sync = CardSync(self._session)
        return self._session

    # --- the local copy ---------------------------------------------------------

    def cached(self) -> dict[int, bytes]:
        """The local copy as last refreshed or written (all records, raw)."""
        if self._copy is None:
            raise errors.InvalidRequest("local copy not loaded: call refresh() first")
        return dict(self._copy)

    def cached_or_none(self) -> dict[int, bytes] | None:
        """The local copy as it stands (possibly stale: no card access), or None if none."""
        if self._copy is None:
            self._copy = self._state.copy(self.iccid, self.records, self.record_len)
        return None if self._copy is None else dict(self._copy)

    async def refresh(self) -> RefreshStats:
        """Bring the local copy up to date with as few APDUs as the card allows."""
        start = self.link.apdu_count
        if self._plain is not None:
            # A plain SIM whose session's NEWSYNC just read it in full: that read (plus
            # the session's own writes, which the copy follows) is as fresh as another
            # would be, and another costs a whole EF.ADN of APDUs.
            return RefreshStats(False, 0, 0)
        sim = None if self.change_detection is False else await self._host_channel()
        if sim is None:
            # No sync commands, or they would disturb the partner session on the only channel
            # left: plain reads never do.
            content = await self._full_read(self._adn)
            self._store_copy(content, replace=True, keep_host=True)
            return RefreshStats(True, self.records, self.link.apdu_count - start)
        sync = CardSync(sim)
        try:
            result = await sync.new_sync(self.host_partner, DEFAULT_DB)
        except errors.SyncUnsupported:
            self.change_detection = False
            return await self.refresh()
        self.change_detection = True
        content, full, changed = await self._catch_up(sync, result)
        # Pending first: a crash before the next save still leaves a provable copy. The
        # card just proved result.last: it is the copy's last object now, whichever of
        # (last, pending) it was, so a second interruption still leaves a provable copy.
        # (No separate promotion: the next save records the object the card then proves.)
        # The phone's own writes kept for proving are then in the host's baseline: dropped.
        self._store_copy(
            content,
            replace=True,
            host_last=result.last,
            host_pending=result.proposed,
            drop_own_writes=True,
        )
        await sync.store_sync(result.proposed)
        self._host_stored = result.proposed
        log.info("local copy refreshed", full=full, changed=changed)
        return RefreshStats(full, changed, self.link.apdu_count - start)

    async def _catch_up(
        self, sync: CardSync, result: NewSyncResult
    ) -> tuple[dict[int, bytes], bool, int]:
        """The card's EF.ADN now: (content, rebuilt from nothing, records read or learnt).

        From the saved copy plus the host's change list when the card proves the
        copy's object; from the list alone when the host has no entry on the card
        (then it names every non-empty record); else by reading every record.
        Never by more APDUs than a full read, unless the phone's own writes it
        counted on proving turn out written by others (then the list's pages and
        one NEWSYNC more).
        """
        last, pending = self._state.host_objects(self.iccid)
        base: dict[int, bytes] | None = None
        if result.last is None:
            base = dict.fromkeys(range(1, self.records + 1), self._empty_record)
        elif result.last in (last, pending):
            base = self._state.copy(self.iccid, self.records, self.record_len)
        pages = -(-result.changes // MAX_ENTRIES_PER_PAGE)
        reader = self._reader()
        # The witness goes on channel 0: only where the card has logical channels.
        owns = self._state.own_writes(self.iccid) if self._adn.channel else {}
        provable = len({r for own in owns.values() for r in own.records})
        if base is None or pages + result.changes - provable >= self.records:
            return await self._full_read(reader), True, self.records
        listed = await sync.changes()
        proven = await self._proven_own_writes(listed, owns)
        for change in listed:
            known = proven.get(change.record)
            base[change.record] = (
                known if known is not None else await self._current(reader, change)
            )
        return base, result.last is None, result.changes

    async def _proven_own_writes(
        self, listed: list[Change], owns: dict[bytes, OwnWrites]
    ) -> dict[int, bytes]:
        """Listed records the phone wrote itself in a partner's sessions and that nobody
        has written since: their bytes, known without a READ.

        Asked after the host's NEWSYNC, so a write by anyone from then on stays listed
        for the host: a partner's baseline holds the phone's writes, so its change
        list names every record written by anyone else since (card.md section 4:
        completeness; writes by others during its session are reported at its next
        sync). Only when it saves more READs than it costs. On channel 0, never
        stored: a NEWSYNC alone changes nothing in the card's table, and its list is
        frozen when it is sent, so what other terminals do on channel 0 meanwhile
        does not matter; the sessions open on the phone's own channels stay
        untouched. (Where the card has logical channels, terminals keep their
        sessions off channel 0, card.md section 4.)
        """
        wanted = {c.record for c in listed if c.kind is not ChangeKind.DELETED}
        out: dict[int, bytes] = {}
        if len(wanted) <= _WITNESS_COST:
            return out
        witness = CardSync(self._sim0)
        for own in owns.values():
            candidates = {r: raw for r, raw in own.records.items() if r in wanted and r not in out}
            if len(candidates) <= _WITNESS_COST:
                continue
            # Channel 0 is everyone's: another terminal's NEWSYNC between ours and its
            # GETCHANGES would replace the session whose list we read.
            async with self.link.holding():
                theirs = await witness.new_sync(own.partner, DEFAULT_DB)  # never stored
                if theirs.last != own.obj:
                    continue
                written = {c.record for c in await witness.changes()}
            out.update((r, raw) for r, raw in candidates.items() if r not in written)
        return out

    @property
    def _empty_record(self) -> bytes:
        return bytes([_EMPTY]) * self.record_len

    async def _current(self, reader: Sim, change: Change) -> bytes:
        """A listed record's bytes: '03' means empty now (card.md section 4), else READ."""
        if change.kind is ChangeKind.DELETED:
            return self._empty_record
        return await reader.read_record(change.record)

    def _reader(self) -> Sim:
        """Where records are read: the session's channel once open (EF.ADN selected there)."""
        if self._session is not None:
            return self._session
        assert self._host_sim is not None
        return self._host_sim

    async def _host_channel(self) -> Sim | None:
        """Where the host's own sync commands go: EF.ADN's channel while no partner session
        is open; beside one, a channel of its own (sync commands only: reads go over the
        session's channel). None when no channel is left: a session there would absorb
        other terminals' writes on channel 0 as the host's own."""
        if self._host_sim is None:
            if not self._session_open:
                self._host_sim = self._adn
            elif not self._no_channels:
                sim = await self._sim0.open_channel()
                if sim.channel:
                    self._host_sim = sim
                else:
                    self._no_channels = True  # don't ask again: every MANAGE CHANNEL costs one
        return self._host_sim

    async def _full_read(self, sim: Sim) -> dict[int, bytes]:
        return {n: await sim.read_record(n) for n in range(1, self.records + 1)}

    def _store_copy(
        self,
        content: dict[int, bytes],
        *,
        replace: bool,
        host_last: bytes | None = None,
        host_pending: bytes | None = None,
        keep_host: bool = False,
        drop_own_writes: bool = False,
    ) -> None:
        if keep_host:
            host_last, host_pending = self._state.host_objects(self.iccid)
        self._state.save_copy(
            self.iccid,
            self.records,
            self.record_len,
            content,
            host_last=host_last,
            host_pending=host_pending,
            replace=replace,
            drop_own_writes=drop_own_writes,
        )
        self._copy = dict(content)
        self._unsaved.clear()  # the whole copy was just saved
        self._refreshed = True

    # --- a partner's session (the three commands, or their host-side emulation) ---

    async def new_sync(self, partner: bytes, db: int = DEFAULT_DB) -> NewSyncResult:
        """NEWSYNC for ``partner``: last object (None: slow), proposed object, change count."""
        if db != DEFAULT_DB:
            raise errors.InvalidRequest("only EF.ADN (6F3A) is synchronised")
        self.put_records = set()
        self._partner, self._wrote, self._committed = partner, {}, None
        self._session_last, self._listed = None, None
        self._slots_checked = False
        if self._host_sim is self._adn:
            self._host_sim = None  # the partner's session takes that channel
        await self._session_sim()
        assert self._sync is not None
        if self.change_detection is not False:
            try:
                result = await self._sync.new_sync(partner, db)
            except errors.SyncUnsupported:
                self.change_detection = False
                log.info("card has no sync commands: host-side change detection", iccid=self.iccid)
            else:
                self.change_detection = True
                self._session_open = True
                self._session_last = result.last
                if self._session is not self._sim0:
                    # Our session, reads and writes run on a channel of our own now: other
                    # programs may use the card between two commands (docs/cardio.md).
                    await self.link.release()
                return result
        return await self._plain_new_sync(partner, db)

    async def _plain_new_sync(self, partner: bytes, db: int) -> NewSyncResult:
        async def read_all() -> dict[int, bytes]:
            content = await self._full_read(await self._session_sim())
            self._store_copy(content, replace=True, keep_host=True)
            return content

        plain = HostSync(self._state, self.iccid, read_all)
        result = await plain.new_sync(partner, db)
        self._plain = plain
        self._session_open = True
        return result

    async def changes(self) -> list[Change]:
        """The session's frozen change list, ascending by record number."""
        if self._plain is not None:
            return await self._plain.changes()
        if self._sync is None:
            raise errors.InvalidRequest("no session: call new_sync() first")
        listed = await self._sync.changes()
        self._listed = {c.record for c in listed}
        return listed

    async def read_record(self, number: int) -> bytes:
        """READ RECORD on the session channel; the local copy follows."""
        raw = await (await self._session_sim()).read_record(number)
        if self._copy is not None:
            self._copy[number] = raw
        return raw

    async def write_record(self, number: int, raw: bytes) -> None:
        """UPDATE RECORD on the session channel (a write of the session's own)."""
        await (await self._session_sim()).update_record(number, raw)
        self._wrote[number] = raw
        if self._copy is not None:
            self._copy[number] = raw
            self._unsaved[number] = raw  # saved with the sync's other writes, in one transaction
        if self._plain is not None:
            self._plain.wrote(number, raw)

    async def store_sync(self, sync_object: bytes) -> None:
        """STORESYNC: the partner now holds the card as it is (minus others' writes)."""
        if self._plain is not None:
            await self._plain.store_sync(sync_object)
            self._plain = None
        else:
            if self._sync is None:
                raise errors.InvalidRequest("no session: call new_sync() first")
            await self._sync.store_sync(sync_object)
            if self._partner is not None:
                self._committed = (self._partner, sync_object)
        self._session_open = False
        self._slots_checked = False

    async def settle_copy(self) -> None:
        """After a partner's STORESYNC: save the session's writes to the local copy and,
        with them, the records the phone wrote in that partner's sessions (one transaction).

        No APDU: the writes are the partner's own, so they stay listed for the host's
        own id, and the next refresh proves them by that partner's change list instead
        of reading them back (``_proven_own_writes``).
        """
        committed, self._committed = self._committed, None
        own = None if committed is None else self._own_writes_after(*committed)
        self._wrote = {}
        self._flush(own)

    def _own_writes_after(self, partner: bytes, obj: bytes) -> OwnWrites:
        """The partner's own writes once ``obj`` is its last object: this session's, and
        those kept from before that its change list did not name (unchanged since)."""
        kept: dict[int, bytes] = {}
        old = self._state.own_writes(self.iccid).get(partner)
        if old is not None and old.obj == self._session_last and self._listed is not None:
            kept = {r: raw for r, raw in old.records.items() if r not in self._listed}
        return OwnWrites(partner, obj, kept | self._wrote)

    def _flush(self, own: OwnWrites | None = None) -> None:
        """Save the records written since the copy was last saved, and a partner's own
        writes after its STORESYNC (one transaction)."""
        if self._unsaved or own is not None:
            self._state.put_records(self.iccid, self._unsaved, own)
            self._unsaved.clear()

    # --- entries: what the records mean, and writes that keep EF.EXT1 chains whole ---

    async def entry(self, number: int, raw: bytes) -> Contact | Unreadable | None:
        """Record ``number`` (its bytes ``raw``) decoded, long numbers whole; None if empty."""
        return await entries.decode_entry(self, number, raw)

    async def put(self, number: int | None, name: str, phone: str) -> Written | Refused:
        """Store a contact in record ``number`` (None: a free record); the name is shortened
        to fit. A number over 20 digits gets an EF.EXT1 chain; a refusal writes nothing."""
        return await entries.put(self, number, name, phone)

    async def delete(self, number: int) -> None:
        """Empty record ``number`` and release the EF.EXT1 chain it pointed at."""
        await entries.delete(self, number)

    async def free_record(self, taken: set[int]) -> int | None:
        """An empty record not in ``taken``, checked on the card (the copy may be stale).

        The copy can miss a record another terminal emptied since it was last
        refreshed; when it shows no room, one refresh settles it before "full".
        """
        if self._copy is None:
            await self.refresh()
            self._slots_checked = True
        if not self._slots_checked and self._host_stored is not None:
            await self._check_slots()
        for attempt in range(2):
            assert self._copy is not None
            for n in range(1, self.records + 1):
                if n in taken or not _is_empty(self._copy[n]):
                    continue
                if self._slots_checked or _is_empty(await self.read_record(n)):
                    return n
            if attempt == 0 and not self._refreshed:
                await self.refresh()
                self._slots_checked = True
        return None

    async def _check_slots(self) -> None:
        """After this connection's refresh: one NEWSYNC for the host lists every record
        written since (by anyone), so no free record needs a READ of its own.

        Costs 2 APDUs (+ GETCHANGES, and a READ per free record written meanwhile) for
        the rest of the partner session, instead of one READ per new record. Only the
        records the copy shows free matter here (no other is handed out): the rest,
        the session's own writes among them, stay listed for the host's next refresh.
        The session opened here on the host's channel is never stored: it changes nothing.
        """
        if self._host_sim is None or not self._host_sim.channel or self._copy is None:
            return
        sync = CardSync(self._host_sim)
        result = await sync.new_sync(self.host_partner, DEFAULT_DB)
        if result.last != self._host_stored:
            self._host_stored = None  # not ours any more: check each record as handed out
            return
        for change in await sync.changes():
            if change.kind is ChangeKind.DELETED or _is_empty(self._copy[change.record]):
                self._copy[change.record] = await self._current(self._reader(), change)
        self._slots_checked = True

    async def read_ext1_chain(self, first: int) -> dict[int, bytes]:
        """The EF.EXT1 records of the chain starting at ``first`` (numbers over 20 digits).

        Stops at the end marker, at a record already read (a loop: the codec reports
        it), or at 254.
        """

        async def follow(sim: Sim) -> dict[int, bytes]:
            chain: dict[int, bytes] = {}
            n = first
            while 1 <= n <= 254 and n not in chain:
                raw = await sim.read_record(n)
                chain[n] = raw
                n = raw[-1] if raw else 0xFF
            return chain

        return await self._on_ext1(follow)

    async def ext1_free(self) -> list[int]:
        """EF.EXT1 records that are free (all FF), read once per connection."""
        if self._ext1_free is None:
            records = await self._on_ext1(self._read_all_ext1)
            self._ext1_free = [n for n, raw in sorted(records.items()) if _is_empty(raw)]
        return self._ext1_free

    async def write_ext1(self, records: dict[int, bytes]) -> None:
        """UPDATE RECORD on EF.EXT1 (chains of long numbers), then back to EF.ADN."""

        async def write(sim: Sim) -> None:
            for n, raw in sorted(records.items()):
                await sim.update_record(n, raw)

        await self._on_ext1(write)
        if self._ext1_free is not None:
            taken = {n for n, raw in records.items() if not _is_empty(raw)}
            freed = {n for n, raw in records.items() if _is_empty(raw)}
            self._ext1_free = sorted((set(self._ext1_free) - taken) | freed)

    async def _read_all_ext1(self, sim: Sim) -> dict[int, bytes]:
        count = sim.current.record_count if sim.current else 0
        return {n: await sim.read_record(n) for n in range(1, count + 1)}

    async def _on_ext1(self, work: Callable[[Sim], Awaitable[_T]]) -> _T:
        """Run ``work`` with EF.EXT1 selected on the session channel, then EF.ADN again."""
        sim = await self._session_sim()
        adn = sim.current
        await sim.select(EXT1_FID)
        try:
            result = await work(sim)
        except BaseException:
            with contextlib.suppress(errors.CardioError):  # keep the first error
                await sim.select_quiet([ADN_PATH[-1]])
            raise
        await sim.select_quiet([ADN_PATH[-1]])
        sim.current = adn
        return result

    def note_empty(self, number: int) -> None:
        """The card said record ``number`` is empty now (a ``03`` change): the copy follows."""
        # Memory only: the saved copy changes only with what the card proves (a
        # refresh) or what the phone itself writes, never with a frozen list's news.
        if self._copy is not None:
            self._copy[number] = b"\xff" * self.record_len
