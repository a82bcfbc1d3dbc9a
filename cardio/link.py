"""The one async interface to a card, and the T=0 procedure-byte rules.

Every implementation supplies raw ``_exchange(bytes) -> bytes`` plus open, close
and reset; ``CardLink.transmit`` hides ``61xx``/``9Fxx`` (GET RESPONSE) and
``6Cxx`` (re-send with the right Le) so nothing above this module ever sees a
procedure status word (card.md §1). Each command with its GET RESPONSE chain is
one transaction (``_begin``/``_end``) unless ``hold()`` keeps the card longer.

Ending a transaction can fail after its commands succeeded (the reader or the PC/SC
service gone right after STORESYNC's answer). The card has then done the work and
its answers are known, so they are returned; the failure is logged as a warning and
the link counts as lost: every later command raises that error again, sending nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import structlog

from cardio import errors
from cardio.apdu import SW1_GSM_MORE_DATA, SW1_MORE_DATA, SW1_WRONG_LE, Command, Response

INS_GET_RESPONSE = 0xC0
# A card that keeps answering procedure bytes is broken; stop instead of looping forever.
MAX_PROCEDURE_ROUNDS = 32

log = structlog.get_logger(__name__)


def get_response_for(command: Command, length: int) -> Command:
    """GET RESPONSE that fits ``command``: ``A0 C0`` after ``A0``, ``0X C0`` after ``0X``,
    ``8X C0`` after ``8X``.

    card.md §1 lets the card take ``0X C0`` or ``8X C0`` after a sync command; ``8X``
    is the one a SIM-only card (``6E 00`` to every ``0X``) can take as well.
    """
    if command.cla == 0xA0:
        cla = 0xA0
    elif command.cla & 0x80:
        cla = 0x80 | command.channel
    else:
        cla = command.channel
    return Command(cla, INS_GET_RESPONSE, 0, 0, b"", length or 256)


class CardLink(ABC):
    """An async connection to one card; use as ``async with link:``.

    Counters (``apdu_count``, ``bytes_sent``, ``bytes_received``) count raw
    exchanges including GET RESPONSE and ``6Cxx`` re-sends: that is the cost of
    the slow card link the daemon tries to minimise.
    """

    def __init__(self) -> None:
        self.apdu_count = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self._atr = b""
        self._is_open = False
        # One command (with its GET RESPONSE chain) at a time: an interleaved command
        # would discard the card's pending response.
        self._lock = asyncio.Lock()
        self._held = False  # hold() is in force: no transaction per command
        # Why the link is unusable though open: ending a transaction failed (see module doc).
        self._lost: errors.LinkError | None = None

    # --- what implementations provide -------------------------------------

    @abstractmethod
    async def _open(self) -> bytes:
        """Connect and return the ATR."""

    @abstractmethod
    async def _close(self) -> None:
        """Disconnect, leaving the card powered (no session-ending reset)."""

    @abstractmethod
    async def _reset(self) -> bytes:
        """Warm reset; return the new ATR."""

    @abstractmethod
    async def _exchange(self, apdu: bytes) -> bytes:
        """Send one raw C-APDU, return the raw R-APDU (data + SW1 SW2)."""

    async def _begin(self) -> None:  # noqa: B027 - optional: a link nobody else shares
        """Keep other programs off the card until ``_end()`` (a PC/SC transaction)."""

    async def _end(self) -> None:  # noqa: B027 - optional, as _begin
        """Let other programs at the card again; never fails for a card gone meanwhile.

        When it fails, nothing may stay held: the transaction is over, or the
        implementation has let go of the card (PC/SC: disconnected) before raising.
        """

    # --- the interface ------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True between a successful ``open()`` and ``close()``."""
        return self._is_open

    @property
    def atr(self) -> bytes:
        """The card's answer to reset (empty before ``open()``)."""
        return self._atr

    async def open(self) -> None:
        """Connect to the card; a second call on an open link does nothing."""
        if self._is_open:
            return
        self._atr = await self._open()
        self._is_open = True
        self._lost = None  # a new connection: what lost the last one is over

    @property
    def lost(self) -> errors.LinkError | None:
        """Why the open link can send nothing more (a failed end of a transaction), or None."""
        return self._lost

    @property
    def held(self) -> bool:
        """True between ``hold()`` and ``release()``."""
        return self._held

    async def close(self) -> None:
        """Disconnect (ending a hold); idempotent, safe on a link that never opened."""
        if not self._is_open:
            return
        self._is_open = False
        async with self._lock:
            if self._held:
                self._held = False
                with contextlib.suppress(errors.LinkError):  # disconnecting ends it anyway
                    await self._end()
            await self._close()

    async def hold(self) -> None:
        """Keep the card to this link across commands, until ``release()`` or ``close()``.

        For work that relies on state other programs share (the current file of
        channel 0): others wait meanwhile. Without a hold every command (with its GET
        RESPONSE chain) is held on its own. A second call does nothing.
        """
        self._require_open()
        async with self._lock:
            if not self._held:
                await self._begin()
                self._held = True

    async def release(self) -> None:
        """End ``hold()``; nothing happens without one.

        The held commands succeeded: a failure to let go loses the link (see the
        module doc), it is not raised.
        """
        async with self._lock:
            if self._held:
                self._held = False
                await self._end_after("the hold")

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """``hold()`` for the block; a hold already in force is kept, not ended here."""
        if self._held:
            yield
            return
        await self.hold()
        try:
            yield
        finally:
            with contextlib.suppress(errors.LinkError):  # a card gone has ended it
                await self.release()

    async def reset(self) -> None:
        """Warm reset: ends every card session and returns to the MF."""
        self._require_open()
        async with self._lock:
            self._atr = await self._reset()

    async def transmit(self, command: Command) -> Response:
        """Send ``command``; return the final data and status word.

        ``61xx``/``9Fxx`` are followed by GET RESPONSE on the same channel (and
        chained), ``6Cxx`` by a re-send with ``Le = xx``.
        """
        self._require_open()
        async with self._lock:
            if self._held:
                return await self._transmit_locked(command)
            # Nobody else's command between this one and its GET RESPONSE: theirs would
            # take (or discard) the answer the card holds for us.
            await self._begin()
            try:
                response = await self._transmit_locked(command)
            except BaseException:
                try:
                    await self._end()
                except errors.LinkError as exc:  # the first failure is the news
                    self._lost = exc
                raise
            # The card has answered: a failure to let go must not lose the answer.
            await self._end_after(f"a command (INS {command.ins:02X})")
            return response

    async def _end_after(self, what: str) -> None:
        """``_end()`` after work that succeeded: a failure loses the link, not the work."""
        try:
            await self._end()
        except errors.LinkError as exc:
            self._lost = exc
            log.warning(
                "card link lost after a command that succeeded",
                after=what,
                error=str(exc),
                effect="its answer is kept; later commands on this link fail",
            )

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- internals ----------------------------------------------------------

    def _require_open(self) -> None:
        if not self._is_open:
            raise errors.LinkClosed("card link is not open")
        if self._lost is not None:
            lost = self._lost
            raise type(lost)(f"card link lost after an earlier command: {lost}") from lost

    async def _raw(self, command: Command) -> Response:
        raw = command.to_bytes()
        answer = await self._exchange(raw)
        self.apdu_count += 1
        self.bytes_sent += len(raw)
        self.bytes_received += len(answer)
        return Response.from_bytes(answer)

    async def _transmit_locked(self, command: Command) -> Response:
        data = b""
        current = command
        for _ in range(MAX_PROCEDURE_ROUNDS):
            response = await self._raw(current)
            if response.sw1 in (SW1_MORE_DATA, SW1_GSM_MORE_DATA):
                data += response.data
                current = get_response_for(command, response.sw2)
                continue
            if response.sw1 == SW1_WRONG_LE:
                data += response.data
                current = current.with_le(response.sw2 or 256)
                continue
            return Response(data + response.data, response.sw)
        raise errors.LinkProtocolError(
            f"card kept answering procedure bytes after {MAX_PROCEDURE_ROUNDS} rounds"
        )


__all__ = ["CardLink", "get_response_for"]
