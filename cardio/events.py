"""Reader and card events as an async iterator, from ``SCardGetStatusChange``.

One blocking wait at a time runs in a worker thread and covers every reader plus
the ``\\\\?PnP?\\Notification`` pseudo-reader (reader added/removed). Waits are long
(``wait_seconds``) and wake only on change; ``aclose()`` interrupts a wait with
``SCardCancel``, so closing is prompt and no thread outlives the stream::

    async with CardEvents(reader="Virtual PCD 00 00") as events:
        async for event in events:
            ...
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any

from smartcard import scard

from cardio import errors
from cardio.pcsc import establish_context, list_readers, pcsc_error

PNP_READER = "\\\\?PnP?\\Notification"
_CHANGED = scard.SCARD_STATE_CHANGED
_PRESENT = scard.SCARD_STATE_PRESENT


class EventKind(Enum):
    """What happened."""

    READER_ADDED = "reader added"
    READER_REMOVED = "reader removed"
    CARD_INSERTED = "card inserted"
    CARD_REMOVED = "card removed"


@dataclass(frozen=True)
class CardEvent:
    """One event; ``atr`` is set for ``CARD_INSERTED``."""

    kind: EventKind
    reader: str
    atr: bytes = b""


class CardEvents:
    """Async iterator of ``CardEvent`` for readers whose name contains ``reader``.

    With ``include_present`` the stream starts with the current state (each
    reader as added, each present card as inserted).
    """

    def __init__(
        self, *, reader: str = "", include_present: bool = True, wait_seconds: float = 30.0
    ) -> None:
        if wait_seconds <= 0:
            raise errors.InvalidRequest("wait_seconds must be positive")
        self.wanted = reader
        self.include_present = include_present
        self._timeout_ms = int(wait_seconds * 1000)
        self._hcontext: Any = None
        # reader name -> last PC/SC event state (CHANGED bit cleared)
        self._states: dict[str, int] = {}
        self._pnp_state = 0
        self._pending: deque[CardEvent] = deque()
        self._waiting: asyncio.Future[list[CardEvent]] | None = None
        self._closed = False

    async def __aenter__(self) -> CardEvents:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> CardEvents:
        return self

    async def start(self) -> None:
        """Connect to PC/SC and take the first snapshot."""
        if self._hcontext is not None:
            return
        self._hcontext = await asyncio.to_thread(establish_context)
        try:
            initial = await asyncio.to_thread(self._snapshot)
        except BaseException:
            await asyncio.to_thread(scard.SCardReleaseContext, self._hcontext)
            self._hcontext = None
            raise
        if self.include_present:
            self._pending.extend(initial)

    async def __anext__(self) -> CardEvent:
        if self._hcontext is None and not self._closed:
            await self.start()
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            loop = asyncio.get_running_loop()
            self._waiting = loop.run_in_executor(None, self._wait_once)
            try:
                events = await asyncio.shield(self._waiting)
            except asyncio.CancelledError:
                await self._interrupt()
                raise
            finally:
                self._waiting = None
            self._pending.extend(events)
        return self._pending.popleft()

    def card_present(self) -> bool:
        """Whether a matching reader holds a card, as of the last snapshot or wait."""
        return any(state & _PRESENT for state in self._states.values())

    async def aclose(self) -> None:
        """Stop: interrupt a running wait and release the PC/SC context."""
        if self._closed:
            return
        self._closed = True
        await self._interrupt()
        if self._hcontext is not None:
            hcontext, self._hcontext = self._hcontext, None
            await asyncio.to_thread(scard.SCardReleaseContext, hcontext)

    async def _interrupt(self) -> None:
        waiting = self._waiting
        # A cancel that lands before the worker enters its wait is lost, so repeat it
        # until the worker is back; usually the first one does it within microseconds.
        while waiting is not None and not waiting.done():
            scard.SCardCancel(self._hcontext)
            await asyncio.wait([waiting], timeout=0.05)

    # --- worker-thread side -------------------------------------------------

    def _matching(self) -> list[str]:
        return [r for r in list_readers(self._hcontext) if self.wanted in r]

    def _snapshot(self) -> list[CardEvent]:
        events: list[CardEvent] = []
        readers = self._matching()
        states = [(r, scard.SCARD_STATE_UNAWARE) for r in readers]
        states.append((PNP_READER, scard.SCARD_STATE_UNAWARE))
        hresult, new = scard.SCardGetStatusChange(self._hcontext, 0, states)
        if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
            raise pcsc_error(hresult, "reading reader states")
        for name, state, atr in new:
            if name == PNP_READER:
                self._pnp_state = state & ~_CHANGED
                continue
            self._states[name] = state & ~_CHANGED
            events.append(CardEvent(EventKind.READER_ADDED, name))
            if state & _PRESENT:
                events.append(CardEvent(EventKind.CARD_INSERTED, name, bytes(atr)))
        return events

    def _wait_once(self) -> list[CardEvent]:
        states = [(r, s) for r, s in self._states.items()]
        states.append((PNP_READER, self._pnp_state))
        hresult, new = scard.SCardGetStatusChange(self._hcontext, self._timeout_ms, states)
        if hresult in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
            return []
        if hresult == scard.SCARD_E_UNKNOWN_READER:
            return self._rescan()
        if hresult != scard.SCARD_S_SUCCESS:
            probe, _ = scard.SCardListReaders(self._hcontext, [])
            if probe not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_NO_READERS_AVAILABLE):
                # pcscd went away under the wait; what the wait answered then varies (seen:
                # "Access denied"), a context that can no longer list readers does not.
                code = hresult & 0xFFFFFFFF
                raise errors.ReaderGone(
                    f"waiting for reader events: the PC/SC service went away (0x{code:08X})"
                )
            raise pcsc_error(hresult, "waiting for reader events")
        events: list[CardEvent] = []
        rescan = False
        for name, state, atr in new:
            if name == PNP_READER:
                rescan = rescan or bool(state & _CHANGED)
                self._pnp_state = state & ~_CHANGED
                continue
            if name not in self._states:
                continue
            if state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                rescan = True
                continue
            was = bool(self._states[name] & _PRESENT)
            now = bool(state & _PRESENT)
            self._states[name] = state & ~_CHANGED
            if now and not was:
                events.append(CardEvent(EventKind.CARD_INSERTED, name, bytes(atr)))
            elif was and not now:
                events.append(CardEvent(EventKind.CARD_REMOVED, name))
        if rescan:
            events.extend(self._rescan())
        return events

    def _rescan(self) -> list[CardEvent]:
        events: list[CardEvent] = []
        now = set(self._matching())
        for gone in sorted(set(self._states) - now):
            if self._states.pop(gone) & _PRESENT:
                events.append(CardEvent(EventKind.CARD_REMOVED, gone))
            events.append(CardEvent(EventKind.READER_REMOVED, gone))
        for added in sorted(now - set(self._states)):
            hresult, new = scard.SCardGetStatusChange(
                self._hcontext, 0, [(added, scard.SCARD_STATE_UNAWARE)]
            )
            state = new[0][1] if hresult == scard.SCARD_S_SUCCESS else 0
            self._states[added] = state & ~_CHANGED
            events.append(CardEvent(EventKind.READER_ADDED, added))
            if state & _PRESENT:
                events.append(CardEvent(EventKind.CARD_INSERTED, added, bytes(new[0][2])))
        return events


__all__ = ["PNP_READER", "CardEvent", "CardEvents", "EventKind"]
