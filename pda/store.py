"""The contact-store seam: what the PDA sync engine sees of an address book.

A store holds contacts keyed by UID. The engine only ever reads a contact's
*projection* (formatted name + preferred number, what fits on a SIM record) and
changes only that; everything else a contact holds is the store's business and
must survive (see DESIGN.md, "Nothing lost").

`MemoryStore` is the in-package fake with the same semantics as the real
`pda.vdir.VdirStore`; both pass the contract tests in `tests/pda_store/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import PdaError

__all__ = [
    "BadContact",
    "ContactExistsError",
    "ContactInfo",
    "ContactNotFoundError",
    "ContactStore",
    "InvalidProjectionError",
    "MemoryStore",
    "Projection",
    "StoreError",
    "StoreIOError",
    "new_uid",
    "normalize_number",
    "validate_projection",
    "validate_uid",
]


@dataclass(frozen=True, slots=True)
class Projection:
    """What a contact looks like to the card: its formatted name and one number.

    The number is the contact's preferred TEL, normalised (see normalize_number).
    """

    name: str
    number: str | None  # None: the contact has no number (it stays on the PDA, counted as skipped)


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """One contact as the sync engine sees it."""

    uid: str
    projection: Projection
    etag: str  # content hash of the stored vCard (changes whenever the file's content changes)


class StoreError(PdaError):
    """Root of the store's errors."""


class BadContact(StoreError):  # noqa: N818 - name fixed by the shared store interface
    """A stored contact cannot be read (unparsable vCard, several VCARDs in one file...).

    `uids`: every uid the file may have stood for (the one last read from it, its
    UID line, its name), so a contact whose file turned unreadable is never taken
    for a deleted one, whatever the file is called.
    """

    def __init__(self, path: str, reason: str, uids: Iterable[str] = ()) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.uids = frozenset(uids)


class ContactNotFoundError(StoreError, KeyError):
    """update_projection/delete of a UID the store does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "contact not found"


class ContactExistsError(StoreError):
    """create() with a UID the store already holds."""


class InvalidProjectionError(StoreError, ValueError):
    """A projection the store refuses (empty name, control characters, a number with letters)."""


class StoreIOError(StoreError):
    """The filesystem failed under the store (permissions, disk full...); nothing was changed."""


@runtime_checkable
class ContactStore(Protocol):
    """An address book the PDA syncs with the card."""

    # Random id made when the store was created; a wiped/re-created store gets a new one.
    store_id: str
    # Files the last scan set aside (unreadable, oversized, duplicate UID...), named with why.
    bad_files: list[BadContact]

    def scan(self) -> dict[str, ContactInfo]:
        """Every readable contact, keyed by uid; cheap when little changed."""
        ...

    def get(self, uid: str) -> ContactInfo | None:
        """One contact, or None when there is none with that uid (BadContact if unreadable)."""
        ...

    def create(self, projection: Projection, uid: str | None = None) -> str:
        """Make a new contact (vCard with FN, N, TEL) and return its uid."""
        ...

    def update_projection(self, uid: str, projection: Projection) -> None:
        """Change only FN (N too when N was absent) and the preferred TEL; keep everything else."""
        ...

    def unreadable(self, uid: str) -> bool:
        """True when the contact's file exists but the last scan could not read it."""
        ...

    def delete(self, uid: str) -> None:
        """Remove a contact (ContactNotFoundError when there is none)."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Changes made inside share one write of the store's own bookkeeping.

        The contacts themselves are written at once, as outside; a sync wraps its
        changes in one batch so its status-table writes are one transaction.
        """
        ...


# Separators people type inside numbers; everything else of meaning is kept:
# What a card can hold (TS 51.011 BCD): '+' (international), digits, '*' '#' (SS codes),
# ',' (DTMF pause, BCD C), '?' (wild, D), '!' (expansion, E).
_NUMBER_SEPARATORS = re.compile(r"[\s\-().]")
_NUMBER_OK = re.compile(r"\+?[0-9*#,?!]*")
_PAUSES = str.maketrans({"p": ",", "P": ",", "w": ",", "W": ",", ";": ","})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_number(raw: str) -> str:
    """A phone number with spaces, dashes, parentheses and dots stripped; P/W lower-cased.

    Dialler pause/wait letters (``p``, ``w``, ``;``) become the card's one pause
    character ``,``: the card has no separate wait (the vCard file keeps what it had
    unless the number is edited on the card). The result keeps ``+``, digits, ``*``,
    ``#``, ``,``, ``?`` and ``!`` only — the card's alphabet. Raises
    InvalidProjectionError for anything else (letters, a '+' not in front), so a
    vanity number like ``1-800-FLOWERS`` is refused rather than mangled.
    """
    cleaned = _NUMBER_SEPARATORS.sub("", raw)
    cleaned = cleaned.translate(_PAUSES)
    if cleaned.startswith("tel:"):  # vCard 4.0 writes TEL as a tel: URI
        cleaned = cleaned[4:]
    if not _NUMBER_OK.fullmatch(cleaned):
        raise InvalidProjectionError(f"number {raw!r} holds characters other than + 0-9 * # , ? !")
    return cleaned


