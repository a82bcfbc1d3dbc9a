"""One whole sync, phone side: card handshake, connect, exchange, apply, commit.

The flow is DESIGN.md's "One sync, end to end". The result is exactly the
object of spec/mqtt.md (``to_pda``, ``to_card``, ``conflicts``, ``skipped``,
``apdus``, ``mode``, ``ok``, ``error``, ...), also on failure.

Crash safety comes from the order: the card's STORESYNC is sent only after the
PDA said ``Prepared`` (its pending anchor, map and data are durable), and the
PDA promotes pending to last only after ``Committed``. A crash anywhere leaves
both sides able to resume: at worst a change is exchanged twice, and both ends
match by content before adding anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from cardio import errors as card_errors
from cardio.codecs import (
    ADN_DIGITS,
    EXT1_RECORD_LEN,
    NO_EXT1,
    AdnRecord,
    CodecError,
    card_name,
)
from cardio.link import CardLink
from cardio.localcopy import CardStateDB, StateError
from cardio.session import PhonebookCard
from cardio.sync import ChangeKind
from daemon.config import Config, ConfigError, PdaConfig, read_pin_file
from daemon.errors import DaemonError
from daemon.result import Counts, SyncFailure, SyncResult
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
    ProtocolError,
    Put,
    Removed,
    RequestedMode,
    Skipped,
    Stored,
)
from syncproto.codes import REMOTE_CODES, ErrorCode
from syncproto.messages import MAX_ITEMS
from transports import (
    ConnectFailed,
    FrameLink,
    Identity,
    PeerRejected,
    RejectedByPeer,
    TransportClosed,
    TransportError,
    TransportTimeout,
    open_transport,
    tls_client,
)

__all__ = ["ProgressFn", "SyncError", "open_card_link", "phone_identity", "run_sync"]

log = structlog.get_logger(__name__)

ProgressFn = Callable[[str, int, int], None]
CONNECT_TIMEOUT = 15.0
# Longest silence accepted from the PDA between two messages (its store work included).
MESSAGE_TIMEOUT = 120.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
DB_ADN = 0x6F3A


class SyncError(DaemonError):
    """A sync that could not finish; ``code`` is one of spec/mqtt.md's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message


@dataclass
class _Counts:
    added: int = 0
    modified: int = 0
    deleted: int = 0

    def frozen(self) -> Counts:
        return Counts(self.added, self.modified, self.deleted)


@dataclass
class _Run:
    pda: PdaConfig
    mode: str | None = None
    to_card: _Counts = field(default_factory=_Counts)
    to_pda: Counts = field(default_factory=Counts)
    conflicts: int = 0
    skipped: int = 0
    apdus: int = 0
    # Records holding bytes we cannot decode (another phone's format): never written.
    unreadable: set[int] = field(default_factory=set)


def phone_identity(config: Config) -> Identity:
    """The phone's TLS identity (made on first use in ``state_dir/identity``)."""
    return Identity.load_or_create(config.node.state_dir / "identity")


@contextlib.asynccontextmanager
async def open_card_link(config: Config) -> AsyncIterator[CardLink]:
    """The configured card: a PC/SC reader, or an emulator image driven in-process."""
    link: CardLink
    if config.card.image is not None:
        from cardio.inproc import InProcessLink
        from simcard import ImageError, open_image

        try:
            card = open_image(config.card.image)
        except ImageError as exc:
            raise SyncError("no_card", str(exc)) from exc
        link = InProcessLink(card)
        try:
            await link.open()
            yield link
        finally:
            await link.close()
            card.close()
        return
    from cardio.pcsc import PcscLink

    link = PcscLink(config.card.reader or "")
    await link.open()
    try:
        yield link
    finally:
        await link.close()


