"""A link straight into an emulated card object in this process (the fake for upper layers)."""

from __future__ import annotations

from typing import Protocol

from cardio.link import CardLink


class RawCard(Protocol):
    """What ``InProcessLink`` needs of a card (``simcard.SimCard`` fits)."""

    @property
    def atr(self) -> bytes:
        """The answer to reset the card gives."""
        ...

    def power_on(self) -> bytes:
        """Power the card up and return its ATR."""
        ...

    def reset(self) -> bytes:
        """Warm reset; return the ATR."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one raw C-APDU with one raw R-APDU."""
        ...


class InProcessLink(CardLink):
    """``CardLink`` over ``card.transmit``: no PC/SC, no threads, microseconds per APDU.

    ``open()`` powers the card on (a fresh insertion) — or, with ``shared=True``,
    attaches to a card that is already powered, as a second terminal sharing the
    card through PC/SC does (sessions and channels of others stay open);
    ``close()`` leaves it powered, like a PC/SC disconnect with ``SCARD_LEAVE_CARD``.
    """

    def __init__(self, card: RawCard, *, shared: bool = False) -> None:
        super().__init__()
        self.card = card
        self.shared = shared

    async def _open(self) -> bytes:
        return self.card.atr if self.shared else self.card.power_on()

    async def _close(self) -> None:
        return None

    async def _reset(self) -> bytes:
        return self.card.reset()

    async def _exchange(self, apdu: bytes) -> bytes:
        return self.card.transmit(apdu)


__all__ = ["InProcessLink", "RawCard"]
