"""EF.ADN, abbreviated dialling numbers (TS 51.011 §10.5.1), as a typed record.

A record of X + 14 bytes::

    alpha identifier   X bytes   (see alpha.py)
    BCD length         1 byte    bytes of TON/NPI + BCD used (1-11), FF = no number
    TON/NPI            1 byte
    dialling number   10 bytes   swapped BCD, FF-padded (see bcd.py)
    CCP id             1 byte    FF = none
    EXT1 id            1 byte    FF = none; first record of the EXT1 chain

A leading ``+`` in ``number`` is the type of number "international" (TON bits
b7-b5 = 001, so TON/NPI ``91`` with the ISDN plan); it is not a BCD digit. A
number of more than 20 digits continues in EF.EXT1 (see ext1.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cardio.codecs.alpha import check_name, decode_alpha, encode_alpha
from cardio.codecs.bcd import DIGITS, decode_bcd, encode_bcd
from cardio.codecs.errors import (
    CodecError,
    InvalidField,
    InvalidNumber,
    MalformedRecord,
    NumberTooLong,
)
from cardio.codecs.ext1 import (
    EXT1_DIGITS,
    MAX_EXT1_ID,
    NO_EXT1,
    encode_ext1_chain,
    read_ext1_chain,
)

__all__ = [
    "ADN_DIGITS",
    "ADN_TRAILER_LEN",
    "AUTO_TON_NPI",
    "MAX_NUMBER_DIGITS",
    "TON_NPI_INTERNATIONAL",
    "TON_NPI_UNKNOWN",
    "AdnRecord",
    "empty_adn",
]

ADN_TRAILER_LEN = 14
ADN_DIGITS = 20
# Every EXT1 record number (1-254) used once: the longest chain a card can hold.
MAX_NUMBER_DIGITS = ADN_DIGITS + MAX_EXT1_ID * EXT1_DIGITS
TON_NPI_UNKNOWN = 0x81  # TON unknown, NPI ISDN/E.164
TON_NPI_INTERNATIONAL = 0x91  # TON international, NPI ISDN/E.164
AUTO_TON_NPI = -1
_TON_INTERNATIONAL = 0b001
_BCD_BYTES = 10
_NO_NUMBER = 0xFF


def _ton(ton_npi: int) -> int:
    return (ton_npi >> 4) & 0b111


def empty_adn(alpha_len: int) -> bytes:
    """An empty ADN record (all FF) for an alpha identifier of ``alpha_len`` bytes."""
    if alpha_len < 0:
        raise InvalidField(f"alpha_len must be >= 0, not {alpha_len}")
    return b"\xff" * (alpha_len + ADN_TRAILER_LEN)


@dataclass(frozen=True)
class AdnRecord:
    """One non-empty EF.ADN record.

    ``number`` is the digits ``0-9 * # , ? !`` (``,`` = DTMF pause ``C``, ``?`` =
    wild ``D``, ``!`` = expansion ``E``), optionally after a leading ``+``.
    ``ton_npi`` defaults (``AUTO_TON_NPI``) to ``91`` for a ``+`` number, ``81``
    for other numbers and ``FF`` when there is no number; a ``+`` and an
    international TON always go together. ``ext1`` is the EXT1 record the card
    stores (as decoded; ``encode_with_ext`` replaces it for long numbers).
    """

    name: str
    number: str
    ton_npi: int = AUTO_TON_NPI
    ccp: int = 0xFF
    ext1: int = NO_EXT1

    def __post_init__(self) -> None:
        if self.ton_npi == AUTO_TON_NPI:
            if not self.number:
                derived = _NO_NUMBER
            elif self.number.startswith("+"):
                derived = TON_NPI_INTERNATIONAL
            else:
                derived = TON_NPI_UNKNOWN
            object.__setattr__(self, "ton_npi", derived)
        for field in ("ton_npi", "ccp", "ext1"):
            value = getattr(self, field)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise InvalidField(f"{field} must be a byte 0-255, not {value!r}")
        # Characters are checked now; whether the name fits depends on the EF's X.
        check_name(self.name)
        digits = self.digits
        for pos, ch in enumerate(self.number):
            if ch not in DIGITS and not (ch == "+" and pos == 0):
                raise InvalidNumber(self.number, ch, pos)
        if self.number.startswith("+"):
            if not digits:
                raise InvalidNumber(self.number, "+", 0, "a '+' needs digits after it")
            if _ton(self.ton_npi) != _TON_INTERNATIONAL:
                raise InvalidNumber(
                    self.number,
                    "+",
                    0,
                    f"'+' means TON international, but ton_npi is {self.ton_npi:02X}",
                )
        elif digits and _ton(self.ton_npi) == _TON_INTERNATIONAL:
            raise InvalidField(
                f"ton_npi {self.ton_npi:02X} is international: write {self.number!r} with '+'"
            )
        if len(digits) > MAX_NUMBER_DIGITS:
            raise NumberTooLong(self.number, len(digits), MAX_NUMBER_DIGITS)
        if not self.name and not self.number and self.ton_npi == _NO_NUMBER:
            raise InvalidField("a record with no name and no number is the empty record")

    @property
    def digits(self) -> str:
        """The BCD digits of the number (without the ``+``)."""
        return self.number.removeprefix("+")

    def _number_field(self, digits: str) -> bytes:
        """Length byte, TON/NPI and the 10 BCD bytes for at most 20 digits."""
        if not digits and self.ton_npi == _NO_NUMBER:
            return b"\xff" * (2 + _BCD_BYTES)
        bcd = encode_bcd(digits)
        pad = b"\xff" * (_BCD_BYTES - len(bcd))
        return bytes((1 + len(bcd), self.ton_npi)) + bcd + pad

    def encode(self, alpha_len: int) -> bytes:
        """The record, exactly ``alpha_len + 14`` bytes.

        Raises NameTooLong if the name does not fit ``alpha_len`` bytes, and
        NumberTooLong above 20 digits (use ``encode_with_ext`` for those).
        """
        if len(self.digits) > ADN_DIGITS:
            raise NumberTooLong(self.number, len(self.digits), ADN_DIGITS)
        alpha = encode_alpha(self.name, alpha_len)
        return alpha + self._number_field(self.digits) + bytes((self.ccp, self.ext1))

    def encode_with_ext(
        self, alpha_len: int, alloc_ext1: Callable[[], int]
    ) -> tuple[bytes, list[tuple[int, bytes]]]:
        """The record plus the EXT1 records a number over 20 digits needs.

        Returns ``(adn_bytes, [(ext1_record_no, ext1_bytes), ...])``; the list is
        empty for 20 digits or fewer (then this is ``encode``). ``alloc_ext1`` is
        called once per EXT1 record, only after the name has been checked to fit;
        freeing the records of an old chain is the caller's business.
        """
        digits = self.digits
        if len(digits) <= ADN_DIGITS:
            return self.encode(alpha_len), []
        alpha = encode_alpha(self.name, alpha_len)
        chain = encode_ext1_chain(digits[ADN_DIGITS:], alloc_ext1)
        head = self._number_field(digits[:ADN_DIGITS])
        return alpha + head + bytes((self.ccp, chain[0][0])), chain

    @classmethod
    def decode(
        cls, raw: bytes, ext1_reader: Callable[[int], bytes] | None = None
    ) -> AdnRecord | None:
        """The record held in ``raw``, or None for an empty record.

        ``ext1_reader(record_no)`` returns raw EF.EXT1 records (its own errors
        propagate); with it, the chain of a record holding a full 20 digits is
        followed and its digits appended. Without it the number is the ADN
        record's own digits and ``ext1`` tells the caller a chain exists.
        Raises MalformedRecord (a CodecError) for bytes that are not a record.
        """
        if len(raw) < ADN_TRAILER_LEN:
            raise MalformedRecord(f"ADN record needs at least 14 bytes, got {len(raw)}")
        x = len(raw) - ADN_TRAILER_LEN
        alpha = raw[:x]
        length, ton_npi = raw[x], raw[x + 1]
        bcd = raw[x + 2 : x + 2 + _BCD_BYTES]
        ccp, ext1 = raw[x + 12], raw[x + 13]
        if length == _NO_NUMBER and alpha.count(0xFF) == len(alpha):
            return None
        name = decode_alpha(alpha)
        if length == _NO_NUMBER:
            digits = ""
        elif 1 <= length <= 1 + _BCD_BYTES:
            digits = decode_bcd(bcd[: length - 1])
        else:
            raise MalformedRecord(f"ADN BCD length {length} outside 1-11 (or FF)")
        # Only a full record (20 digits) continues in EXT1; below that the link can
        # only be a subaddress, or a stale id another phone left behind.
        if ext1 != NO_EXT1 and ext1_reader is not None and length == 1 + _BCD_BYTES:
            digits += read_ext1_chain(ext1, ext1_reader)[0]
        plus = "+" if digits and _ton(ton_npi) == _TON_INTERNATIONAL else ""
        try:
            return cls(name, plus + digits, ton_npi, ccp, ext1)
        except CodecError as exc:
            raise MalformedRecord(f"ADN record does not form a valid entry: {exc}") from exc
