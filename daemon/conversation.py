"""The phone's half of one sync conversation: Alert, card data, the PDA's ops, commit.

``converse`` runs steps 4-7 of DESIGN.md's "One sync" on a card whose session is
open and a PDA link that is authenticated. What is written to the card and how
(free records, EF.EXT1 chains) is ``cardio``'s business; this module maps the
protocol's messages onto ``PhonebookCard``'s calls and counts what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import structlog

from cardio.entries import Contact, Refused
from cardio.errors import CardioError
from cardio.session import PhonebookCard
from cardio.sync import ChangeKind
from daemon.config import PdaConfig
from daemon.errors import SyncError
from daemon.result import Counts
from syncproto import (
    Abort,
    Alert,
    AlertReply,
    Applied,
    CardData,
    CardDeleted,
    CardEntry,
    CardRecord,
    Committed,
    Delete,
    Done,
    Message,
    PdaOps,
    PhoneSession,
    Policy,
    Prepared,
    Put,
    Removed,
    RequestedMode,
    Skipped,
    State,
    Stored,
)
from syncproto.codes import REMOTE_CODES, ErrorCode
from syncproto.messages import MAX_ITEMS, wire_text
from transports import FrameLink

__all__ = [
    "DB_ADN",
    "MESSAGE_TIMEOUT",
    "Conversation",
    "ProgressFn",
    "Run",
    "SyncError",
    "converse",
]

log = structlog.get_logger(__name__)

ProgressFn = Callable[[str, int, int], None]
# Longest silence accepted from the PDA between two messages (its store work included).
MESSAGE_TIMEOUT = 120.0
DB_ADN = 0x6F3A


@dataclass
class Run:
    """What one sync has done so far: the result's numbers, also when it fails midway."""

    pda: PdaConfig
    mode: str | None = None
    to_card: Counts = field(default_factory=Counts)
    to_pda: Counts = field(default_factory=Counts)
    conflicts: int = 0
    skipped: int = 0
    set_aside: int = 0  # PDA files its store could not use (Done, protocol 1.1)
    apdus: int = 0
    # Records holding bytes we cannot decode (another phone's format): never written.
    unreadable: set[int] = field(default_factory=set)


class Conversation:
    """The phone's end of the wire: the sans-IO session plus the frame link."""

    def __init__(self, link: FrameLink) -> None:
        self.link = link
        self.session = PhoneSession()

    async def send(self, msg: Message) -> None:
        """Send one message (the session checks it is allowed now)."""
        await self.link.send(self.session.send(msg))

    async def recv(self) -> Message:
        """The PDA's next message; its Abort becomes a ``SyncError``."""
        try:
            async with asyncio.timeout(MESSAGE_TIMEOUT):
                frame = await self.link.recv()
        except TimeoutError:
            raise SyncError(
                ErrorCode.TIMEOUT,
                f"the PDA sent nothing for {MESSAGE_TIMEOUT:.0f} s; sync abandoned",
            ) from None
        msg = self.session.receive(frame)
        if isinstance(msg, Abort):
            # The PDA's word for why; a code it has no business sending (a config error
            # of ours, say) must not make the phone's exit status lie.
            code = msg.code if msg.code in REMOTE_CODES else ErrorCode.PROTOCOL_ERROR
            raise SyncError(
                ErrorCode(code), f"the PDA aborted the sync ({msg.code}): {msg.message}"
            )
        return msg

    async def abort(self, code: ErrorCode, message: str) -> None:
        """Tell the PDA the sync is over (best effort: the link may be gone).

        Sent once, while the session may still end that way: not after Done, nor back
        to a PDA that aborted itself; after a protocol error (either side's) it is the
        one message the session still allows.
        """
        session = self.session
        if session.abort is not None or session.state in (State.DONE, State.ABORTED):
            return
        with contextlib.suppress(Exception):
            await self.link.send(session.send(Abort(code, wire_text(message))))


