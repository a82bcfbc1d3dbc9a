"""The card's persistent state, the changes the core makes to it, and the store seam.

The core (``card.py``) keeps a working copy of ``CardState``. Every state-changing
APDU becomes one list of ``Change`` values handed to ``Store.commit`` in one
piece; only after the store accepted it does the core apply it to its copy. So a
store that cannot write (disk full, I/O error) makes the APDU fail with nothing
changed, and an image store can make each list one transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from simcard import fs
from simcard.errors import CardParamError

__all__ = [
    "DEFAULT_ICCID",
    "CardParams",
    "CardState",
    "Change",
    "ChvChange",
    "MemoryStore",
    "RecordChange",
    "Slot",
    "SlotChange",
    "Store",
    "apply_changes",
    "encode_iccid",
    "is_empty",
    "luhn_ok",
    "new_state",
    "pad_code",
]

# A test ICCID (89 telecom, 49 country) whose last digit is its Luhn check digit.
DEFAULT_ICCID = "8949000012345678903"
PIN_TRIES = 3
PUK_TRIES = 10
SYNC_OBJECT_LEN = 8
MAX_PARTNER_LEN = 16


def is_empty(record: bytes) -> bool:
    """An empty record is all ``FF`` (TS 51.011)."""
    return record.count(0xFF) == len(record)


def luhn_ok(digits: str) -> bool:
    """True when the last digit is the Luhn check digit of the others."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        v = int(ch)
        if i % 2 == 1:
            v = v * 2 - 9 if v > 4 else v * 2
        total += v
    return total % 10 == 0


def pad_code(code: str) -> bytes:
    """A PIN/PUK as the card compares it: ASCII digits padded with ``FF`` to 8 bytes."""
    return code.encode("ascii").ljust(8, b"\xff")


def encode_iccid(iccid: str) -> bytes:
    """EF.ICCID content: 10 bytes of nibble-swapped BCD, padded with ``F``."""
    digits = iccid.ljust(20, "F")
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, 20, 2))


def _encode_imsi(imsi: str) -> bytes:
    # TS 51.011 10.3.2: length, then parity nibble 9 (odd digit count) + digits, swapped.
    nibbles = [9] + [int(c) for c in imsi]
    body = bytes(nibbles[i + 1] << 4 | nibbles[i] for i in range(0, len(nibbles), 2))
    return bytes((len(body),)) + body


@dataclass(frozen=True)
class CardParams:
    """What a card is made with; fixed for its lifetime."""

    records: int = 250
    alpha_len: int = 18
    iccid: str = DEFAULT_ICCID
    partners: int = 8
    sync_applet: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.records <= 254:
            raise CardParamError(f"records must be 1..254, got {self.records}")
        if not 1 <= self.alpha_len <= 255 - 14:
            raise CardParamError(f"alpha length must be 1..241, got {self.alpha_len}")
        if not (self.iccid.isascii() and self.iccid.isdigit() and 18 <= len(self.iccid) <= 20):
            raise CardParamError(f"ICCID must be 18-20 digits, got {self.iccid!r}")
        if not 8 <= self.partners <= 16:
            raise CardParamError(f"partner table size must be 8..16, got {self.partners}")


def check_codes(pin: str, puk: str) -> None:
    """Raise ``CardParamError`` unless the PIN is 4-8 digits and the PUK 8 digits."""
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        raise CardParamError("PIN must be 4-8 digits")
    if not (puk.isascii() and puk.isdigit() and len(puk) == 8):
        raise CardParamError("PUK must be 8 digits")


@dataclass(frozen=True)
class Slot:
    """One partner-table entry: who, which EF, its last sync object, STORESYNC order."""

    partner: bytes
    fid: int
    obj: bytes
    seq: int


