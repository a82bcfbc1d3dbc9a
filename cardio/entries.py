"""Phonebook entries as the phone reads and writes them: decoding, and writes with EXT1 chains.

``PhonebookCard.entry``/``put``/``delete`` call these; they hold what a caller
above ``cardio`` must not have to know: a number over 20 digits continues in
EF.EXT1 (TS 51.011 §10.5.10), a long chain is allocated from EXT1's free
records, and a record's old chain is released only after the record no longer
points at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from cardio.codecs import (
    ADN_DIGITS,
    EXT1_RECORD_LEN,
    NO_EXT1,
    AdnRecord,
    CodecError,
    card_name,
)

__all__ = ["Contact", "Refusal", "Refused", "Unreadable", "Written"]

# GSM 7-bit carries LF/CR; a name leaving the card is one line of text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Contact:
    """A record as one line of name ('' when blank) and a number ('' when none), not both ''."""

    record: int
    name: str
    number: str


@dataclass(frozen=True)
class Unreadable:
    """A record holding bytes simsync cannot decode (another phone's format): never written."""

    record: int
    reason: str


class Refusal(Enum):
    """Why ``put`` wrote nothing."""

    UNENCODABLE = "unencodable"
    EXT1_FULL = "ext1_full"
    CARD_FULL = "card_full"


@dataclass(frozen=True)
class Refused:
    """A write the card cannot take; the contact stays where it is."""

    why: Refusal
    message: str


@dataclass(frozen=True)
class Written:
    """What ``put`` stored: the record, the name as the card holds it, and whether it is new."""

    record: int
    name: str
    added: bool


class PhonebookCard(Protocol):
    """What these functions need of ``cardio.session.PhonebookCard`` (which calls them)."""

    @property
    def alpha_len(self) -> int: ...
    @property
    def record_len(self) -> int: ...
    @property
    def put_records(self) -> set[int]: ...
    def cached_or_none(self) -> dict[int, bytes] | None: ...
    async def read_record(self, number: int) -> bytes: ...
    async def write_record(self, number: int, raw: bytes) -> None: ...
    async def free_record(self, taken: set[int]) -> int | None: ...
    async def read_ext1_chain(self, first: int) -> dict[int, bytes]: ...
    async def ext1_free(self) -> list[int]: ...
    async def write_ext1(self, records: dict[int, bytes]) -> None: ...


def _empty(raw: bytes) -> bool:
    return all(b == 0xFF for b in raw)


async def decode_entry(card: PhonebookCard, record: int, raw: bytes) -> Contact | Unreadable | None:
    """The record ``raw`` read from ``record``: None when it is empty."""
    if _empty(raw):
        return None
    try:
        rec = AdnRecord.decode(raw)
        if rec is not None and rec.ext1 != NO_EXT1 and len(rec.digits) == ADN_DIGITS:
            # A number over 20 digits continues in EF.EXT1: never hand it out cut short.
            chain = await card.read_ext1_chain(rec.ext1)
            rec = AdnRecord.decode(raw, ext1_reader=chain.__getitem__)
    except (CodecError, KeyError) as exc:
        return Unreadable(record, str(exc))
    name = _CONTROL.sub(" ", rec.name) if rec is not None else ""
    if not name.strip():
        # A blank name (a space, a line break, as another terminal may write) is no
        # name: the record is nameless, named by its number on the PDA.
        name = ""
    if rec is None or not (name or rec.number):
        return None  # nothing but blanks: it holds no contact
    return Contact(record, name, rec.number)


async def put(card: PhonebookCard, record: int | None, name: str, number: str) -> Written | Refused:
    """Write ``name``/``number`` to ``record`` (None: a free one), its EXT1 chain first."""
    name = card_name(name, card.alpha_len)
    try:
        raw, chain = await _encode(card, AdnRecord(name, number))
    except CodecError as exc:
        return Refused(Refusal.UNENCODABLE, f"the card cannot hold it: {exc}")
    except _Ext1FullError:
        return Refused(Refusal.EXT1_FULL, "no free EF.EXT1 record for a number over 20 digits")
    added = record is None
    if record is None:
        record = await card.free_record(card.put_records)
        if record is None:
            return Refused(Refusal.CARD_FULL, "card full")
    card.put_records.add(record)
    # New chain first, then the record that points at it, then the old chain's
    # release: a crash in between leaks an EXT1 record at worst, never a digit.
    old_chain = await _chain_of(card, record)
    if chain:
        await card.write_ext1(dict(chain))
    await card.write_record(record, raw)
    await _free_chain(card, old_chain - {n for n, _ in chain})
    return Written(record, name, added)


async def delete(card: PhonebookCard, record: int) -> None:
    """Empty ``record``, then release the EXT1 chain it pointed at."""
    old_chain = await _chain_of(card, record)
    await card.write_record(record, b"\xff" * card.record_len)
    await _free_chain(card, old_chain)


class _Ext1FullError(Exception):
    """EF.EXT1 has no free record left for a long number's chain."""


async def _encode(card: PhonebookCard, rec: AdnRecord) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The record's bytes and, for a number over 20 digits, its EF.EXT1 chain."""
    if len(rec.digits) <= ADN_DIGITS:
        return rec.encode(card.alpha_len), []
    free = iter(list(await card.ext1_free()))

    def alloc() -> int:
        try:
            return next(free)
        except StopIteration:
            raise _Ext1FullError from None

    return rec.encode_with_ext(card.alpha_len, alloc)


async def _chain_of(card: PhonebookCard, record: int) -> set[int]:
    """EF.EXT1 records the card's record ``record`` links to now (checked on the card)."""
    cached = card.cached_or_none()
    if cached is not None and _ext1_of(cached.get(record, b"")) is None:
        return set()  # the copy may be stale, but a stale miss only leaks a record
    first = _ext1_of(await card.read_record(record))
    if first is None:
        return set()
    return set(await card.read_ext1_chain(first))


def _ext1_of(raw: bytes) -> int | None:
    """The first EXT1 record a full 20-digit ADN record links to, if any."""
    try:
        rec = AdnRecord.decode(raw) if raw else None
    except CodecError:
        return None
    if rec is None or rec.ext1 == NO_EXT1 or len(rec.digits) != ADN_DIGITS:
        return None
    return rec.ext1


async def _free_chain(card: PhonebookCard, chain: set[int]) -> None:
    if chain:
        await card.write_ext1(dict.fromkeys(sorted(chain), b"\xff" * EXT1_RECORD_LEN))
