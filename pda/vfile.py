"""One vdir file at a time: names, bounded reads, what a file that cannot be used is, writes.

Everything here is about files a person (or any program) may have put in the
vdir: names that are not UTF-8, files far too big to be a vCard, links in and
out of the directory, directories and FIFOs named ``*.vcf``. Each is either
read within bounds or turned into a `BadContact` naming the file and why; see
docs/pda.md, "Files the store sets aside".
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .store import BadContact, StoreIOError

__all__ = [
    "MAX_VCARD_BYTES",
    "Loaded",
    "bad_entry",
    "is_contact_name",
    "load",
    "name_uid",
    "set_aside",
    "shown",
    "uid_filename",
    "unusable",
    "write_atomic",
]

#: Largest .vcf file the store reads (1 MiB). A contact with a phone-sized photo is
#: 5-300 KB, so real cards fit several times over; vobject holds ~140 times a
#: card's size while parsing it (1 MiB: ~150 MB, measured), so a bigger file is
#: set aside unread rather than risking the PDA's memory.
MAX_VCARD_BYTES = 1 << 20
_UID_HEAD = 65536  # bytes of an unusable file searched for its UID line
_UID_LINE = re.compile(rb"^(?:[A-Za-z0-9-]+\.)?UID(?:;[^:\r\n]*)?:[ \t]*([^\r\n]+)", re.I | re.M)
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-@")
_MAX_NAME = 200  # bytes; most filesystems allow 255 for the whole name


def is_contact_name(name: str) -> bool:
    """Whether a vdir entry called `name` is a contact the store looks at: ``*.vcf``, not
    hidden (editors' and our own temporary files start with a dot)."""
    return name.endswith(".vcf") and not name.startswith(".")


def uid_filename(uid: str) -> str:
    """The file name for a UID: safe characters kept, others percent-encoded (UTF-8), + '.vcf'.

    A leading '.' is encoded too (a dot-file would be hidden from vdir tools);
    a name longer than 200 bytes becomes the SHA-256 of the UID instead.
    """
    encoded = "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in uid
    )
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if len(encoded) > _MAX_NAME:
        encoded = hashlib.sha256(uid.encode()).hexdigest()
    return encoded + ".vcf"


def shown(name: str | os.PathLike[str]) -> str:
    """A file name as logs, messages and the status table see it: non-UTF-8 bytes as \\xNN.

    ``os.scandir`` hands over a name that is not UTF-8 (``M\\xfcller.vcf`` from a
    Latin-1 tool) with surrogate escapes, which no UTF-8 writer accepts.
    """
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def name_uid(filename: str) -> str:
    """The uid a card without UID gets: its file name without ``.vcf`` (shown form)."""
    return shown(filename.removesuffix(".vcf"))


def _guess_uids(filename: str, head: bytes) -> frozenset[str]:
    """Every uid an unusable file may have stood for: its UID line, its name."""
    uids = {name_uid(filename)}
    if m := _UID_LINE.search(head):
        uids.add(m.group(1).decode("utf-8", "replace").strip())
    return frozenset(uids)


@dataclass(frozen=True)
class Loaded:
    """A file's bytes and the stat key taken from the same open file."""

    data: bytes
    st: os.stat_result


def load(directory: Path, filename: str, old_uid: str | None = None) -> Loaded | None:
    """Read one file within MAX_VCARD_BYTES; None when it vanished; BadContact when unusable.

    Opened without blocking (a FIFO swapped in after the listing would otherwise hang
    the scan) and following links (a link is how a person puts a card here).
    """
    full = directory / filename
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _bad(full, f"cannot read: {exc.strerror}", filename, old_uid) from exc
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _bad(full, "not a regular file", filename, old_uid)
            if st.st_size > MAX_VCARD_BYTES:
                raise _oversized(full, st.st_size, filename, old_uid, f.read(_UID_HEAD))
            data = f.read(MAX_VCARD_BYTES + 1)
        except OSError as exc:
            raise _bad(full, f"cannot read: {exc.strerror}", filename, old_uid) from exc
    if len(data) > MAX_VCARD_BYTES:  # it grew between fstat and read
        raise _oversized(full, len(data), filename, old_uid, data[:_UID_HEAD])
    return Loaded(data, st)


def _oversized(
    full: Path, size: int, filename: str, old_uid: str | None, head: bytes
) -> BadContact:
    return _bad(
        full,
        f"oversized: {size} bytes, more than the {MAX_VCARD_BYTES} a vCard may have "
        "(a card with a photo is far smaller); not read",
        filename,
        old_uid,
        head,
    )


def _bad(
    full: Path, reason: str, filename: str, old_uid: str | None, head: bytes = b""
) -> BadContact:
    uids = _guess_uids(filename, head) | ({old_uid} if old_uid else set())
    return BadContact(shown(full), reason, uids=uids)


def unusable(
    directory: Path, filename: str, data: bytes, reason: str, old_uid: str | None
) -> BadContact:
    """The BadContact for a file that was read but cannot be used (not a vCard...)."""
    return _bad(directory / filename, reason, filename, old_uid, data[:_UID_HEAD])


def set_aside(directory: Path, name: str, reason: str, old_uid: str | None) -> BadContact:
    """The BadContact for a name that could not be looked at (no content read): it may
    stand for `old_uid` (the uid its status row holds) and what its name says."""
    return _bad(directory / name, reason, name, old_uid)


def bad_entry(directory: Path, name: str, old_uid: str | None = None) -> BadContact | None:
    """A ``*.vcf`` name in `directory` that is no file at all (broken link, directory, FIFO...).

    `old_uid`: the uid the name's status row holds, so that contact is known unreadable
    (not deleted) whatever the file is called.
    """
    full = directory / name
    try:
        if full.is_file():
            return None
    except OSError:  # ELOOP and the like: judged below
        pass
    try:
        if full.is_symlink() and not os.path.exists(full):
            what = "a link to nothing (its target is missing, or links loop)"
        else:
            what = "a directory" if full.is_dir() else "not a regular file"
    except OSError as exc:
        what = f"cannot be examined: {exc.strerror}"
    return _bad(full, what, name, old_uid)


def write_atomic(
    target: Path,
    data: bytes,
    *,
    exclusive: bool = False,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Put `data` where `target` points: temp file beside the real file, fsync, rename.

    A symlink is kept and its target replaced (a link is the person's way of
    saying where the card lives, also outside the vdir); returns the path that was
    replaced. `exclusive`: FileExistsError rather than replace. `check(real)` runs
    just before the rename (the caller's "still the file I read?"); whatever it
    raises passes through. A failure leaves the old file and no temp file.
    """
    real = Path(os.path.realpath(target)) if not exclusive and target.is_symlink() else target
    tmp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            if not exclusive:  # keep a private card private
                with contextlib.suppress(FileNotFoundError):
                    os.fchmod(fd, os.stat(real).st_mode & 0o7777)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, real)
        else:
            if check is not None:
                check(real)
            os.replace(tmp, real)
        fsync_dir(real.parent)
    except FileExistsError:
        raise
    except OSError as exc:
        raise StoreIOError(f"cannot write {shown(real)}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return real


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