def _error_for(exc: BaseException) -> tuple[ErrorCode, str]:
    """Map any failure to spec/mqtt.md's (code, message)."""
    match exc:
        case SyncError():
            return exc.code, exc.message
        case card_errors.PinRejected():
            left = "unknown" if exc.tries_left is None else exc.tries_left
            return ErrorCode.PIN_REJECTED, f"the card rejected the PIN; tries left: {left}"
        case card_errors.CardBlocked():
            return ErrorCode.CARD_BLOCKED, "the card's PIN is blocked; unblock it with the PUK"
        case card_errors.SecurityNotSatisfied():
            return (
                ErrorCode.PIN_REJECTED,
                "the card needs its PIN: set [card] pin_file in the config",
            )
        case card_errors.NoReader() | card_errors.NoCard() | card_errors.CardRemoved():
            return ErrorCode.NO_CARD, str(exc)
        case card_errors.ReaderGone() | card_errors.CardTimeout():
            return ErrorCode.NO_CARD, str(exc)
        case PeerRejected() | RejectedByPeer():
            return ErrorCode.PEER_REJECTED, str(exc)
        case TransportTimeout():
            return ErrorCode.TIMEOUT, str(exc)
        case ConnectFailed() | TransportClosed():
            return ErrorCode.PDA_UNREACHABLE, str(exc)
        case ProtocolError():
            return ErrorCode.PROTOCOL_ERROR, str(exc)
        case ConfigError():
            return ErrorCode.BAD_REQUEST, str(exc)
        case TransportError() | card_errors.CardioError() | StateError():
            return ErrorCode.INTERNAL, str(exc)
    return ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"


def _requested_mode(mode: str) -> RequestedMode:
    if mode not in {m.value for m in RequestedMode}:
        modes = ", ".join(m.value for m in RequestedMode)
        raise SyncError("bad_request", f"unknown mode {mode!r} (one of {modes})")
    return RequestedMode(mode)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def run_sync(
    config: Config,
    pda_name: str | None = None,
    mode: str = "auto",
    *,
    request_id: str | None = None,
    progress: ProgressFn | None = None,
) -> SyncResult:
    """Run one whole sync; never raises for sync failures: the result says ``ok``/``error``."""
    started = time.monotonic()
    started_at = _now()
    rid = request_id or secrets.token_hex(6)
    pda: PdaConfig | None = None
    run: _Run | None = None
    error: SyncFailure | None = None
    try:
        requested = _requested_mode(mode)
        pda = config.pda(pda_name)
        run = _Run(pda)
        with structlog.contextvars.bound_contextvars(sync_id=rid, pda=pda.name):
            await _sync(config, run, requested, progress or (lambda _p, _d, _t: None))
    except ConfigError as exc:
        code = ErrorCode.UNKNOWN_PDA if exc.key == "pda" else ErrorCode.BAD_REQUEST
        error = SyncFailure(code, str(exc))
    except Exception as exc:  # every failure becomes a result; the caller logs nothing twice
        code, message = _error_for(exc)
        log.warning("sync failed", code=str(code), error=message)
        error = SyncFailure(code, message)
    return SyncResult(
        id=rid,
        pda=pda.name if pda else pda_name,
        mode=run.mode if run else None,
        to_pda=run.to_pda if run else Counts(),
        to_card=run.to_card.frozen() if run else Counts(),
        conflicts=run.conflicts if run else 0,
        skipped=run.skipped if run else 0,
        apdus=run.apdus if run else 0,
        duration_ms=round((time.monotonic() - started) * 1000),
        started_at=started_at,
        finished_at=_now(),
        error=error,
    )


async def _sync(config: Config, run: _Run, requested: RequestedMode, progress: ProgressFn) -> None:
    pin = read_pin_file(config)
    identity = phone_identity(config)
    state = CardStateDB(config.node.state_dir / "cards.sqlite")
    try:
        async with open_card_link(config) as link:
            try:
                await _sync_card(
                    link,
                    state=state,
                    identity=identity,
                    run=run,
                    requested=requested,
                    pin=pin,
                    progress=progress,
                )
            finally:
                run.apdus = link.apdu_count
    finally:
        state.close()


