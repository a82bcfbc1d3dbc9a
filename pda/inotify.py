"""Which vdir files changed since the last scan, from Linux inotify (ctypes, no dependency).

The long-running PDA server stats every ``.vcf`` at every sync unless it is told
which names changed: `DirWatch` watches the vdir directory and, at each scan,
hands over the names that had an event since the last one, or None when only a
full scan can be right (first use, queue overflow, the directory replaced,
moved, removed or unmounted). Nothing runs between syncs: the kernel queues the
events and the scan reads them, so the server sleeps while files change. See
docs/pda.md, "Watching the vdir".

What the directory watch cannot see, the store stats at every scan itself:
symlinks (their targets may live anywhere) and files with more than one link
(written through another name, the event goes to that directory). What it cannot
know of at all (a link made outside the vdir to a file it statted with one link,
then a write through it; a write through a shared mmap) waits for the store's
periodic full loop (``full_scan_every``). A filesystem where other machines change
files (NFS, SMB, FUSE...) is not watched at all.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
import weakref

from pda.vfile import is_contact_name

__all__ = ["NOT_WATCHED_FILESYSTEMS", "DirWatch", "WatchUnavailableError", "filesystem_name"]

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000

# Every way a name's content, stat key or existence changes (IN_ATTRIB: touch, chmod),
# and the directory itself going away.
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
_SELF_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name

# statfs f_type of filesystems where files change without a local event: other machines
# write them (network filesystems) or a user-space server does (FUSE). Linux magic.h.
NOT_WATCHED_FILESYSTEMS = {
    0x6969: "nfs",
    0x517B: "smb",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x65735546: "fuse",
    0x01021997: "9p",
    0x00C36400: "ceph",
    0x5346414F: "afs",
    0x6B414653: "afs",
    0x73757245: "coda",
    0x0BD00BD0: "lustre",
    0x47504653: "gpfs",
    0x564C: "ncp",
}

# Names held between two scans: past this, a full scan is cheaper than remembering more.
MAX_NAMES = 65_536


class WatchUnavailableError(OSError):
    """inotify cannot watch this vdir (no inotify, limits reached, a network filesystem)."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno N]"
        return str(self.strerror)


class _StatFs(ctypes.Structure):
    # Only f_type is read; the rest of struct statfs is room (it is 120 bytes on 64-bit Linux).
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 256)]


_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc  # noqa: PLW0603 - loaded once, on first use (never at import)
    if _libc is None:
        if not sys.platform.startswith("linux"):
            raise WatchUnavailableError(errno.ENOSYS, "inotify is Linux only")
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.fstatfs.argtypes = [ctypes.c_int, ctypes.POINTER(_StatFs)]
        _libc = libc
    return _libc


def _fail(what: str) -> WatchUnavailableError:
    code = ctypes.get_errno()
    hint = {
        errno.EMFILE: " (fs.inotify.max_user_instances or the open-file limit reached)",
        errno.ENOSPC: " (fs.inotify.max_user_watches reached)",
        errno.ENOSYS: " (this kernel has no inotify)",
    }.get(code, "")
    return WatchUnavailableError(code, f"{what}: {os.strerror(code)}{hint}")


def filesystem_name(dir_fd: int) -> str | None:
    """The name of the directory's filesystem when inotify cannot be trusted there, else None."""
    buf = _StatFs()
    if _lib().fstatfs(dir_fd, ctypes.byref(buf)) != 0:
        raise _fail("fstatfs")
    return NOT_WATCHED_FILESYSTEMS.get(buf.f_type & 0xFFFFFFFF)


class DirWatch:
    """An inotify instance watching one directory at a time (WatchUnavailableError if none)."""

    def __init__(self) -> None:
        fd = _lib().inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise _fail("inotify_init1")
        self.fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        self._wd: int | None = None  # the current watch descriptor
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the watched directory
        self._names: set[str] = set()
        self._full = True  # the names since the last scan are not all known
        self.events = 0  # events read so far (tests)
        self.rearms = 0  # watches added so far (tests: 1 + one per fallback)

    def close(self) -> None:
        """Release the inotify instance."""
        self._closer()

    def _read(self) -> None:
        """Take every queued event into `_names` (or note that a full scan is due)."""
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            at = 0
            while at < len(buf):
                wd, mask, _cookie, size = _EVENT.unpack_from(buf, at)
                raw = buf[at + _EVENT.size : at + _EVENT.size + size]
                at += _EVENT.size + size
                self.events += 1
                if mask & IN_Q_OVERFLOW:  # events were dropped: which, nobody knows
                    self._full = True
                elif wd != self._wd:  # the watch replaced at the last rearm
                    continue
                elif mask & _SELF_GONE:  # the directory was moved, deleted, unmounted
                    self._full = True
                elif not self._full:
                    name = os.fsdecode(raw.rstrip(b"\0"))
                    if is_contact_name(name):
                        self._names.add(name)
                        if len(self._names) > MAX_NAMES:
                            self._full = True
            if self._full:
                self._names.clear()

    def changes(self, dir_fd: int, ident: tuple[int, int]) -> set[str] | None:
        """The .vcf names with an event since the last call, or None: scan everything.

        `dir_fd` is the directory about to be scanned, `ident` its (st_dev, st_ino).
        On None the watch has just been (re)armed on that very directory, so any
        change from now on is either seen by the caller's full scan or queued.
        """
        self._read()
        if not self._full and self._wd is not None and ident == self._ident:
            names, self._names = self._names, set()
            return names
        self._arm(dir_fd, ident)
        return None

    def lost(self) -> None:
        """The names handed over last were not all looked at: the next scan is full."""
        self._full = True

    def _arm(self, dir_fd: int, ident: tuple[int, int]) -> None:
        lib = _lib()
        if self._wd is not None:
            lib.inotify_rm_watch(self.fd, self._wd)  # EINVAL when the kernel dropped it: fine
            self._wd = None
        fs = filesystem_name(dir_fd)
        if fs is not None:
            raise WatchUnavailableError(
                errno.EOPNOTSUPP, f"the vdir is on {fs}: other machines' changes make no event"
            )
        # Through the descriptor the caller lists: the watch is on that very directory,
        # even if the path now leads elsewhere.
        target = f"/proc/self/fd/{dir_fd}"
        if not os.path.exists(target):
            raise WatchUnavailableError(errno.ENOENT, "no /proc/self/fd to watch the vdir by")
        wd = lib.inotify_add_watch(self.fd, target.encode(), MASK)
        if wd < 0:
            raise _fail("inotify_add_watch")
        self._wd, self._ident = wd, ident
        self._names.clear()
        self._full = False
        self.rearms += 1