async def converse(
    conv: Conversation,
    card: PhonebookCard,
    *,
    run: Run,
    requested: RequestedMode,
    last: bytes | None,
    proposed: bytes,
    progress: ProgressFn,
) -> None:
    """Alert, card data, apply the PDA's ops, commit; ``run`` records what happened."""
    cached = card.cached_or_none()
    # The PDA offers new records only up to this: without a copy the room is unknown, so
    # the phone says "all" and looks for room itself (which loads the copy for next time).
    free = sum(1 for raw in cached.values() if _empty(raw)) if cached else card.records
    await conv.send(
        Alert(
            iccid=card.iccid,
            db=DB_ADN,
            last=last,
            proposed=proposed,
            requested=requested,
            records=card.records,
            alpha_len=card.alpha_len,
            change_detection=bool(card.change_detection),
            free_records=free,
            policy=Policy(run.pda.conflict),
        )
    )
    reply = await conv.recv()
    assert isinstance(reply, AlertReply)  # the session enforces the order
    run.mode = reply.mode.value
    log.info("mode decided", mode=run.mode)

    entries = await _card_entries(card, run, progress)
    complete = run.mode != "fast"
    chunks = [entries[i : i + MAX_ITEMS] for i in range(0, len(entries), MAX_ITEMS)] or [[]]
    for i, chunk in enumerate(chunks):
        await conv.send(CardData(tuple(chunk), complete=complete, more=i < len(chunks) - 1))

    ops = await conv.recv()
    assert isinstance(ops, PdaOps)
    results = await _apply(card, ops, run, progress)
    await conv.send(Applied(tuple(results)))

    prepared = await conv.recv()
    assert isinstance(prepared, Prepared)
    progress("commit", 0, 1)
    await card.store_sync(proposed)
    await conv.send(Committed())
    done = await conv.recv()
    assert isinstance(done, Done)
    try:
        await card.settle_copy()
    except CardioError as exc:  # both ends committed; the next refresh reads what this missed
        log.warning("local copy not saved", error=str(exc))
    progress("commit", 1, 1)
    run.to_pda = Counts(done.added, done.modified, done.deleted)
    run.conflicts = done.conflicts
    # The PDA's count includes the ops the phone reported Skipped (card full, not encodable).
    run.skipped = done.skipped
    run.set_aside = done.set_aside or 0  # None: a 1.0 PDA, which does not count them


def _empty(raw: bytes) -> bool:
    return all(b == 0xFF for b in raw)


async def _wire_entry(card: PhonebookCard, run: Run, record: int, raw: bytes) -> CardEntry | None:
    """The record as the wire carries it; None for one set aside (unreadable) or empty."""
    entry = await card.entry(record, raw)
    if entry is None:
        return CardDeleted(record)
    if isinstance(entry, Contact):
        return CardRecord(record, entry.name, entry.number)
    # A record some other phone wrote in a form we cannot read: leave it alone on the card.
    log.warning("undecodable card record left out", record=record, error=entry.reason)
    run.unreadable.add(record)
    return None


async def _card_entries(card: PhonebookCard, run: Run, progress: ProgressFn) -> list[CardEntry]:
    out: list[CardEntry] = []
    if run.mode == "fast":
        changes = await card.changes()
        for i, change in enumerate(changes):
            progress("exchange", i, len(changes))
            if change.kind is ChangeKind.DELETED:  # '03' means empty now: nothing to read
                card.note_empty(change.record)
                entry: CardEntry | None = CardDeleted(change.record)
            else:
                raw = await card.read_record(change.record)
                entry = await _wire_entry(card, run, change.record, raw)
            if entry is not None:
                out.append(entry)
        progress("exchange", len(changes), len(changes))
        return out
    progress("exchange", 0, card.records)
    await card.refresh()
    for n, raw in sorted(card.cached().items()):
        if not _empty(raw):
            entry = await _wire_entry(card, run, n, raw)
            if entry is not None and not isinstance(entry, CardDeleted):
                out.append(entry)  # a complete listing names no deleted records
    progress("exchange", card.records, card.records)
    return out


async def _apply(
    card: PhonebookCard, ops: PdaOps, run: Run, progress: ProgressFn
) -> list[Stored | Removed | Skipped]:
    results: list[Stored | Removed | Skipped] = []
    for i, op in enumerate(ops.ops):
        progress("apply", i, len(ops.ops))
        if op.record is not None and op.record in run.unreadable:
            # Never overwrite what another phone wrote in a form we cannot read.
            results.append(Skipped(op.ref, f"record {op.record} holds data simsync cannot read"))
            continue
        if isinstance(op, Delete):
            await card.delete(op.record)
            run.to_card = replace(run.to_card, deleted=run.to_card.deleted + 1)
            results.append(Removed(op.ref))
            continue
        assert isinstance(op, Put)
        written = await card.put(op.record, op.name, op.number)
        if isinstance(written, Refused):
            results.append(Skipped(op.ref, wire_text(written.message)))
            continue
        if written.added:
            run.to_card = replace(run.to_card, added=run.to_card.added + 1)
        else:
            run.to_card = replace(run.to_card, modified=run.to_card.modified + 1)
        results.append(Stored(op.ref, written.record, written.name, op.number))
    progress("apply", len(ops.ops), len(ops.ops))
    return results
