"""The SIM's PIN is never worn out: when the phone may present the configured PIN to a card.

A SIM blocks after three wrong PINs and then needs the PUK, and a daemon retries
for ever. So, per card (ICCID):

- after the card rejects a PIN once, that PIN is not presented to that card
  again; a different PIN in the PIN file (a person fixed it) is tried, once;
- no PIN is presented when the card reports fewer than 2 tries left (another
  terminal, or an older simsync, used them): the last try is a person's to spend;
- a PIN the card accepts clears the record.

The record lives in ``state_dir/pin-guard/<ICCID>``, so ``simsync sync`` and the
daemon share it. It holds a salted scrypt digest of the *rejected* PIN only (never
the right one, never the PIN itself), written atomically, mode 0600.

Every refusal is a ``SyncError`` with ``pin_rejected`` or ``card_blocked`` and a
message that says what a person must do; the PIN never appears in it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from cardio import errors as card_errors
from daemon.errors import SyncError
from syncproto.codes import ErrorCode

__all__ = ["MIN_TRIES", "PinCard", "PinGuard"]

log = structlog.get_logger(__name__)

# Fewer tries than this left and no PIN is presented: the last try is never ours.
MIN_TRIES = 2
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class PinCard(Protocol):
    """What the guard needs of ``cardio.session.PhonebookCard``."""

    @property
    def iccid(self) -> str: ...
    async def pin_tries_left(self) -> int | None: ...
    async def verify_pin(self, pin: str) -> None: ...


@dataclass(frozen=True)
class _Rejected:
    salt: bytes
    digest: bytes
    tries_left: int | None

    def matches(self, pin: str) -> bool:
        return hmac.compare_digest(self.digest, _digest(pin, self.salt))


def _digest(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("ascii"), salt=salt, **_SCRYPT)


class PinGuard:
    """The PIN rule for every card seen from one state directory."""

    def __init__(self, state_dir: Path, pin_file: Path | None) -> None:
        self.dir = state_dir / "pin-guard"
        self.pin_file = pin_file

    async def verify(self, card: PinCard, pin: str) -> None:
        """Present ``pin`` to ``card`` if the rule allows it; raise ``SyncError`` if not."""
        where = f"the PIN file {self.pin_file}" if self.pin_file else "the PIN file"
        rejected = self._load(card.iccid)
        if rejected is not None and rejected.matches(pin):
            log.warning("pin not presented: the card rejected it before", iccid=card.iccid)
            raise SyncError(
                ErrorCode.PIN_REJECTED,
                f"card {card.iccid} rejected the PIN in {where} before "
                f"(tries left: {_count(rejected.tries_left)}); simsync will not present it "
                f"again, so the card cannot be blocked: put the card's right PIN in {where}",
            )
        # None: verified already (by another program, or our last run on a card still
        # powered). The PIN is presented all the same, so a wrong file never goes
        # unnoticed because of how long pcscd keeps a card powered.
        tries = await card.pin_tries_left()
        if tries == 0:
            raise SyncError(
                ErrorCode.CARD_BLOCKED,
                f"card {card.iccid}'s PIN is blocked: unblock it with its PUK (in a phone), "
                f"then put the new PIN in {where}",
            )
        if tries is not None and tries < MIN_TRIES:
            log.warning("pin not presented: last try left", iccid=card.iccid, tries_left=tries)
            raise SyncError(
                ErrorCode.PIN_REJECTED,
                f"card {card.iccid} has {tries} PIN try left; simsync never spends the last "
                f"one (a wrong PIN would block the card): check the PIN in {where}, enter it "
                "once in a phone to reset the count, then sync again",
            )
        try:
            await card.verify_pin(pin)
        except card_errors.PinRejected as exc:
            self._store(card.iccid, pin, exc.tries_left)
            raise SyncError(
                ErrorCode.PIN_REJECTED,
                f"card {card.iccid} rejected the PIN in {where}; tries left: "
                f"{_count(exc.tries_left)}. simsync will not present that PIN to this card "
                f"again: put the card's right PIN in {where}",
            ) from exc
        except card_errors.CardBlocked as exc:
            self._store(card.iccid, pin, 0)
            raise SyncError(
                ErrorCode.CARD_BLOCKED,
                f"card {card.iccid} rejected the PIN in {where} and is now blocked: unblock "
                f"it with its PUK (in a phone), then put the new PIN in {where}",
            ) from exc
        self._clear(card.iccid)

    # --- the record ----------------------------------------------------------------

    def _path(self, iccid: str) -> Path:
        if not iccid.isdigit():  # an ICCID is digits; anything else must not name a file
            raise SyncError(ErrorCode.INTERNAL, f"card ICCID {iccid!r} is not a digit string")
        return self.dir / iccid

    def _load(self, iccid: str) -> _Rejected | None:
        path = self._path(iccid)
        try:
            data = json.loads(path.read_text(encoding="ascii"))
            tries = data["tries_left"]
            return _Rejected(
                bytes.fromhex(data["salt"]),
                bytes.fromhex(data["scrypt"]),
                tries if isinstance(tries, int) else None,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Unreadable means unknown: presenting a PIN then could cost a try, so refuse.
            raise SyncError(
                ErrorCode.INTERNAL,
                f"{path}: unreadable PIN record ({exc}); remove it only once the PIN file "
                "holds the card's right PIN",
            ) from exc

    def _store(self, iccid: str, pin: str, tries_left: int | None) -> None:
        import tempfile  # with shutil, bz2 and lzma: only when a PIN was rejected

        salt = secrets.token_bytes(16)
        record = {
            "salt": salt.hex(),
            "scrypt": _digest(pin, salt).hex(),
            "tries_left": tries_left,
        }
        path = self._path(iccid)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{iccid}.")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                json.dump(record, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        log.warning("pin rejected: recorded, not presented again", iccid=iccid)

    def _clear(self, iccid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(iccid).unlink()
            log.info("pin accepted again", iccid=iccid)


def _count(tries: int | None) -> str:
    return "unknown" if tries is None else str(tries)
