"""The contact-store seam: what the PDA sync engine sees of an address book.

A store holds contacts keyed by UID. The engine only ever reads a contact's
*projection* (formatted name + preferred number, what fits on a SIM record) and
changes only that; everything else a contact holds is the store's business and
must survive (see DESIGN.md, "Nothing lost").

`MemoryStore` is the in-package fake with the same semantics as the real
`pda.vdir.VdirStore`; both pass the contract tests in `tests/pda_store/`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
]


@dataclass(frozen=True)
class Projection:
    """What a contact looks like to the card: its formatted name and one number.

    The number is the contact's preferred TEL, normalised (see normalize_number).
    """

    name: str
    number: str | None  # None: the contact has no number (it stays on the PDA, counted as skipped)


@dataclass(frozen=True)
class ContactInfo:
    """One contact as the sync engine sees it."""

    uid: str
    projection: Projection
    etag: str  # content hash of the stored vCard (changes whenever the file's content changes)


class StoreError(Exception):
    """Root of the store's errors."""


class BadContact(StoreError):  # noqa: N818 - name fixed by the shared store interface
    """A stored contact cannot be read (unparsable vCard, several VCARDs in one file...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


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

    def delete(self, uid: str) -> None:
        """Remove a contact (ContactNotFoundError when there is none)."""
        ...


# Separators people type inside numbers; everything else of meaning is kept:
# '+' (international), digits, '*' '#' (SS codes), 'p'/'w' (DTMF pause/wait).
_NUMBER_SEPARATORS = re.compile(r"[\s\-().]")
_NUMBER_OK = re.compile(r"\+?[0-9*#pw]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_number(raw: str) -> str:
    """A phone number with spaces, dashes, parentheses and dots stripped; P/W lower-cased.

    The result keeps '+', digits, '*', '#', 'p' and 'w' only. Raises
    InvalidProjectionError for anything else (letters, a '+' not in front), so a
    vanity number like ``1-800-FLOWERS`` is refused rather than mangled.
    """
    cleaned = _NUMBER_SEPARATORS.sub("", raw)
    cleaned = cleaned.replace("P", "p").replace("W", "w")
    if cleaned.startswith("tel:"):  # vCard 4.0 writes TEL as a tel: URI
        cleaned = cleaned[4:]
    if not _NUMBER_OK.fullmatch(cleaned):
        raise InvalidProjectionError(f"number {raw!r} holds characters other than + 0-9 * # p w")
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


def _validate_uid(uid: str) -> None:
    if not isinstance(uid, str) or not uid or _CONTROL.search(uid) or uid != uid.strip():
        raise InvalidProjectionError(f"uid {uid!r} must be non-empty, without control characters")


def new_uid() -> str:
    """A fresh, globally unique contact UID."""
    return str(uuid.uuid4())


def _memory_etag(uid: str, projection: Projection, extra: tuple[tuple[str, str], ...]) -> str:
    text = "\x1f".join([uid, projection.name, projection.number or "", repr(extra)])
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryStore:
    """In-memory ContactStore with the vdir's semantics; the fake for sync-engine tests.

    `extra` fields stand in for everything a real vCard holds beyond the
    projection (e-mail, notes...): update_projection never touches them, so a
    test can check that "nothing lost" holds through the engine.
    """

    def __init__(self, store_id: str | None = None) -> None:
        self.store_id: str = store_id if store_id is not None else secrets.token_hex(16)
        self._contacts: dict[str, tuple[Projection, tuple[tuple[str, str], ...]]] = {}
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
        extra: tuple[tuple[str, str], ...] = (),
    ) -> str:
        """Add a contact; `extra` lets tests give it fields beyond the projection."""
        projection = validate_projection(projection)
        if uid is None:
            uid = new_uid()
        _validate_uid(uid)
        if uid in self._contacts:
            raise ContactExistsError(f"contact {uid!r} already exists")
        self._contacts[uid] = (projection, tuple(extra))
        return uid

    def update_projection(self, uid: str, projection: Projection) -> None:
        """Replace the projection; extra fields stay."""
        projection = validate_projection(projection)
        try:
            _old, extra = self._contacts[uid]
        except KeyError:
            raise ContactNotFoundError(f"no contact {uid!r}") from None
        self._contacts[uid] = (projection, extra)

    def delete(self, uid: str) -> None:
        """Remove a contact."""
        if self._contacts.pop(uid, None) is None:
            raise ContactNotFoundError(f"no contact {uid!r}")

    def extra(self, uid: str) -> tuple[tuple[str, str], ...]:
        """The non-projection fields of a contact (for tests of "nothing lost")."""
        return self._contacts[uid][1]

    def _info(self, uid: str) -> ContactInfo:
        projection, extra = self._contacts[uid]
        return ContactInfo(uid, projection, _memory_etag(uid, projection, extra))
