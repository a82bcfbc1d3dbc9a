"""A small typed layer over vobject: read a contact's projection, make new cards, edit FN/TEL.

Reading goes through vobject (it validates the whole card: a broken PHOTO or
a stray line makes the file unreadable, as it would for khard). Editing does
*not* re-serialise the card through vobject, which would sort the properties,
change the case of names and unfold long lines: it replaces only the content
lines of FN, N and the preferred TEL and leaves every other line byte for byte
as it was, so "nothing lost" holds by construction and vdir tools see a
minimal change.

Rules (documented in docs/pda.md):
- Versions 3.0 and 4.0 are read; 2.1 is read through its 3.0 equivalent
  (`decode_card`, pda/vcard21.py); anything else is a bad card.
- The preferred TEL is the one with the lowest PREF parameter (4.0, 1..100),
  a ``TYPE=pref`` counting as PREF=1 (3.0); ties and no preference: the first
  in the file. Only TELs whose value normalises to a phone number take part
  (``tel:`` URIs are unwrapped, ``%23`` read as ``#``).
- The name is FN; a card without FN takes "given family" from N.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import vobject  # untyped: everything it returns is handled as Any in this module only

from pda.store import InvalidProjectionError, Projection, normalize_number

from .errors import PdaError
from .vcard21 import V21Error, is_v21, v30_lines

__all__ = [
    "CardError",
    "ParsedCard",
    "apply_projection",
    "decode_card",
    "derive_n",
    "new_card",
    "parse_card",
]

SUPPORTED_VERSIONS = ("3.0", "4.0")
_FOLD_OCTETS = 75  # RFC 6350 3.2: lines SHOULD NOT be longer than 75 octets
_LINE_SPLIT = re.compile(r"(\r\n|\n|\r)")


class CardError(PdaError):
    """A vCard text this module cannot use; the store turns it into BadContact(path, reason)."""


@dataclass(frozen=True)
class ParsedCard:
    """What the store needs from one vCard."""

    version: str
    uid: str | None
    projection: Projection


@dataclass(frozen=True)
class _Tel:
    rank: int | None  # PREF value (TYPE=pref counts as 1); None: no preference given
    number: str  # normalised


def _tel(number: str) -> str:
    """A projection number as a TEL value: the card's pause ``,`` is written ``p``.

    A comma separates list values in vCard, so it cannot stand in TEL; ``p`` is the
    diallers' pause, which ``normalize_number`` reads back as ``,``.
    """
    return number.replace(",", "p")


def _param_values(line: Any, name: str) -> list[str]:
    values: list[str] = []
    for value in line.params.get(name, []):
        values.extend(part.strip() for part in str(value).split(","))
    return values


def _tel_of(line: Any) -> _Tel | None:
    value = str(line.value).strip()
    if value.lower().startswith("tel:"):
        value = value[4:].replace("%23", "#")
    try:
        number = normalize_number(value)
    except InvalidProjectionError:
        return None  # sip:, extensions, vanity letters: not a number a SIM record can hold
    if not number.lstrip("+"):
        return None
    rank: int | None = None
    prefs = _param_values(line, "PREF")
    if prefs and prefs[0].isdigit():
        rank = int(prefs[0])
    elif (
        "pref" in (t.lower() for t in _param_values(line, "TYPE")) or "PREF" in line.singletonparams
    ):
        rank = 1
    return _Tel(rank, number)


def _preferred_index(tels: list[_Tel | None]) -> int | None:
    """Index (into all TELs of the card) of the preferred one, or None when none is usable."""
    best: int | None = None
    for i, tel in enumerate(tels):
        if tel is None:
            continue
        if best is None:
            best = i
            continue
        current = tels[best]
        assert current is not None
        if tel.rank is not None and (current.rank is None or tel.rank < current.rank):
            best = i
    return best


def _read_one(text: str) -> Any:
    try:
        cards = list(vobject.readComponents(text, validate=False))
    except Exception as exc:  # vobject raises ParseError, binascii.Error, ValueError...
        raise CardError(f"not a readable vCard: {exc}") from exc
    if len(cards) != 1:
        raise CardError(f"holds {len(cards)} components, a vdir file holds exactly one VCARD")
    card = cards[0]
    if card.name != "VCARD":
        raise CardError(f"holds a {card.name}, not a VCARD")
    return card


def decode_card(data: bytes) -> str:
    """A file's bytes as vCard text: UTF-8 as it is, a 2.1 card converted to 3.0 (folded).

    Raises CardError naming the first byte that is not UTF-8 (a 3.0/4.0 card saved
    in Latin-1 by an editor) or why a 2.1 card cannot be converted.
    """
    if is_v21(data):
        try:
            return "".join(_fold(line, "\r\n") for line in v30_lines(data))
        except V21Error as exc:
            raise CardError(str(exc)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex().upper()
        raise CardError(
            f"not UTF-8 (byte 0x{bad} at offset {exc.start}): save it as UTF-8"
        ) from exc


def _tels(card: Any) -> list[_Tel | None]:
    return [_tel_of(line) for line in card.contents.get("tel", [])]


def parse_card(text: str) -> ParsedCard:
    """Read version, UID and projection of one vCard (CardError when unusable)."""
    card = _read_one(text)
    versions = card.contents.get("version", [])
    version = str(versions[0].value).strip() if versions else ""
    if version not in SUPPORTED_VERSIONS:
        raise CardError(f"VERSION {version or '(missing)'} is not 2.1, 3.0 or 4.0")
    uids = card.contents.get("uid", [])
    uid = str(uids[0].value).strip() if uids else None
    name = ""
    if card.contents.get("fn"):
        name = str(card.contents["fn"][0].value)
    elif card.contents.get("n"):
        n = card.contents["n"][0].value
        name = " ".join(str(p) for p in (n.given, n.family) if p and isinstance(p, str))
    if not name.strip():
        raise CardError("has neither FN nor a name in N")
    tels = _tels(card)
    pref = _preferred_index(tels)
    chosen = tels[pref] if pref is not None else None
    return ParsedCard(version, uid or None, Projection(name, chosen.number if chosen else None))


def derive_n(name: str) -> str:
    """The N value (escaped) made from a formatted name: last word family, the rest given."""
    words = name.split()
    family, given = (words[-1], " ".join(words[:-1])) if len(words) > 1 else (name, "")
    return f"{_escape(family)};{_escape(given)};;;"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def _fold(line: str, newline: str) -> str:
    """One content line folded at 75 octets without splitting a UTF-8 sequence."""
    if len(line.encode()) <= _FOLD_OCTETS:
        return line + newline
    parts: list[str] = []
    current: list[str] = []
    size, limit = 0, _FOLD_OCTETS
    for ch in line:
        width = len(ch.encode())
        if size + width > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, _FOLD_OCTETS - 1  # continuation lines start with " "
        current.append(ch)
        size += width
    parts.append("".join(current))
    return (newline + " ").join(parts) + newline


def new_card(uid: str, projection: Projection, version: str = "3.0") -> str:
    """A new vCard (CRLF, folded) with VERSION, UID, FN, N and, given a number, one TEL."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"version must be one of {SUPPORTED_VERSIONS}")
    card = vobject.vCard()
    card.add("version").value = version
    card.add("uid").value = uid
    card.add("fn").value = projection.name
    family, _, given = derive_n(projection.name).partition(";")
    card.add("n").value = vobject.vcard.Name(family=_unescape(family), given=_unescape(given[:-3]))
    if projection.number is not None:
        tel = card.add("tel")
        if version == "4.0":
            tel.value = "tel:" + _tel(projection.number).replace("#", "%23")
            tel.params["VALUE"] = ["uri"]
            tel.params["TYPE"] = ["cell"]
        else:
            tel.value = _tel(projection.number)
            tel.params["TYPE"] = ["CELL"]
    lines = _LINE_SPLIT.split(card.serialize())[::2]
    return "".join(_fold(line, "\r\n") for line in lines if line)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


