"""The PC/SC link: pyscard's ``smartcard.scard`` calls, each in a worker thread.

Blocking PC/SC calls run in ``asyncio.to_thread`` (the loop's default executor),
so nothing blocks the event loop and no thread of ours outlives a call. PC/SC
return codes become the ``cardio.errors`` tree at this edge.
"""

from __future__ import annotations

import asyncio
from typing import Any

from smartcard import scard  # pyscard ships no type hints (see pyproject mypy overrides)

from cardio import errors
from cardio.link import CardLink

# How long a failed transmit waits for pcscd to confirm a removal (it probes ~3x/s).
REMOVAL_GRACE_MS = 1000
_REMOVED = frozenset({scard.SCARD_W_REMOVED_CARD, scard.SCARD_W_RESET_CARD})
_NO_CARD = frozenset(
    {scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_UNRESPONSIVE_CARD, scard.SCARD_W_UNPOWERED_CARD}
)
# EndTransaction answers: the transaction is over in every one of them.
_ENDED = frozenset(
    {scard.SCARD_S_SUCCESS, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_E_INVALID_HANDLE} | _REMOVED
)
_GONE = frozenset(
    {
        scard.SCARD_E_READER_UNAVAILABLE,
        scard.SCARD_E_UNKNOWN_READER,
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_NO_READERS_AVAILABLE,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_F_COMM_ERROR,  # "RPC transport error": pcscd itself went away
    }
)


def pcsc_error(hresult: int, doing: str) -> errors.LinkError:
    """Translate a PC/SC return code into the error tree (``doing`` names the step)."""
    code = hresult & 0xFFFFFFFF
    text = f"{doing}: {scard.SCardGetErrorMessage(hresult).strip()} (0x{code:08X})"
    if code == scard.SCARD_W_RESET_CARD:
        return errors.CardReset(
            f"{text}; another program reset the card between two commands: the PIN, "
            "channels and sessions of this connection are gone, sync again"
        )
    if code in _REMOVED:
        return errors.CardRemoved(text)
    if code in _NO_CARD:
        return errors.NoCard(text)
    if code == scard.SCARD_E_TIMEOUT:
        return errors.CardTimeout(text)
    if code in _GONE:
        return errors.ReaderGone(text)
    return errors.LinkError(text)


def _ok(hresult: int, doing: str) -> None:
    if hresult != scard.SCARD_S_SUCCESS:
        raise pcsc_error(hresult, doing)


def establish_context() -> Any:
    """A PC/SC context handle (blocking); ``NoReader`` when the service is absent."""
    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise errors.NoReader(
            f"PC/SC service unavailable: {scard.SCardGetErrorMessage(hresult).strip()}"
        )
    return hcontext


def list_readers(hcontext: Any) -> list[str]:
    """Reader names known to PC/SC (blocking); empty list when there are none."""
    hresult, readers = scard.SCardListReaders(hcontext, [])
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    _ok(hresult, "listing readers")
    return list(readers)


def choose_reader(readers: list[str], wanted: str) -> str:
    """The one reader whose name contains ``wanted`` (an exact name always wins)."""
    if wanted in readers:
        return wanted
    matches = [r for r in readers if wanted in r]
    if not matches:
        known = ", ".join(repr(r) for r in readers) or "none"
        raise errors.NoReader(f"no reader matches {wanted!r} (readers: {known})")
    if len(matches) > 1:
        raise errors.AmbiguousReader(
            f"{len(matches)} readers match {wanted!r}: {', '.join(repr(r) for r in matches)}"
        )
    return matches[0]


