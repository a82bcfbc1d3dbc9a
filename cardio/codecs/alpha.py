"""Alpha identifiers (TS 51.011 §10.5.1, TS 102 221 Annex A): GSM 7-bit or UCS2.

Four codings share the field; the first byte tells them apart:

* GSM default alphabet, one septet per byte with b8 = 0 (escape pairs for
  ``^{}\\[~]|€`` and form feed), padded with ``FF``;
* ``80``: UCS2 big-endian, padded with ``FF`` (a ``FFFF`` code unit ends the text);
* ``81``: count, base byte b (base pointer = b << 7, i.e. bits 15..8 of a 16-bit
  pointer), then one byte per character: < 0x80 a GSM default character,
  >= 0x80 the character base + (byte & 0x7F);
* ``82``: count, 16-bit base pointer, then bytes as for ``81``.

The encoder takes the shortest coding that holds the name (GSM first on ties,
then 81, 82, 80). The codec never cuts a name: ``fit_name`` is the explicit helper a
caller uses when it has decided to shorten.
"""

from __future__ import annotations

import enum
import re

from cardio.codecs.errors import InvalidField, MalformedRecord, NameTooLong, UnencodableName
from cardio.codecs.gsm7 import ESCAPE, decode_gsm7, encode_gsm7, gsm7_default_byte

__all__ = [
    "AlphaForm",
    "alpha_length",
    "check_name",
    "choose_alpha_form",
    "decode_alpha",
    "encode_alpha",
    "encode_alpha_form",
    "fit_name",
]

_PAD = 0xFF


class AlphaForm(enum.Enum):
    """The codings an alpha identifier can use, in the encoder's tie-break order."""

    GSM = "gsm"
    UCS2_81 = "81"
    UCS2_82 = "82"
    UCS2_80 = "80"


def check_name(name: str) -> None:
    """Raise UnencodableName for a character no coding can carry (outside the BMP)."""
    for pos, ch in enumerate(name):
        code = ord(ch)
        # Surrogates are not characters in UCS2 and U+FFFF is the 80 form's terminator.
        if code > 0xFFFF or 0xD800 <= code <= 0xDFFF or code == 0xFFFF:
            raise UnencodableName(name, ch, pos)


def _windowed(name: str, header: bytes, base: int) -> bytes:
    """Body of an 81/82 coding: GSM default bytes, else offset from ``base``."""
    out = bytearray(header)
    for ch in name:
        gsm = gsm7_default_byte(ch)
        out.append(gsm if gsm is not None else 0x80 | (ord(ch) - base))
    return bytes(out)


def encode_alpha_form(name: str, form: AlphaForm) -> bytes | None:
    """``name`` in exactly this coding, unpadded, or None if the coding cannot hold it.

    Raises UnencodableName for a character no coding can hold (outside the BMP).
    """
    check_name(name)
    if form is AlphaForm.GSM:
        return encode_gsm7(name)
    if form is AlphaForm.UCS2_80:
        return b"\x80" + name.encode("utf-16-be")
    if len(name) > 0xFF:  # the count byte of 81/82
        return None
    others = [ord(ch) for ch in name if gsm7_default_byte(ch) is None]
    low = min(others, default=0)
    high = max(others, default=0)
    if form is AlphaForm.UCS2_81:
        # The widest usable window starts at the last multiple of 128 not above low.
        base_byte = low >> 7
        if base_byte > 0xFF or high - (base_byte << 7) > 0x7F:
            return None
        return _windowed(name, bytes((0x81, len(name), base_byte)), base_byte << 7)
    if high - low > 0x7F:
        return None
    return _windowed(name, bytes((0x82, len(name), low >> 8, low & 0xFF)), low)


def choose_alpha_form(name: str) -> tuple[AlphaForm, bytes]:
    """The shortest coding of ``name`` and its unpadded bytes (ties: enum order)."""
    best: tuple[AlphaForm, bytes] | None = None
    for form in AlphaForm:
        data = encode_alpha_form(name, form)
        if data is not None and (best is None or len(data) < len(best[1])):
            best = (form, data)
    # UCS2 80 holds any BMP text, and encode_alpha_form raised for anything else.
    assert best is not None
    return best


def alpha_length(name: str) -> int:
    """Bytes the shortest coding of ``name`` needs (0 for the empty name)."""
    if not name:
        return 0
    return len(choose_alpha_form(name)[1])


