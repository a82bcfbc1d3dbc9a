"""EF.EXT1 (TS 51.011 §10.5.10): extension records chained from EF.ADN.

A record is 13 bytes: record type, 11 bytes of extension data, identifier of the
next record (``FF`` = none). Type ``02`` (additional data) carries the digits of
a number beyond the 20 an ADN record holds: a length byte (BCD bytes used, 1-10)
and 10 bytes of swapped BCD. Type ``01`` (called party subaddress) is not
modelled; a chain walk steps over it. Record identifiers are EF.EXT1 record
numbers, 1-254.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cardio.codecs.bcd import decode_bcd, encode_bcd
from cardio.codecs.errors import InvalidField, MalformedRecord

__all__ = [
    "EXT1_DIGITS",
    "EXT1_RECORD_LEN",
    "MAX_EXT1_ID",
    "NO_EXT1",
    "Ext1Record",
    "encode_ext1_chain",
    "read_ext1_chain",
]

EXT1_RECORD_LEN = 13
EXT1_DIGITS = 20
NO_EXT1 = 0xFF
MAX_EXT1_ID = 254

_TYPE_SUBADDRESS = 0x01
_TYPE_ADDITIONAL = 0x02
_BCD_BYTES = 10


def _check_id(value: int, what: str) -> None:
    if not 1 <= value <= MAX_EXT1_ID:
        raise InvalidField(f"{what} must be an EXT1 record number 1-{MAX_EXT1_ID}, not {value}")


@dataclass(frozen=True)
class Ext1Record:
    """One EF.EXT1 "additional data" record: up to 20 more digits and the next link."""

    digits: str
    next_id: int = NO_EXT1

    def __post_init__(self) -> None:
        if not 1 <= len(self.digits) <= EXT1_DIGITS:
            raise InvalidField(
                f"an EXT1 record holds 1-{EXT1_DIGITS} digits, not {len(self.digits)}"
            )
        encode_bcd(self.digits)  # raises InvalidNumber naming the bad character
        if self.next_id != NO_EXT1:
            _check_id(self.next_id, "next EXT1 id")

    def encode(self) -> bytes:
        """The 13-byte record."""
        bcd = encode_bcd(self.digits)
        pad = b"\xff" * (_BCD_BYTES - len(bcd))
        return bytes((_TYPE_ADDITIONAL, len(bcd))) + bcd + pad + bytes((self.next_id,))

    @classmethod
    def decode(cls, raw: bytes) -> Ext1Record:
        """Parse an additional-data record; MalformedRecord for anything else."""
        if len(raw) != EXT1_RECORD_LEN:
            raise MalformedRecord(f"EXT1 record is {EXT1_RECORD_LEN} bytes, got {len(raw)}")
        if raw[0] != _TYPE_ADDITIONAL:
            raise MalformedRecord(f"EXT1 record type {raw[0]:02X} is not additional data (02)")
        length = raw[1]
        if not 1 <= length <= _BCD_BYTES:
            raise MalformedRecord(f"EXT1 BCD length {length} outside 1-{_BCD_BYTES}")
        next_id = raw[12]
        if next_id != NO_EXT1 and not 1 <= next_id <= MAX_EXT1_ID:
            raise MalformedRecord(f"EXT1 next record id {next_id} outside 1-{MAX_EXT1_ID}")
        return cls(decode_bcd(raw[2 : 2 + length]), next_id)


def encode_ext1_chain(digits: str, alloc: Callable[[], int]) -> list[tuple[int, bytes]]:
    """EXT1 records holding ``digits``, 20 per record, linked in order.

    ``alloc`` is called once per record, before any record is built, and must
    return distinct free record numbers (1-254). Returns ``[(record_no, bytes)]``,
    the first one being the record the ADN points at.
    """
    chunks = [digits[i : i + EXT1_DIGITS] for i in range(0, len(digits), EXT1_DIGITS)]
    for chunk in chunks:
        encode_bcd(chunk)  # bad characters fail before anything is allocated
    ids: list[int] = []
    for _ in chunks:
        rec_id = alloc()
        _check_id(rec_id, "allocated EXT1 id")
        if rec_id in ids:
            raise InvalidField(f"EXT1 allocator returned record {rec_id} twice")
        ids.append(rec_id)
    links = [*ids[1:], NO_EXT1]
    return [
        (rec_id, Ext1Record(chunk, nxt).encode())
        for rec_id, chunk, nxt in zip(ids, chunks, links, strict=True)
    ]


def read_ext1_chain(first_id: int, reader: Callable[[int], bytes]) -> tuple[str, list[int]]:
    """Follow a chain from ``first_id``: the extra digits and the records visited.

    ``reader(record_no)`` returns the 13 raw bytes of that EXT1 record. Subaddress
    records are stepped over. A loop, an empty or unknown record, or an id out of
    range raises MalformedRecord (a loop never hangs: each record is read once).
    """
    digits: list[str] = []
    visited: list[int] = []
    rec_id = first_id
    while rec_id != NO_EXT1:
        if not 1 <= rec_id <= MAX_EXT1_ID:
            raise MalformedRecord(f"EXT1 chain points at record {rec_id}, outside 1-{MAX_EXT1_ID}")
        if rec_id in visited:
            raise MalformedRecord(f"EXT1 chain loops back to record {rec_id} after {visited}")
        visited.append(rec_id)
        raw = reader(rec_id)
        if len(raw) == EXT1_RECORD_LEN and raw[0] == _TYPE_SUBADDRESS:
            rec_id = raw[12]
            continue
        record = Ext1Record.decode(raw)
        digits.append(record.digits)
        rec_id = record.next_id
    return "".join(digits), visited
