"""Spec vectors, one class per EF (pySim's EF_ADN model), one test sweeping them all.

Hex is written out by hand from TS 51.011 §10.5.1/§10.5.10, TS 102 221 Annex A
and TS 23.038; the 82 example and the 81 "Voìce Màil" record are the published
ones (Annex A; Android's SimUtilsTest). ``mode`` says which way a vector holds:
``both`` (encode gives the hex, decode gives the value), ``decode`` (another
valid coding of the same value, as written by someone else).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from cardio.codecs import (
    AdnRecord,
    decode_alpha,
    decode_bcd,
    encode_alpha,
    encode_bcd,
    read_ext1_chain,
)

Vector = tuple[str, Any, str]  # (hex, value, mode)


def _h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


FF = "ff"


class EfAdnAlphaVectors:
    """Alpha identifier of EF.ADN (TS 51.011 §10.5.1; TS 102 221 Annex A)."""

    VECTORS: ClassVar[list[Vector]] = [
        ("ff ff ff ff", "", "both"),
        ("00 ff ff ff", "@", "both"),  # @ is septet 0
        ("01 ff ff ff", "£", "both"),
        ("1b 65 ff ff", "€", "both"),  # escape table: two bytes each
        ("1b 3c ff ff", "[", "both"),
        ("1b 28 ff ff", "{", "both"),
        (
            "1b14 1b28 1b29 1b2f 1b3c 1b3d 1b3e 1b40 1b65 1b0a",
            "^{}\\[~]|€\f",
            "both",
        ),
        ("41 6c 69 63 65" + FF * 13, "Alice", "both"),
        ("10 12 13 14 15 16 17 18 19 1a ff", "ΔΦΓΛΩΠΨΣΘΞ", "both"),  # Greek in GSM
        # 81: base byte 07 -> pointer 0380; Ε=0395 λ=03BB έ=03AD ν=03BD η=03B7.
        ("81 05 07 95 bb ad bd b7 ff ff", "Ελένη", "both"),
        # 81: base byte 08 -> 0400; С=0421 е=0435 р=0440 г=0433 й=0439.
        ("81 06 08 a1 b5 c0 b3 b5 b9 ff", "Сергей", "both"),
        # 81 as in Annex A: base 13 -> 0980; 53 is GSM 'S', 95 -> 0995, A6 -> 09A6.
        ("81 03 13 53 95 a6 ff ff", "Sকদ", "both"),
        # 82, the Annex A example: base 0530, 82 -> 0532, D3 -> 0583.
        ("82 05 05 30 2d 82 d3 2d 31", "-\u0532\u0583-1", "decode"),
        # Our encoder puts the 82 base at the lowest character: same length.
        ("82 05 05 32 2d 80 d1 2d 31 ff", "-\u0532\u0583-1", "both"),
        ("80 5f 20 4f 1f ff ff ff", "张伟", "both"),  # 80: no 128-window holds both
        ("80 00 41 ff", "A", "decode"),  # odd tail byte after the last pair
        ("80 00 41 ff ff 00 42", "A", "decode"),  # FFFF ends the text
        # 81 written by another phone with ì/à as offsets from base 0080.
        ("81 0a 01 56 6f ec 63 65 20 4d e0 69 6c ff ff ff", "Voìce Màil", "decode"),
    ]

    @staticmethod
    def encode(value: Any, size: int) -> bytes:
        return encode_alpha(value, size)

    @staticmethod
    def decode(raw: bytes) -> Any:
        return decode_alpha(raw)


class EfAdnBcdVectors:
    """Dialling number digits of EF.ADN: swapped BCD, A-E mapped (TS 51.011 §10.5.1)."""

    VECTORS: ClassVar[list[Vector]] = [
        ("ba", "*#", "both"),
        ("21 c3 54", "123,45", "both"),  # C = DTMF pause, written ','
        ("d1 e2", "1?2!", "both"),  # D = wild '?', E = expansion '!'
        ("f0", "0", "both"),
        ("94 21 43 65 87", "4912345678", "both"),
        # A length byte that covers the FF padding (some phones write it): harmless.
        ("21 43 f5 ff ff", "12345", "decode"),
    ]

    @staticmethod
    def encode(value: Any, size: int) -> bytes:
        return encode_bcd(value)

    @staticmethod
    def decode(raw: bytes) -> Any:
        return decode_bcd(raw)


class EfAdnVectors:
    """Whole EF.ADN records, X = len - 14 (TS 51.011 §10.5.1)."""

    VECTORS: ClassVar[list[Vector]] = [
        (
            "41 6c 69 63 65" + FF * 13 + "06 91 94 21 43 65 87" + FF * 5 + "ff ff",
            AdnRecord("Alice", "+4912345678"),
            "both",
        ),
        (FF * 32, None, "both"),
        # Alpha all FF and length FF is empty whatever stale bytes follow.
        (FF * 18 + "ff 81 21 43" + FF * 8 + "00 ff", None, "decode"),
        ("42 6f 62" + FF * 15 + FF * 14, AdnRecord("Bob", ""), "both"),  # name only
        ("53 76 63" + FF * 7 + "02 81 ba" + FF * 9 + "ff ff", AdnRecord("Svc", "*#"), "both"),
        (
            "56 6f 69 63 65 6d 61 69 6c" + FF * 5 + "04 81 21 c3 54" + FF * 7 + "ff ff",
            AdnRecord("Voicemail", "123,45"),
            "both",
        ),
        ("00 01" + "03 91 94 f1" + FF * 8 + "ff ff", AdnRecord("@£", "+491"), "both"),
        (
            "5a" + "0b 81 21 43 65 87 09 21 43 65 87 09 ff ff",
            AdnRecord("Z", "12345678901234567890"),
            "both",
        ),
        ("03 81 11 f2" + FF * 8 + "ff ff", AdnRecord("", "112"), "both"),  # X = 0
        ("41 02 81 f1" + FF * 9 + "01 05", AdnRecord("A", "1", ccp=1, ext1=5), "both"),
        ("41 01 81" + FF * 10 + "ff ff", AdnRecord("A", "", ton_npi=0x81), "both"),
        ("41 03 a1 d1 e2" + FF * 8 + "ff ff", AdnRecord("A", "1?2!", ton_npi=0xA1), "both"),
    ]

    @staticmethod
    def encode(value: Any, size: int) -> bytes:
        if value is None:
            return b"\xff" * size
        return bytes(value.encode(size - 14))

    @staticmethod
    def decode(raw: bytes) -> Any:
        return AdnRecord.decode(raw)


_LONG30 = "123456789012345678901234567890"
_LONG45 = "0123456789" * 4 + "12345"
_BCD20 = "21 43 65 87 09 21 43 65 87 09"
_BCD20_0 = "10 32 54 76 98 10 32 54 76 98"


class EfAdnExt1Vectors:
    """EF.ADN with the number continued in EF.EXT1 records (TS 51.011 §10.5.10).

    Value: (record, [(ext1 record number, ext1 hex)]); the chain's ids are what
    the allocator hands out, in order.
    """

    VECTORS: ClassVar[list[Vector]] = [
        (
            "4c 6f 6e 67" + FF * 14 + "0b 81" + _BCD20 + "ff 07",
            (
                AdnRecord("Long", _LONG30, ext1=7),
                [(7, "02 05 21 43 65 87 09" + FF * 5 + "ff")],
            ),
            "both",
        ),
        (
            "4c" + "0b 91" + _BCD20_0 + "ff 03",
            (
                AdnRecord("L", "+" + _LONG45, ext1=3),
                [(3, "02 0a" + _BCD20_0 + "09"), (9, "02 03 21 43 f5" + FF * 7 + "ff")],
            ),
            "both",
        ),
    ]

    @staticmethod
    def encode(value: Any, size: int) -> bytes:
        record, chain = value
        ids = iter([rec_id for rec_id, _ in chain])
        raw, written = record.encode_with_ext(size - 14, lambda: next(ids))
        assert [(i, b.hex()) for i, b in written] == [(i, _h(h).hex()) for i, h in chain]
        return bytes(raw)

    @staticmethod
    def decode(raw: bytes) -> Any:
        # EF.EXT1 as the card would hold it: every chain of this class, distinct ids.
        store = {
            rec_id: _h(hx) for _, (_, chain), _ in EfAdnExt1Vectors.VECTORS for rec_id, hx in chain
        }
        record = AdnRecord.decode(raw, store.__getitem__)
        assert record is not None
        _, visited = read_ext1_chain(record.ext1, store.__getitem__)
        return record, [(rec_id, store[rec_id].hex()) for rec_id in visited]


VECTOR_CLASSES: list[Any] = [EfAdnAlphaVectors, EfAdnBcdVectors, EfAdnVectors, EfAdnExt1Vectors]

_CASES = [
    pytest.param(cls, hx, value, mode, id=f"{cls.__name__}-{i}")
    for cls in VECTOR_CLASSES
    for i, (hx, value, mode) in enumerate(cls.VECTORS)
]


@pytest.mark.parametrize(("cls", "hx", "value", "mode"), _CASES)
def test_vector(cls: Any, hx: str, value: Any, mode: str) -> None:
    raw = _h(hx)
    decoded = cls.decode(raw)
    if cls is EfAdnExt1Vectors:
        value = (value[0], [(i, _h(h).hex()) for i, h in value[1]])
    assert decoded == value
    if mode == "both":
        assert cls.encode(value, len(raw)).hex() == raw.hex()