@dataclass
class CardState:
    """Everything the card keeps across power cycles (mutable working copy)."""

    params: CardParams
    binaries: dict[int, bytes]
    records: dict[int, list[bytes]]
    # Per linear fixed EF under DF.TELECOM, per record: dirty mask D (bits 0-15)
    # and empty-at-baseline mask E (bits 16-31); see applet.py.
    meta: dict[int, list[int]]
    pin: bytes
    puk: bytes
    pin_left: int
    puk_left: int
    slots: list[Slot | None]

    def snapshot(self) -> tuple[object, ...]:
        """A hashable, comparable image of the whole state (for tests and checks)."""
        return (
            self.params,
            tuple(sorted(self.binaries.items())),
            tuple((f, tuple(r)) for f, r in sorted(self.records.items())),
            tuple((f, tuple(m)) for f, m in sorted(self.meta.items())),
            self.pin,
            self.puk,
            self.pin_left,
            self.puk_left,
            tuple(self.slots),
        )


@dataclass(frozen=True)
class RecordChange:
    """New content (None: unchanged) and new sync metadata of one record."""

    fid: int
    rec: int
    data: bytes | None
    meta: int


@dataclass(frozen=True)
class ChvChange:
    """New PIN and retry counters."""

    pin: bytes
    pin_left: int
    puk_left: int


@dataclass(frozen=True)
class SlotChange:
    """A partner-table entry written (or freed with ``None``)."""

    index: int
    slot: Slot | None


Change = RecordChange | ChvChange | SlotChange


def apply_changes(state: CardState, changes: Sequence[Change]) -> None:
    """Apply a committed change list to a state."""
    for ch in changes:
        if isinstance(ch, RecordChange):
            if ch.data is not None:
                state.records[ch.fid][ch.rec - 1] = ch.data
            state.meta[ch.fid][ch.rec - 1] = ch.meta
        elif isinstance(ch, ChvChange):
            state.pin, state.pin_left, state.puk_left = ch.pin, ch.pin_left, ch.puk_left
        else:
            state.slots[ch.index] = ch.slot


def new_state(params: CardParams, pin: str, puk: str) -> CardState:
    """A fresh card: empty phonebook, plausible GSM files, full retry counters."""
    check_codes(pin, puk)
    records = {
        fid: [b"\xff" * fs.record_length(fid, params.alpha_len)]
        * fs.record_count(fid, params.records)
        for fid in fs.LINEAR_EFS
    }
    binaries = {
        fs.EF_ICCID: encode_iccid(params.iccid),
        fs.EF_IMSI: _encode_imsi("001010123456789"),  # MCC 001 / MNC 01: the test network
        fs.EF_AD: bytes.fromhex("00000002"),  # normal operation, 2-digit MNC
        fs.EF_SST: bytes.fromhex("ff3fffff003f0300"),
        fs.EF_ACC: bytes.fromhex("0001"),
    }
    return CardState(
        params=params,
        binaries=binaries,
        records=records,
        meta={fid: [0] * len(recs) for fid, recs in records.items()},
        pin=pad_code(pin),
        puk=pad_code(puk),
        pin_left=PIN_TRIES,
        puk_left=PUK_TRIES,
        slots=[None] * params.partners,
    )


class Store(Protocol):
    """Where a card's state lives between APDUs."""

    def load(self) -> CardState:
        """The state as last committed (a fresh copy the core may mutate)."""
        ...

    def commit(self, changes: Sequence[Change]) -> None:
        """Make all of ``changes`` durable, or none of them (then raise ``ImageError``)."""
        ...

    def close(self) -> None:
        """Release the backing resources; further commits are errors."""
        ...


class MemoryStore:
    """A store in RAM: the same core, no file. Keeps its own copy so tests can compare."""

    def __init__(self, state: CardState) -> None:
        self._state = copy.deepcopy(state)
        self.commits = 0

    def load(self) -> CardState:
        """A deep copy of the committed state."""
        return copy.deepcopy(self._state)

    def commit(self, changes: Sequence[Change]) -> None:
        """Apply the changes to the kept copy."""
        apply_changes(self._state, changes)
        self.commits += 1

    def close(self) -> None:
        """Nothing to release."""

    def snapshot(self) -> tuple[object, ...]:
        """The committed state, comparable (see ``CardState.snapshot``)."""
        return self._state.snapshot()
