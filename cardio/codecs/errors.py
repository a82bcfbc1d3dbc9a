"""The error tree of the EF codecs: one root, subclasses by fault.

Encoding errors (``NameTooLong``, ``UnencodableName``, ``NumberTooLong``,
``InvalidNumber``, ``InvalidField``) are the caller's input; ``MalformedRecord``
is bytes read from a card that break TS 51.011. Every one is a ``ValueError`` so
callers that only care about "bad data" can catch that, and a ``CardioError`` like
every other error of the card layer.
"""

from __future__ import annotations

from cardio.errors import CardioError

__all__ = [
    "CodecError",
    "InvalidField",
    "InvalidNumber",
    "MalformedRecord",
    "NameTooLong",
    "NumberTooLong",
    "UnencodableName",
]


# The subclasses name the fault without an "Error" suffix (the team's agreed API);
# the root carries it, and every one is caught as CodecError.
class CodecError(CardioError, ValueError):
    """Root of every error raised by ``cardio.codecs`` (part of cardio's one error tree)."""


class NameTooLong(CodecError):  # noqa: N818 - agreed API name, reads as the fault
    """The name needs more bytes than the alpha identifier has, in its shortest form."""

    def __init__(self, name: str, alpha_len: int, needed: int) -> None:
        super().__init__(
            f"name {name!r} needs {needed} bytes, the alpha identifier holds {alpha_len}"
        )
        self.name = name
        self.alpha_len = alpha_len
        self.needed = needed


class UnencodableName(CodecError):  # noqa: N818 - agreed API name, reads as the fault
    """The name holds a character that no alpha identifier coding can represent."""

    def __init__(self, name: str, char: str, position: int) -> None:
        super().__init__(
            f"name {name!r}: character {char!r} (U+{ord(char):04X}) at position {position} "
            "cannot be stored on the card (only the Unicode BMP fits UCS2)"
        )
        self.name = name
        self.char = char
        self.position = position


class NumberTooLong(CodecError):  # noqa: N818 - agreed API name, reads as the fault
    """The number has more digits than the record (and its EXT1 chain) can hold."""

    def __init__(self, number: str, digits: int, limit: int) -> None:
        super().__init__(f"number {number!r} has {digits} digits, at most {limit} fit")
        self.number = number
        self.digits = digits
        self.limit = limit


class InvalidNumber(CodecError):  # noqa: N818 - agreed API name, reads as the fault
    """The number holds a character that has no BCD digit (or a misplaced '+')."""

    def __init__(self, number: str, char: str, position: int, reason: str = "") -> None:
        why = reason or "allowed: 0-9 * # , (pause) ? (wild) ! (expansion), leading +"
        super().__init__(f"number {number!r}: invalid character {char!r} at {position}; {why}")
        self.number = number
        self.char = char
        self.position = position


class InvalidField(CodecError):  # noqa: N818 - agreed API name, reads as the fault
    """A one-byte field (TON/NPI, CCP, EXT1 id, record id) is out of its range."""


class MalformedRecord(CodecError):  # noqa: N818 - agreed API name, reads as the fault
    """Bytes read from the card do not form a valid record."""