async def _sync_card(
    link: CardLink,
    *,
    state: CardStateDB,
    identity: Identity,
    run: _Run,
    requested: RequestedMode,
    pin: str | None,
    progress: ProgressFn,
) -> None:
    progress("card", 0, 1)
    card = await PhonebookCard.open(link, state, pin=pin, host_partner=state.host_partner())
    try:
        partner = bytes.fromhex(run.pda.device_id)[:16]
        ns = await card.new_sync(partner, DB_ADN)
        progress("card", 1, 1)
        progress("connect", 0, 1)
        try:
            raw = await open_transport(run.pda.address, timeout=CONNECT_TIMEOUT)
        except TransportTimeout as exc:
            raise SyncError("pda_unreachable", f"{run.pda.address}: {exc}") from exc
        try:
            peer = await tls_client(raw, identity, {run.pda.device_id})
            progress("connect", 1, 1)
            conv = _Conversation(peer)
            try:
                await _converse(
                    conv,
                    card,
                    run=run,
                    requested=requested,
                    last=ns.last,
                    proposed=ns.proposed,
                    progress=progress,
                )
            except SyncError as exc:
                if not conv.session.finished:
                    await conv.abort(exc.code, exc.message)
                raise
            except (card_errors.CardioError, StateError) as exc:
                await conv.abort(ErrorCode.INTERNAL, f"phone-side card failure: {exc}")
                raise
            finally:
                await peer.close()  # close_notify, so the PDA sees an orderly end
        finally:
            await raw.close()
    finally:
        await card.close()