@dataclass
class _Logical:
    """One content line as it sits in the file: its physical pieces, newlines included."""

    physical: list[str]

    @property
    def unfolded(self) -> str:
        pieces = [_LINE_SPLIT.sub("", p) for p in self.physical]
        return pieces[0] + "".join(p[1:] for p in pieces[1:])

    @property
    def name(self) -> str:
        head = re.split(r"[;:]", self.unfolded, maxsplit=1)[0]
        return head.rpartition(".")[2].strip().upper()  # drop the group ("item1.TEL")

    def split(self) -> tuple[str, str]:
        """(name and parameters, value): the value starts after the first ':' outside quotes."""
        text, quoted = self.unfolded, False
        for i, ch in enumerate(text):
            if ch == '"':
                quoted = not quoted
            elif ch == ":" and not quoted:
                return text[:i], text[i + 1 :]
        raise CardError(f"content line without ':': {text[:40]!r}")


def _logical_lines(text: str) -> list[_Logical]:
    pieces = _LINE_SPLIT.split(text)
    physical = [
        pieces[i] + (pieces[i + 1] if i + 1 < len(pieces) else "") for i in range(0, len(pieces), 2)
    ]
    lines: list[_Logical] = []
    for p in physical:
        if not p:
            continue
        if p[0] in " \t" and lines:
            lines[-1].physical.append(p)
        else:
            lines.append(_Logical([p]))
    return lines