class PcscLink(CardLink):
    """A card in the PC/SC reader whose name contains ``reader`` (shared access, T=0).

    Each command with its GET RESPONSE chain is one PC/SC transaction, and
    ``hold()`` is one transaction across commands (docs/cardio.md "Sharing the card").
    ``close()`` disconnects with ``SCARD_LEAVE_CARD`` (the card stays powered and
    its sessions stay open); ``reset()`` is a warm reset that ends them.
    """

    def __init__(self, reader: str = "") -> None:
        super().__init__()
        self.wanted = reader
        self.reader_name = ""
        self._hcontext: Any = None
        self._hcard: Any = None
        self._begin_pending = False  # _begin() called, its transaction not begun yet

    async def _open(self) -> bytes:
        return await asyncio.to_thread(self._open_blocking)

    def _open_blocking(self) -> bytes:
        hcontext = establish_context()
        try:
            name = choose_reader(list_readers(hcontext), self.wanted)
            hresult, hcard, _protocol = scard.SCardConnect(
                hcontext, name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0
            )
            _ok(hresult, f"connecting to {name!r}")
            try:
                atr = self._atr_of(hcard)
            except errors.LinkError:
                scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
                raise
        except BaseException:
            scard.SCardReleaseContext(hcontext)
            raise
        self._hcontext, self._hcard, self.reader_name = hcontext, hcard, name
        return atr

    @staticmethod
    def _atr_of(hcard: Any) -> bytes:
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(hcard)
        _ok(hresult, "reading the card status")
        return bytes(atr)

    async def _close(self) -> None:
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        hcard, hcontext = self._hcard, self._hcontext
        self._hcard = self._hcontext = None
        # Errors on the way out (card already gone) change nothing for the caller.
        if hcard is not None:
            scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
        if hcontext is not None:
            scard.SCardReleaseContext(hcontext)

    async def _reset(self) -> bytes:
        return await asyncio.to_thread(self._reset_blocking)

    def _reset_blocking(self) -> bytes:
        hresult, _protocol = scard.SCardReconnect(
            self._hcard, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0, scard.SCARD_RESET_CARD
        )
        _ok(hresult, "resetting the card")
        return self._atr_of(self._hcard)

    async def _begin(self) -> None:
        # Begun with the next command, in the same worker-thread call: one hop less.
        self._begin_pending = True

    def _begin_blocking(self) -> None:
        if self._hcard is None:
            raise errors.LinkClosed("card link is closed")
        # pcsc-lite waits here while another program holds the card, and reports a
        # reset or a removal since our last command (SCARD_W_RESET_CARD, ..._REMOVED_CARD).
        _ok(scard.SCardBeginTransaction(self._hcard), "starting a PC/SC transaction")

    async def _end(self) -> None:
        if self._begin_pending:  # no command went out: no transaction began
            self._begin_pending = False
            return
        await asyncio.to_thread(self._end_blocking)

    def _end_blocking(self) -> None:
        if self._hcard is None:
            return
        hresult = scard.SCardEndTransaction(self._hcard, scard.SCARD_LEAVE_CARD)
        # A card removed or reset meanwhile ended the transaction already (pcsc-lite
        # releases it then too).
        if hresult not in _ENDED:
            # Whatever failed (the reader or pcscd gone: nothing is held any more), no
            # transaction may outlive this: a disconnect ends the handle's (pcsc-lite's
            # SCardDisconnect unlocks it), and the link is done with this handle.
            hcard, self._hcard = self._hcard, None
            scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
            raise pcsc_error(hresult, "ending a PC/SC transaction")

    async def _exchange(self, apdu: bytes) -> bytes:
        begin, self._begin_pending = self._begin_pending, False
        return await asyncio.to_thread(self._exchange_blocking, apdu, begin=begin)

    def _exchange_blocking(self, apdu: bytes, *, begin: bool = False) -> bytes:
        if self._hcard is None:
            raise errors.LinkClosed("card link is closed")
        if begin:
            self._begin_blocking()
        hresult, answer = scard.SCardTransmit(self._hcard, scard.SCARD_PCI_T0, list(apdu))
        if hresult == scard.SCARD_E_NOT_TRANSACTED and self._card_absent():
            # pcscd reports a card that vanished mid-command as "not transacted".
            raise errors.CardRemoved("transmit: card was removed during the command")
        _ok(hresult, "transmitting")
        return bytes(answer)

    def _card_absent(self) -> bool:
        """After a failed transmit: is the card gone? Waits (bounded) for pcscd to notice."""
        hresult, *_rest = scard.SCardStatus(self._hcard)
        if hresult in _REMOVED or hresult == scard.SCARD_E_NO_SMARTCARD:
            return True
        # pcscd probes presence a few times a second; wait for its verdict, not longer.
        known = scard.SCARD_STATE_UNAWARE
        for timeout_ms in (0, REMOVAL_GRACE_MS):
            hresult, states = scard.SCardGetStatusChange(
                self._hcontext, timeout_ms, [(self.reader_name, known)]
            )
            if hresult == scard.SCARD_E_TIMEOUT:
                break
            if hresult != scard.SCARD_S_SUCCESS:
                return False
            known = states[0][1] & ~scard.SCARD_STATE_CHANGED
            if not known & scard.SCARD_STATE_PRESENT:
                return True
        return False


__all__ = ["PcscLink", "choose_reader", "list_readers", "pcsc_error"]
