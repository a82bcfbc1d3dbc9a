"""GSM 03.38 (TS 23.038 §6.2.1) default alphabet, unpacked: one septet per byte.

Alpha identifiers on a SIM use the 7-bit default alphabet with bit 8 = 0, one
character per byte, plus the escape table reached through ``1B`` (one extension
character = two bytes). National language shift tables are not used on SIMs.
"""

from __future__ import annotations

from cardio.codecs.errors import MalformedRecord

__all__ = ["ESCAPE", "decode_gsm7", "encode_gsm7", "gsm7_char_len", "gsm7_default_byte"]

ESCAPE = 0x1B

# Index = septet value; 0x1B is the escape to the extension table, never a character.
_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_DEFAULT) == 128

# The extension table (TS 23.038 §6.2.1.1): septet after 1B -> character.
_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_ENC_DEFAULT = {ch: i for i, ch in enumerate(_DEFAULT) if i != ESCAPE}
_ENC_EXTENSION = {ch: i for i, ch in _EXTENSION.items()}


def gsm7_default_byte(char: str) -> int | None:
    """The one-byte default-alphabet code of ``char``, or None (extension chars too)."""
    return _ENC_DEFAULT.get(char)


def gsm7_char_len(char: str) -> int | None:
    """Bytes ``char`` takes in the unpacked GSM form: 1, 2 (escape table) or None."""
    if char in _ENC_DEFAULT:
        return 1
    if char in _ENC_EXTENSION:
        return 2
    return None


def encode_gsm7(text: str) -> bytes | None:
    """Unpacked GSM 7-bit bytes of ``text``, or None if a character has no GSM code."""
    out = bytearray()
    for ch in text:
        code = _ENC_DEFAULT.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = _ENC_EXTENSION.get(ch)
        if ext is None:
            return None
        out += bytes((ESCAPE, ext))
    return bytes(out)


def decode_gsm7(data: bytes) -> str:
    """Text of unpacked GSM 7-bit ``data`` (no padding; every byte must be < 0x80).

    An escape followed by a code outside the extension table is rejected rather than
    guessed at: TS 23.038 lets a phone show the default character instead, but a
    sync must not silently change a name it will write back.
    """
    chars: list[str] = []
    i = 0
    while i < len(data):
        b = data[i]
        if b >= 0x80:
            raise MalformedRecord(f"GSM alpha byte {b:02X} at {i} has bit 8 set")
        if b != ESCAPE:
            chars.append(_DEFAULT[b])
            i += 1
            continue
        if i + 1 >= len(data):
            raise MalformedRecord(f"GSM alpha ends with a lone escape (1B) at {i}")
        ext = _EXTENSION.get(data[i + 1])
        if ext is None:
            raise MalformedRecord(
                f"GSM escape 1B {data[i + 1]:02X} at {i} is not in the extension table"
            )
        chars.append(ext)
        i += 2
    return "".join(chars)