def apply_projection(text: str, projection: Projection) -> str:
    """The card with FN, N (only when absent or derived from FN) and the preferred TEL changed.

    Every other line stays byte for byte. Returns `text` itself when the card
    already shows this projection, so an unchanged contact is never rewritten.
    A number of None removes the preferred TEL (the next usable TEL, if any,
    becomes preferred). Raises CardError for an unusable card.
    """
    before = parse_card(text)
    if before.projection == projection:
        return text
    newline = m.group(0) if (m := _LINE_SPLIT.search(text)) else "\r\n"
    lines = _logical_lines(text)
    depth, top = 0, dict[str, int]()  # index of first FN/N/VERSION and of END at depth 1
    tel_at: list[int] = []
    for i, line in enumerate(lines):
        name, value = line.name, line.unfolded.partition(":")[2].strip().upper()
        if name == "BEGIN":
            depth += 1
        elif name == "END":
            if depth == 1 and value == "VCARD":
                top.setdefault("END", i)
            depth -= 1
        elif depth == 1 and name == "TEL":
            tel_at.append(i)
        elif depth == 1 and name in ("FN", "N", "VERSION"):
            top.setdefault(name, i)
    tels = _tels(_read_one(text))
    if len(tels) != len(tel_at) or "END" not in top:
        raise CardError("content lines do not match the parsed card")
    replace: dict[int, str | None] = {}  # line index -> new unfolded line (None: delete)
    insert: dict[int, list[str]] = {}  # new lines go before this index
    if projection.name != before.projection.name:
        _edit_name(
            lines,
            top,
            old=before.projection.name,
            new=projection.name,
            replace=replace,
            insert=insert,
        )
    if projection.number != before.projection.number:
        pref = _preferred_index(tels)
        if projection.number is None:
            assert pref is not None  # the old number came from it
            replace[tel_at[pref]] = None
        elif pref is None:
            if before.version == "4.0":
                new = "TEL;VALUE=uri;TYPE=cell:tel:" + _tel(projection.number).replace("#", "%23")
            else:
                new = "TEL;TYPE=CELL:" + _tel(projection.number)
            insert.setdefault(top["END"], []).append(new)
        else:
            head, value = lines[tel_at[pref]].split()
            uri = value.strip().lower().startswith("tel:")
            tel = _tel(projection.number)
            number = "tel:" + tel.replace("#", "%23") if uri else tel
            replace[tel_at[pref]] = f"{head}:{number}"
    out: list[str] = []
    for i, line in enumerate(lines):
        out.extend(_fold(new, newline) for new in insert.get(i, []))
        if i not in replace:
            out.extend(line.physical)
        elif (new_line := replace[i]) is not None:
            out.append(_fold(new_line, newline))
    result = "".join(out)
    after = parse_card(result)
    if after.projection.name != projection.name or (
        projection.number is not None and after.projection.number != projection.number
    ):
        raise CardError(f"edit did not take: {after.projection} instead of {projection}")
    return result


def _edit_name(
    lines: list[_Logical],
    top: dict[str, int],
    *,
    old: str,
    new: str,
    replace: dict[int, str | None],
    insert: dict[int, list[str]],
) -> None:
    if "FN" in top:
        head, _value = lines[top["FN"]].split()
        replace[top["FN"]] = f"{head}:{_escape(new)}"
        after_fn = top["FN"] + 1
    else:
        after_fn = top.get("VERSION", 0) + 1
        insert.setdefault(after_fn, []).append(f"FN:{_escape(new)}")
    if "N" not in top:
        insert.setdefault(after_fn, []).append(f"N:{derive_n(new)}")
        return
    head, value = lines[top["N"]].split()
    if value == derive_n(old):  # N was made from FN (by us or alike): it follows FN
        replace[top["N"]] = f"{head}:{derive_n(new)}"