def encode_alpha(name: str, alpha_len: int) -> bytes:
    """The alpha identifier field for ``name``: exactly ``alpha_len`` bytes, FF-padded.

    Raises NameTooLong if even the shortest coding needs more than ``alpha_len``
    bytes, UnencodableName for a character outside the BMP.
    """
    if alpha_len < 0:
        raise InvalidField(f"alpha_len must be >= 0, not {alpha_len}")
    if not name:
        check_name(name)
        return bytes([_PAD]) * alpha_len
    data = choose_alpha_form(name)[1]
    if len(data) > alpha_len:
        raise NameTooLong(name, alpha_len, len(data))
    return data + bytes([_PAD]) * (alpha_len - len(data))


def _decode_windowed(raw: bytes, header: int, base: int) -> str:
    count = raw[1]
    body = raw[header : header + count]
    if len(body) < count:
        raise MalformedRecord(
            f"alpha {raw[0]:02X} form counts {count} characters, only {len(body)} bytes follow"
        )
    chars: list[str] = []
    for i, b in enumerate(body):
        if b < 0x80:
            if b == ESCAPE:
                # The count is of characters = bytes; an escape pair would break it.
                raise MalformedRecord(f"alpha {raw[0]:02X} form holds an escape at {i}")
            chars.append(decode_gsm7(bytes((b,))))
            continue
        code = base + (b & 0x7F)
        if code >= 0xFFFF or 0xD800 <= code <= 0xDFFF:
            raise MalformedRecord(f"alpha {raw[0]:02X} form gives no character U+{code:04X}")
        chars.append(chr(code))
    return "".join(chars)


def decode_alpha(raw: bytes) -> str:
    """The name held in an alpha identifier field (any coding, padding ignored).

    Raises MalformedRecord for bytes that are not a valid coding.
    """
    if not raw:
        return ""
    first = raw[0]
    if first == 0x80:
        units = []
        for i in range(1, len(raw) - 1, 2):
            unit = (raw[i] << 8) | raw[i + 1]
            if unit == 0xFFFF:
                break
            if 0xD800 <= unit <= 0xDFFF:
                raise MalformedRecord(f"alpha 80 form holds a surrogate {unit:04X} at {i}")
            units.append(chr(unit))
        return "".join(units)
    if first == 0x81:
        if len(raw) < 3:
            raise MalformedRecord(f"alpha 81 form needs 3 header bytes, field has {len(raw)}")
        return _decode_windowed(raw, 3, raw[2] << 7)
    if first == 0x82:
        if len(raw) < 4:
            raise MalformedRecord(f"alpha 82 form needs 4 header bytes, field has {len(raw)}")
        return _decode_windowed(raw, 4, (raw[2] << 8) | raw[3])
    return decode_gsm7(raw.rstrip(bytes([_PAD])))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _carried(ch: str) -> bool:
    code = ord(ch)
    return not (code > 0xFFFF or 0xD800 <= code <= 0xDFFF or code == 0xFFFF)


def card_name(name: str, alpha_len: int) -> str:
    """What the card holds for a contact's ``name`` (never raises; empty if nothing is left).

    Control characters (a line break in a vCard FN) become spaces and runs of spaces
    one (so dropping an emoji leaves no double space); characters no
    coding can carry (outside the BMP, e.g. emoji) are dropped; the rest is cut to
    the longest prefix that fits (``fit_name``). The phone writes this and the PDA
    uses the same rule to recognise the record, so the two always agree.
    """
    kept = "".join(c for c in name if _carried(c))
    cleaned = " ".join(_CONTROL.sub(" ", kept).split())
    # Strip again after cutting, so that card_name(card_name(x)) == card_name(x).
    return fit_name(cleaned, alpha_len).rstrip()


def fit_name(name: str, alpha_len: int) -> str:
    """The longest prefix of ``name`` (whole characters) that fits ``alpha_len`` bytes.

    This is the only place a name is shortened, and only when a caller asks. An
    escape pair is one character, so it is never split. Raises UnencodableName if
    ``name`` holds a character no coding can carry (shortening is for length only).
    """
    check_name(name)
    # The shortest coding's length only grows with the prefix: binary search it.
    lo, hi = 0, len(name)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if alpha_length(name[:mid]) <= alpha_len:
            lo = mid
        else:
            hi = mid - 1
    return name[:lo]
