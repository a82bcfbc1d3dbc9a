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
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog

from cardio import errors as card_errors
from cardio.link import CardLink
from cardio.localcopy import CardStateDB, StateError
from cardio.session import PhonebookCard
from daemon.config import Config, ConfigError, PdaConfig, read_pin_file
from daemon.conversation import DB_ADN, Conversation, ProgressFn, Run, SyncError, converse
from daemon.pinguard import PinGuard
from daemon.result import Counts, SyncFailure, SyncResult
from daemon.runlock import DEFAULT_WAIT, hold, locks_for
from syncproto import ProtocolError, RemoteProtocolError, RequestedMode
from syncproto.codes import ErrorCode
from transports import (
    ConnectFailed,
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

CONNECT_TIMEOUT = 15.0


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
            raise SyncError(ErrorCode.NO_CARD, str(exc)) from exc
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


def _abort_for(exc: BaseException) -> tuple[ErrorCode, str] | None:
    """The Abort that tells the PDA why the phone gives up; None when there is no one to tell."""
    match exc:
        case SyncError():  # the PDA's own Abort included: Conversation sends none back
            return exc.code, exc.message
        case asyncio.CancelledError():  # sync/cancel, card pulled, time-out, daemon stopping
            return ErrorCode.CANCELLED, "the phone cancelled the sync"
        case RemoteProtocolError():  # the PDA broke the protocol: tell it how
            return ErrorCode.PROTOCOL_ERROR, str(exc)
        case TransportError():  # the link itself failed: nothing would arrive
            return None
        case card_errors.CardioError() | StateError():
            return ErrorCode.INTERNAL, f"phone-side card failure: {exc}"
        case Exception():  # a message we may not send (LocalProtocolError), a bug
            return ErrorCode.INTERNAL, f"phone-side failure: {type(exc).__name__}: {exc}"
    return None  # KeyboardInterrupt, SystemExit: the process is going


def _requested_mode(mode: str) -> RequestedMode:
    if mode not in {m.value for m in RequestedMode}:
        modes = ", ".join(m.value for m in RequestedMode)
        raise SyncError(ErrorCode.BAD_REQUEST, f"unknown mode {mode!r} (one of {modes})")
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
    wait: float = DEFAULT_WAIT,
) -> SyncResult:
    """Run one whole sync; never raises for sync failures: the result says ``ok``/``error``.

    Another sync holding the same card or PDA is waited for up to ``wait`` seconds,
    then the result is ``busy`` (see ``daemon.runlock``).
    """
    started = time.monotonic()
    started_at = _now()
    rid = request_id or secrets.token_hex(6)
    pda: PdaConfig | None = None
    run: Run | None = None
    error: SyncFailure | None = None
    try:
        requested = _requested_mode(mode)
        pda = config.pda(pda_name)
        run = Run(pda)
        with structlog.contextvars.bound_contextvars(sync_id=rid, pda=pda.name):
            async with hold(config.node.state_dir, locks_for(config, pda), wait):
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
        to_card=run.to_card if run else Counts(),
        conflicts=run.conflicts if run else 0,
        skipped=run.skipped if run else 0,
        set_aside=run.set_aside if run else 0,
        apdus=run.apdus if run else 0,
        duration_ms=round((time.monotonic() - started) * 1000),
        started_at=started_at,
        finished_at=_now(),
        error=error,
    )


async def _sync(config: Config, run: Run, requested: RequestedMode, progress: ProgressFn) -> None:
    pin = read_pin_file(config)
    guard = PinGuard(config.node.state_dir, config.card.pin_file)
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
                    guard=guard,
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
    run: Run,
    requested: RequestedMode,
    pin: str | None,
    progress: ProgressFn,
    guard: PinGuard | None = None,
) -> None:
    progress("card", 0, 1)
    card = await PhonebookCard.open(
        link, state, pin=None if guard else pin, host_partner=state.host_partner()
    )
    try:
        if guard is not None and pin is not None:
            await guard.verify(card, pin)  # the PIN rule: never wear the card's PIN out
        partner = bytes.fromhex(run.pda.device_id)[:16]
        ns = await card.new_sync(partner, DB_ADN)
        progress("card", 1, 1)
        progress("connect", 0, 1)
        try:
            raw = await open_transport(run.pda.address, timeout=CONNECT_TIMEOUT)
        except TransportTimeout as exc:
            raise SyncError(ErrorCode.PDA_UNREACHABLE, f"{run.pda.address}: {exc}") from exc
        try:
            peer = await tls_client(raw, identity, {run.pda.device_id})
            progress("connect", 1, 1)
            conv = Conversation(peer)
            try:
                await converse(
                    conv,
                    card,
                    run=run,
                    requested=requested,
                    last=ns.last,
                    proposed=ns.proposed,
                    progress=progress,
                )
            except BaseException as exc:
                # Stopped before Done: the PDA hears why instead of a bare close. Before
                # Committed it keeps its anchors; after, the Abort undoes nothing (the PDA
                # promoted on Committed, which came first: docs/protocol.md). Once
                # STORESYNC is out the daemon never cancels, so no commit is cut short here.
                if (why := _abort_for(exc)) is not None:
                    await conv.abort(*why)
                raise
            finally:
                await peer.close()  # close_notify, so the PDA sees an orderly end
        finally:
            await raw.close()
    finally:
        await card.close()