class _Conversation:
    """The phone's end of the wire: the sans-IO session plus the frame link."""

    def __init__(self, link: FrameLink) -> None:
        self.link = link
        self.session = PhoneSession()

    async def send(self, msg: Message) -> None:
        await self.link.send(self.session.send(msg))

    async def recv(self) -> Message:
        try:
            async with asyncio.timeout(MESSAGE_TIMEOUT):
                frame = await self.link.recv()
        except TimeoutError:
            raise SyncError(
                "timeout", f"the PDA sent nothing for {MESSAGE_TIMEOUT:.0f} s; sync abandoned"
            ) from None
        msg = self.session.receive(frame)
        if isinstance(msg, Abort):
            # The PDA's word for why; a code it has no business sending (a config error
            # of ours, say) must not make the phone's exit status lie.
            code = msg.code if msg.code in REMOTE_CODES else ErrorCode.PROTOCOL_ERROR
            raise SyncError(code, f"the PDA aborted the sync ({msg.code}): {msg.message}")
        return msg

    async def abort(self, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.link.send(self.session.send(Abort(code, message[:500])))


async def _converse(
    conv: _Conversation,
    card: PhonebookCard,
    *,
    run: _Run,
    requested: RequestedMode,
    last: bytes | None,
    proposed: bytes,
    progress: ProgressFn,
) -> None:
    cached = card.cached_or_none()
    free = sum(1 for raw in cached.values() if _empty(raw)) if cached else 0
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
    progress("commit", 1, 1)
    run.to_pda = Counts(done.added, done.modified, done.deleted)
    run.conflicts = done.conflicts
    # The PDA's count includes the ops the phone reported Skipped (card full, not encodable).
    run.skipped = done.skipped


def _empty(raw: bytes) -> bool:
    return all(b == 0xFF for b in raw)


async def _entry(card: PhonebookCard, record: int, raw: bytes) -> CardEntry | None:
    try:
        rec = AdnRecord.decode(raw)
        if rec is not None and rec.ext1 != NO_EXT1 and len(rec.digits) == ADN_DIGITS:
            # A number over 20 digits continues in EF.EXT1: never send it cut short.
            chain = await card.read_ext1_chain(rec.ext1)
            rec = AdnRecord.decode(raw, ext1_reader=chain.__getitem__)
    except (CodecError, KeyError) as exc:
        # A record some other phone wrote in a form we cannot read: leave it alone on the card.
        log.warning("undecodable card record left out", record=record, error=str(exc))
        return None
    if rec is None:
        return CardDeleted(record)
    # GSM 7-bit carries LF/CR; a name crossing the wire is one line of text.
    name = _CONTROL.sub(" ", rec.name)
    return CardRecord(record, name, rec.number)


async def _card_entries(card: PhonebookCard, run: _Run, progress: ProgressFn) -> list[CardEntry]:
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
                entry = (
                    CardDeleted(change.record)
                    if _empty(raw)
                    else await _entry(card, change.record, raw)
                )
            if entry is None:
                run.unreadable.add(change.record)
            else:
                out.append(entry)
        progress("exchange", len(changes), len(changes))
        return out
    progress("exchange", 0, card.records)
    await card.refresh()
    for n, raw in sorted(card.cached().items()):
        if not _empty(raw):
            entry = await _entry(card, n, raw)
            if entry is None:
                run.unreadable.add(n)
            else:
                out.append(entry)
    progress("exchange", card.records, card.records)
    return out


async def _apply(
    card: PhonebookCard, ops: PdaOps, run: _Run, progress: ProgressFn
) -> list[Stored | Removed | Skipped]:
    results: list[Stored | Removed | Skipped] = []
    taken: set[int] = set()
    for i, op in enumerate(ops.ops):
        progress("apply", i, len(ops.ops))
        if op.record is not None and op.record in run.unreadable:
            # Never overwrite what another phone wrote in a form we cannot read.
            results.append(Skipped(op.ref, f"record {op.record} holds data simsync cannot read"))
            continue
        if isinstance(op, Delete):
            old_chain = await _chain_of(card, op.record)
            await card.write_record(op.record, b"\xff" * card.record_len)
            await _free_chain(card, old_chain)
            run.to_card.deleted += 1
            results.append(Removed(op.ref))
            continue
        assert isinstance(op, Put)
        name = card_name(op.name, card.alpha_len)
        try:
            rec = AdnRecord(name, op.number)
            raw, chain = await _encode(card, rec)
        except CodecError as exc:
            results.append(Skipped(op.ref, f"the card cannot hold it: {exc}"[:500]))
            continue
        except _Ext1FullError:
            results.append(Skipped(op.ref, "no free EF.EXT1 record for a number over 20 digits"))
            continue
        record = op.record
        if record is None:
            record = await card.free_record(taken)
            if record is None:
                results.append(Skipped(op.ref, "card full"))
                continue
            run.to_card.added += 1
        else:
            run.to_card.modified += 1
        taken.add(record)
        # New chain first, then the record that points at it, then the old chain's
        # release: a crash in between leaks an EXT1 record at worst, never a digit.
        old_chain = await _chain_of(card, record)
        if chain:
            await card.write_ext1(dict(chain))
        await card.write_record(record, raw)
        await _free_chain(card, old_chain - {n for n, _ in chain})
        results.append(Stored(op.ref, record, name, op.number))
    progress("apply", len(ops.ops), len(ops.ops))
    return results


class _Ext1FullError(Exception):
    """EF.EXT1 has no free record left for a long number's chain."""


async def _encode(card: PhonebookCard, rec: AdnRecord) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The record's bytes and, for a number over 20 digits, its EF.EXT1 chain."""
    if len(rec.digits) <= ADN_DIGITS:
        return rec.encode(card.alpha_len), []
    free = iter(list(await card.ext1_free()))

    def alloc() -> int:
        try:
            return next(free)
        except StopIteration:
            raise _Ext1FullError from None

    return rec.encode_with_ext(card.alpha_len, alloc)


async def _chain_of(card: PhonebookCard, record: int) -> set[int]:
    """EF.EXT1 records the card's record ``record`` links to now (checked on the card)."""
    cached = card.cached_or_none()
    if cached is not None and _ext1_of(cached.get(record, b"")) is None:
        return set()  # the copy may be stale, but a stale miss only leaks a record
    first = _ext1_of(await card.read_record(record))
    if first is None:
        return set()
    return set(await card.read_ext1_chain(first))


def _ext1_of(raw: bytes) -> int | None:
    """The first EXT1 record a full 20-digit ADN record links to, if any."""
    try:
        rec = AdnRecord.decode(raw) if raw else None
    except CodecError:
        return None
    if rec is None or rec.ext1 == NO_EXT1 or len(rec.digits) != ADN_DIGITS:
        return None
    return rec.ext1


async def _free_chain(card: PhonebookCard, chain: set[int]) -> None:
    if chain:
        await card.write_ext1(dict.fromkeys(sorted(chain), b"\xff" * EXT1_RECORD_LEN))