def validate_projection(projection: Projection) -> Projection:
    """Check a projection and return it with its number normalised, or raise."""
    if not isinstance(projection.name, str) or not projection.name.strip():
        raise InvalidProjectionError("name must be a non-empty string")
    if _CONTROL.search(projection.name):
        raise InvalidProjectionError(f"name {projection.name!r} holds control characters")
    if projection.number is None:
        return projection
    number = normalize_number(projection.number)
    if not number.lstrip("+"):
        raise InvalidProjectionError(f"number {projection.number!r} holds no digits")
    return Projection(projection.name, number)


def validate_uid(uid: str) -> None:
    """Refuse an empty UID, one with control characters or outer spaces (InvalidProjectionError)."""
    if not isinstance(uid, str) or not uid or _CONTROL.search(uid) or uid != uid.strip():
        raise InvalidProjectionError(f"uid {uid!r} must be non-empty, without control characters")


def new_uid() -> str:
    """A fresh, globally unique contact UID."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class _MemoryContact:
    name: str
    numbers: tuple[str, ...]  # normalised; the first is the preferred TEL
    extra: tuple[tuple[str, str], ...]

    @property
    def projection(self) -> Projection:
        return Projection(self.name, self.numbers[0] if self.numbers else None)

    def etag(self, uid: str) -> str:
        text = repr((uid, self.name, self.numbers, self.extra))
        return hashlib.sha256(text.encode()).hexdigest()


class MemoryStore:
    """In-memory ContactStore with the vdir's semantics; the fake for sync-engine tests.

    A contact holds a name, a list of numbers (the first is the preferred TEL)
    and `extra` fields standing in for everything else a vCard holds (e-mail,
    notes...). As in the vdir, update_projection changes the name and the
    preferred number only; a number of None removes the preferred number, and
    the next one (if any) becomes preferred. An unchanged projection keeps the etag.
    """

    def __init__(self, store_id: str | None = None) -> None:
        self.store_id: str = store_id if store_id is not None else secrets.token_hex(16)
        self._contacts: dict[str, _MemoryContact] = {}
        self.bad_files: list[BadContact] = []  # always empty: kept for parity with VdirStore

    def scan(self) -> dict[str, ContactInfo]:
        """Every contact, keyed by uid."""
        return {uid: self._info(uid) for uid in self._contacts}

    def get(self, uid: str) -> ContactInfo | None:
        """One contact, or None."""
        return self._info(uid) if uid in self._contacts else None

    def create(
        self,
        projection: Projection,
        uid: str | None = None,
        *,
        other_numbers: tuple[str, ...] = (),
        extra: tuple[tuple[str, str], ...] = (),
    ) -> str:
        """Add a contact; tests may give it more numbers and fields beyond the projection."""
        projection = validate_projection(projection)
        others = tuple(normalize_number(n) for n in other_numbers)
        if others and projection.number is None:
            raise InvalidProjectionError("other numbers given but no preferred number")
        if uid is None:
            uid = new_uid()
        validate_uid(uid)
        if uid in self._contacts:
            raise ContactExistsError(f"contact {uid!r} already exists")
        numbers = (projection.number, *others) if projection.number is not None else others
        self._contacts[uid] = _MemoryContact(projection.name, numbers, tuple(extra))
        return uid

    def update_projection(self, uid: str, projection: Projection) -> None:
        """Replace the name and the preferred number; everything else stays."""
        projection = validate_projection(projection)
        try:
            old = self._contacts[uid]
        except KeyError:
            raise ContactNotFoundError(f"no contact {uid!r}") from None
        numbers = old.numbers
        if projection.number != old.projection.number:
            rest = numbers[1:]
            numbers = rest if projection.number is None else (projection.number, *rest)
        self._contacts[uid] = _MemoryContact(projection.name, numbers, old.extra)

    def unreadable(self, uid: str) -> bool:
        """A memory store reads everything it holds."""
        return False

    def delete(self, uid: str) -> None:
        """Remove a contact."""
        if self._contacts.pop(uid, None) is None:
            raise ContactNotFoundError(f"no contact {uid!r}")

    def batch(self) -> AbstractContextManager[None]:
        """Nothing to batch: a memory store keeps no bookkeeping."""
        return contextlib.nullcontext()

    def extra(self, uid: str) -> tuple[tuple[str, str], ...]:
        """The non-projection fields of a contact (for tests of "nothing lost")."""
        return self._contacts[uid].extra

    def numbers(self, uid: str) -> tuple[str, ...]:
        """All numbers of a contact, the preferred one first."""
        return self._contacts[uid].numbers

    def _info(self, uid: str) -> ContactInfo:
        contact = self._contacts[uid]
        return ContactInfo(uid, contact.projection, contact.etag(uid))
