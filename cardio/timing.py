"""What an exchange would cost on a real T=0 card: a link wrapper for benchmarks.

The emulated card answers in microseconds; a real SIM talks at 9600 baud. So the
benchmarks count what crosses the link and price it with this model.

Model (ISO/IEC 7816-3 T=0, one TPDU per raw exchange, GET RESPONSE and ``6Cxx``
re-sends each their own TPDU):

* every character costs ``etu_per_byte`` elementary time units (12: start bit,
  8 data bits, parity, 2 guard etu), one etu being ``1 / baud`` seconds
  (the default clock divider, F/D = 372 at 3.57 MHz, gives 9600 baud);
* a TPDU moves: 5 header bytes (CLA INS P1 P2 P3), then, if any data moves in
  either direction, 1 procedure byte (the INS acknowledgement), then the command
  data or the response data, then 2 status bytes.  A case-4 APDU's trailing Le
  is not sent (T=0 has no room for it; the card answers ``61xx``);
* each TPDU also costs ``card_seconds`` of card processing (default 0).

So ``modeled_seconds = tpdu_bytes * etu_per_byte / baud + tpdu_count * card_seconds``.
Example: READ RECORD of a 32-byte record (``A0 B2 01 04 20``) is 5 + 1 + 32 + 2 =
40 bytes = 40 * 12 / 9600 s = 50 ms.
"""

from __future__ import annotations

from cardio.link import CardLink

DEFAULT_BAUD = 9600
DEFAULT_ETU_PER_BYTE = 12
_HEADER = 5
_PROCEDURE = 1
_STATUS = 2


def tpdu_bytes(apdu: bytes, answer: bytes) -> int:
    """Characters on the wire for one T=0 TPDU (see the module docstring)."""
    sent_data = 0
    if len(apdu) > _HEADER:
        lc = apdu[4]
        sent_data = min(lc, len(apdu) - _HEADER)  # a trailing Le byte is not data
    received_data = max(0, len(answer) - _STATUS)
    procedure = _PROCEDURE if (sent_data or received_data) else 0
    return _HEADER + procedure + sent_data + received_data + _STATUS


class TimedLink(CardLink):
    """Wraps another link; counts TPDUs and prices them with the T=0 model above."""

    def __init__(
        self,
        inner: CardLink,
        *,
        baud: int = DEFAULT_BAUD,
        etu_per_byte: int = DEFAULT_ETU_PER_BYTE,
        card_seconds: float = 0.0,
    ) -> None:
        super().__init__()
        if baud <= 0 or etu_per_byte <= 0 or card_seconds < 0:
            raise ValueError("baud and etu_per_byte must be positive, card_seconds >= 0")
        self.inner = inner
        self.baud = baud
        self.etu_per_byte = etu_per_byte
        self.card_seconds = card_seconds
        self.tpdu_count = 0
        self.tpdu_bytes = 0

    @property
    def modeled_seconds(self) -> float:
        """Time the exchanges so far would take on a real T=0 card."""
        return self.tpdu_bytes * self.etu_per_byte / self.baud + self.tpdu_count * self.card_seconds

    def reset_counters(self) -> None:
        """Start a new measurement (all counters to zero)."""
        self.apdu_count = self.bytes_sent = self.bytes_received = 0
        self.tpdu_count = self.tpdu_bytes = 0

    async def _open(self) -> bytes:
        await self.inner.open()
        return self.inner.atr

    async def _close(self) -> None:
        await self.inner.close()

    async def _reset(self) -> bytes:
        await self.inner.reset()
        return self.inner.atr

    async def _exchange(self, apdu: bytes) -> bytes:
        # The inner link's raw exchange: procedure bytes are handled once, here.
        answer = await self.inner._exchange(apdu)
        self.tpdu_count += 1
        self.tpdu_bytes += tpdu_bytes(apdu, answer)
        return answer


__all__ = ["TimedLink", "tpdu_bytes"]
