"""vCard 2.1 (as old PDAs and phones exported it) read by converting it to vCard 3.0.

2.1 differs from 3.0 where vobject cannot follow: values in QUOTED-PRINTABLE
with soft line breaks (``=`` at the end of a line continues it without a
leading space), a per-property CHARSET (``ISO-8859-1`` from Palm, Nokia and
old Outlook exports), bare parameters (``TEL;CELL;PREF:``) and
``ENCODING=BASE64``. `to_v30` turns the file's bytes into the equivalent 3.0
text, every property kept: QP decoded, each value decoded with its own
charset, bare parameters written as ``TYPE=``, ``BASE64`` as ``b``, commas and
line breaks in text values escaped as 3.0 wants. The store parses that text
like any 3.0 card; the file itself is rewritten (as that 3.0 text, with the
edit) only when a change must be written to it.
"""

from __future__ import annotations

import binascii
import codecs
import re

from .errors import PdaError

__all__ = ["V21Error", "is_v21", "v30_lines"]

_VERSION_21 = re.compile(rb"^VERSION[ \t]*:[ \t]*2\.1[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_LINE_END = re.compile(rb"\r\n|\n|\r")
# Text properties whose values are free text in 3.0 (a comma there must be escaped).
_TEXT = frozenset(
    {"FN", "N", "NOTE", "ADR", "LABEL", "ORG", "TITLE", "ROLE", "NICKNAME", "CATEGORIES"}
)
# 2.1 parameters that may stand bare (without NAME=) are TYPE, ENCODING or VALUE values.
_ENCODINGS = frozenset({"7BIT", "8BIT", "QUOTED-PRINTABLE", "BASE64", "B"})
_VALUES = frozenset({"INLINE", "URL", "CONTENT-ID", "CID"})


class V21Error(PdaError):
    """A 2.1 card that cannot be converted (unknown charset, broken QP or base64...)."""


def is_v21(data: bytes) -> bool:
    """True when the bytes hold a ``VERSION:2.1`` line."""
    return _VERSION_21.search(data) is not None


def _logical(data: bytes) -> list[bytes]:
    """Unfolded lines: a leading space/tab continues a line, and so does a QP soft break."""
    out: list[bytes] = []
    qp_open = False
    for raw in _LINE_END.split(data):
        if qp_open and out:
            out[-1] = out[-1][:-1] + raw  # the soft break's '=' goes, the text joins
        elif raw[:1] in (b" ", b"\t") and out:
            out[-1] += raw[1:]
        elif raw:
            out.append(raw)
        else:
            continue
        head = out[-1].split(b":", 1)[0].upper()
        qp_open = b"QUOTED-PRINTABLE" in head and out[-1].endswith(b"=")
    return out


def _charset(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise V21Error(f"vCard 2.1 CHARSET={name} is not a known character set") from None


def _text(raw: bytes, charset: str | None) -> str:
    if charset is not None:
        try:
            return raw.decode(_charset(charset))
        except UnicodeDecodeError as exc:
            raise V21Error(f"vCard 2.1 value is not valid {charset}: {exc}") from exc
    # No CHARSET: 2.1 says ASCII; old exports wrote UTF-8 or Windows-1252 undeclared.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="strict") if _cp1252_ok(raw) else raw.decode("latin-1")


def _cp1252_ok(raw: bytes) -> bool:
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _escape(value: str, name: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if name in _TEXT:
        # 2.1 has no comma escape; a 3.0 comma separates list values, so it is escaped.
        value = re.sub(r"(?<!\\),", r"\\,", value)
    return value.replace("\n", "\\n")


def _convert_line(line: bytes) -> str:
    head, sep, value = line.partition(b":")
    if not sep:
        raise V21Error(f"vCard 2.1 line without ':': {line[:40]!r}")
    try:
        parts = head.decode("ascii").split(";")
    except UnicodeDecodeError:
        raise V21Error(f"vCard 2.1 property name or parameter not ASCII: {head[:40]!r}") from None
    name = parts[0].strip()
    bare_name = name.rpartition(".")[2].upper()
    types: list[str] = []
    params: list[str] = []
    encoding: str | None = None
    charset: str | None = None
    for param in parts[1:]:
        key, eq, val = param.partition("=")
        key, val = key.strip().upper(), val.strip()
        if not eq:  # a bare 2.1 parameter
            if key in _ENCODINGS:
                encoding = key
            elif key in _VALUES:
                params.append(f"VALUE={key}")
            elif key:
                types.append(key)
        elif key == "ENCODING":
            encoding = val.upper()
        elif key == "CHARSET":
            charset = val
        elif key == "TYPE":
            types.extend(t for t in val.split(",") if t)
        else:
            params.append(f"{key}={val}")
    if encoding in ("BASE64", "B"):
        # Binary (PHOTO, SOUND, KEY): the base64 text is kept as it is, spaces dropped.
        try:
            text = re.sub(rb"\s", b"", value).decode("ascii")
            binascii.a2b_base64(text.encode())
        except (UnicodeDecodeError, binascii.Error) as exc:
            raise V21Error(f"vCard 2.1 {bare_name} holds broken base64: {exc}") from exc
        params.append("ENCODING=b")
    else:
        if encoding == "QUOTED-PRINTABLE":
            try:
                value = binascii.a2b_qp(value)
            except binascii.Error as exc:
                raise V21Error(f"vCard 2.1 {bare_name}: broken quoted-printable: {exc}") from exc
        text = _escape(_text(value, charset), bare_name)
    if types:
        params.insert(0, "TYPE=" + ",".join(types))
    return ";".join([name, *params]) + ":" + text


def v30_lines(data: bytes) -> list[str]:
    """The 3.0 content lines (unfolded) equal to a 2.1 card's bytes (V21Error if it cannot be)."""
    out: list[str] = []
    for line in _logical(data):
        if line.split(b":", 1)[0].strip().upper() == b"VERSION":
            out.append("VERSION:3.0")
        else:
            out.append(_convert_line(line))
    return out
