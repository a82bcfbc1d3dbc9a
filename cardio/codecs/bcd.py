"""Swapped BCD dialling digits (TS 51.011 §10.5.1, table "BCD number/SSC contents").

Each byte holds two digits, the first in the low nibble. Nibbles ``A``-``E`` are
written as characters so a number stays a plain string:

====== ==================== ===========
nibble meaning              character
====== ==================== ===========
A      ``*``                ``*``
B      ``#``                ``#``
C      DTMF pause/separator ``,``
D      wild value           ``?``
E      RFU (expansion)      ``!``
F      end mark / filler    (none)
====== ==================== ===========

``,`` is the pause most phones and dial strings use; ``?`` and ``!`` are chosen
because they never occur in real dial strings, so no PDA number maps to them by
accident.
"""

from __future__ import annotations

from cardio.codecs.errors import InvalidNumber, MalformedRecord

__all__ = ["DIGITS", "decode_bcd", "encode_bcd"]

DIGITS = "0123456789*#,?!"
_NIBBLE = {ch: i for i, ch in enumerate(DIGITS)}
_FILLER = 0xF


def encode_bcd(digits: str) -> bytes:
    """Swapped BCD of ``digits`` (an odd count ends with an ``F`` high nibble).

    Raises InvalidNumber naming the first character that is not a BCD digit.
    """
    nibbles: list[int] = []
    for pos, ch in enumerate(digits):
        nib = _NIBBLE.get(ch)
        if nib is None:
            raise InvalidNumber(digits, ch, pos)
        nibbles.append(nib)
    if len(nibbles) % 2:
        nibbles.append(_FILLER)
    return bytes(nibbles[i] | (nibbles[i + 1] << 4) for i in range(0, len(nibbles), 2))


def decode_bcd(data: bytes) -> str:
    """Digits of swapped BCD ``data``; the number ends at the first ``F`` filler.

    Everything after the first ``F`` must be ``F`` too: some phones write a length
    byte that covers the padding (``0B 81 21 43 F5 FF ...``), which is harmless.
    Raises MalformedRecord for a digit after an ``F`` (a hole in the number).
    """
    nibbles = [
        (data[i // 2] >> 4) if i % 2 else (data[i // 2] & 0x0F) for i in range(2 * len(data))
    ]
    end = nibbles.index(_FILLER) if _FILLER in nibbles else len(nibbles)
    if any(n != _FILLER for n in nibbles[end:]):
        raise MalformedRecord(f"BCD end mark F in the middle of the number (nibble {end})")
    return "".join(DIGITS[n] for n in nibbles[:end])
