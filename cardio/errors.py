"""The error tree of the card layer: one root, link faults vs. card status words.

``CardioError`` is the root. ``LinkError`` covers everything between the host and
the card (PC/SC, reader, transport); ``CardStatusError`` is a card answering a
status word that means "no". ``InvalidRequest`` is the caller's fault (bad PIN
format, record number out of range) and is raised before anything is sent.

No message in this tree ever carries a PIN or PUK: they are built from status
words, file ids and counts only.
"""

# The issue names these errors (NoReader, CardRemoved, PinRejected...); an Error suffix
# on each would only stutter at every except clause.
# ruff: noqa: N818

from __future__ import annotations


class CardioError(Exception):
    """Root of every error raised by ``cardio``."""


class InvalidRequest(CardioError, ValueError):
    """The caller asked for something malformed; nothing was sent to the card."""


# --- link faults -------------------------------------------------------------


class LinkError(CardioError):
    """The path to the card failed (PC/SC, reader, transport)."""


class NoReader(LinkError):
    """No reader matches the requested name (or PC/SC has no readers at all)."""


class AmbiguousReader(NoReader):
    """More than one reader matches the requested name substring."""


class NoCard(LinkError):
    """The reader is there but holds no (responsive) card."""


class ReaderGone(LinkError):
    """The reader disappeared while in use, or the PC/SC service went away."""


class CardRemoved(LinkError):
    """The card was removed (or reset by someone else) while the link was open."""


class CardReset(CardRemoved):
    """Another program reset the card: PIN, channels and sessions of this connection ended."""


class CardTimeout(LinkError):
    """The card or the PC/SC service did not answer in time."""


class LinkClosed(LinkError):
    """The link is not open (never opened, or already closed)."""


class LinkProtocolError(LinkError):
    """The card's answer broke the link rules (too short, endless procedure bytes...)."""


class MalformedResponse(CardioError):
    """A successful answer whose data does not parse (bad TLV, wrong length)."""


# --- card status words -------------------------------------------------------


class CardStatusError(CardioError):
    """The card answered a status word that is not success.

    ``sw`` is the 16-bit status word, ``command`` a short name of what was sent
    (e.g. ``"READ RECORD"``), never its data.
    """

    def __init__(self, sw: int, command: str = "", detail: str = "") -> None:
        self.sw = sw
        self.command = command
        what = f"{command}: " if command else ""
        text = f"{what}card answered {sw:04X}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class PinRejected(CardStatusError):
    """Wrong PIN (or PUK); ``tries_left`` is None when the card did not say."""

    def __init__(self, sw: int, command: str = "", tries_left: int | None = None) -> None:
        self.tries_left = tries_left
        left = "tries left unknown" if tries_left is None else f"{tries_left} tries left"
        super().__init__(sw, command, f"wrong secret code, {left}")


class CardBlocked(CardStatusError):
    """The PIN (or PUK) is blocked; UNBLOCK (or a new card) is needed."""


class SecurityNotSatisfied(CardStatusError):
    """The access condition (usually the PIN) is not fulfilled."""


class FileNotFound(CardStatusError):
    """No file with that id where the card looked."""


class RecordNotFound(CardStatusError):
    """Record number out of range for the selected EF."""


class WrongFileType(CardStatusError):
    """The command does not fit the selected file (no EF selected, wrong structure)."""


class WrongLength(CardStatusError):
    """The card rejected the length (Lc / record size)."""


class WrongParameters(CardStatusError):
    """The card rejected P1/P2 (e.g. an index past the end)."""


class WrongData(CardStatusError):
    """The card rejected the command data (e.g. a bad TLV)."""


class ConditionsNotSatisfied(CardStatusError):
    """The card state does not allow the command now."""


class NoSession(ConditionsNotSatisfied):
    """A sync command needs an open NEWSYNC session on this channel, and there is none."""


class WrongSyncObject(WrongData):
    """STORESYNC carried a sync object other than the one proposed."""


class NotSupported(CardStatusError):
    """The card does not know this instruction or class."""


class SyncUnsupported(NotSupported):
    """The card has no sync-object applet (6D00/6E00 to a sync command)."""


class CardMemoryFailure(CardStatusError):
    """The card reports a memory problem while writing."""


__all__ = [
    "AmbiguousReader",
    "CardBlocked",
    "CardMemoryFailure",
    "CardRemoved",
    "CardReset",
    "CardStatusError",
    "CardTimeout",
    "CardioError",
    "ConditionsNotSatisfied",
    "FileNotFound",
    "InvalidRequest",
    "LinkClosed",
    "LinkError",
    "LinkProtocolError",
    "MalformedResponse",
    "NoCard",
    "NoReader",
    "NoSession",
    "NotSupported",
    "PinRejected",
    "ReaderGone",
    "RecordNotFound",
    "SecurityNotSatisfied",
    "SyncUnsupported",
    "WrongData",
    "WrongFileType",
    "WrongLength",
    "WrongParameters",
    "WrongSyncObject",
]
