"""VdirStore: the PDA's default contact store, a vdir (one vCard per .vcf file, named by UID).

The layout is the one khard and vdirsyncer use (https://vdirsyncer.pimutils.org/en/stable/vdir.html):
a flat directory of ``*.vcf`` files, one VCARD each. Files this store adds
itself start with a dot (the store-id marker, the status DB, temp files), so
vdir tools, which only look at ``*.vcf``, ignore them. See docs/pda.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from pda.inotify import DirWatch, WatchUnavailableError
from pda.status import RACY_WINDOW_NS, StatusRow, StatusTable
from pda.store import (
    BadContact,
    ContactExistsError,
    ContactInfo,
    ContactNotFoundError,
    Projection,
    StoreError,
    StoreIOError,
    new_uid,
    validate_projection,
    validate_uid,
)
from pda.vcard import (
    SUPPORTED_VERSIONS,
    CardError,
    apply_projection,
    decode_card,
    new_card,
    parse_card,
)
from pda.vfile import (
    MAX_VCARD_BYTES,
    bad_entry,
    is_contact_name,
    load,
    name_uid,
    set_aside,
    shown,
    uid_filename,
    unusable,
    write_atomic,
)

__all__ = [
    "FULL_SCAN_EVERY",
    "MAX_VCARD_BYTES",
    "STATUS_DB_NAME",
    "STORE_ID_NAME",
    "ContactChangedError",
    "VdirStore",
    "uid_filename",
]

log = structlog.get_logger(__name__)

STORE_ID_NAME = ".simsync-store-id"
STATUS_DB_NAME = ".simsync-status.sqlite"

_Key = tuple[int, int, int]  # a file's stat key: size, mtime_ns, inode

#: Seconds after which a watching store runs the full stat loop again, to bound what
#: inotify cannot see (a file edited through a hard link made outside the vdir, writes
#: through a shared mmap). At 50,000 contacts the loop costs ~0.3-0.8 s of CPU: once
#: an hour is ~0.02 % of a core. See docs/pda.md, "What the watch does not see".
FULL_SCAN_EVERY = 3600.0


class ContactChangedError(StoreError):
    """The file changed on disk (another program) between reading and replacing it; retry."""


@dataclass(frozen=True)
class _Read:
    row: StatusRow
    data: bytes

    @property
    def text(self) -> str:
        """The card as text (a 2.1 card as its 3.0 equivalent: what an edit writes)."""
        return decode_card(self.data)


def boot_clock() -> float:
    """Seconds since boot, counting the time suspended (Linux ``CLOCK_BOOTTIME``).

    The full-loop interval runs on it: a wall-clock change does not move it, and a PDA
    asleep most of the day still gets its full loop after `full_scan_every` real seconds.
    """
    return time.clock_gettime(_BOOTTIME)


# Linux; elsewhere the monotonic clock (the time asleep then does not count).
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class VdirStore:
    """ContactStore over a vdir directory; `bad_files` lists what the last scan could not read."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_db: str | os.PathLike[str] | None = None,
        *,
        version: str = "3.0",
        watch: bool = False,
        full_scan_every: float = FULL_SCAN_EVERY,
        clock: Callable[[], float] = boot_clock,
    ) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"version must be one of {SUPPORTED_VERSIONS}, not {version!r}")
        if not 0 <= full_scan_every < math.inf:  # NaN too; "never" is spelt 0
            raise ValueError(
                f"full_scan_every must be 0 (never) or a finite number of seconds,"
                f" not {full_scan_every}"
            )
        self.path = Path(path)
        self.version = version  # of newly created cards; an update keeps the file's own
        self._status_path = Path(status_db) if status_db is not None else self.path / STATUS_DB_NAME
        self.bad_files: list[BadContact] = []
        self.parse_count = 0  # cards parsed so far: what the status table exists to keep low
        self.stat_count = 0  # files statted by scans: a watching store stats only what changed
        # Bad files are not in the status DB (it only holds usable cards); remembered here so
        # a scan does not re-parse them while they stay as they are.
        self._bad_seen: dict[str, tuple[_Key, BadContact]] = {}
        # The status table, kept in memory once loaded (a long-running server reads the
        # SQLite file once, then only what the stat loop says changed), and what it gives:
        self._rows: dict[str, StatusRow] | None = None  # file name -> row
        # file name -> stat key of the row, None while the row is racy (checked by content)
        self._trusted: dict[str, _Key | None] = {}
        self._racy: set[str] = set()  # names whose row is not trusted yet (None above)
        # `watch`: a long-running server learns from inotify which files changed (pda.inotify).
        self._watch_wanted = watch
        self._watch: DirWatch | None = None
        self._watch_trouble: str | None = None  # why the vdir is not watched now (logged once)
        self._unwatched: set[str] = set()  # symlinks and multiply linked files: statted always
        # A watching store runs the full stat loop again once the last one is older than
        # `full_scan_every` seconds of `clock` (0: never): the net under the watch's blind spots.
        self._full_scan_every = full_scan_every
        self._clock = clock
        self._full_at: float | None = None  # `clock` when the last full loop started
        self._bad_listed: set[str] = set()  # names that are no usable file (re-checked each scan)
        self._index: dict[str, StatusRow] | None = None  # uid -> row, from the last scan
        self._contacts: dict[str, ContactInfo] = {}  # uid -> contact, as `_index`
        self._duplicates: list[BadContact] = []  # files whose UID another file holds
        self._stale = False  # `_index` must be rebuilt from `_rows` at the next scan
        # Status-table writes wait here inside `batch()`: one transaction for them all.
        self._batch_depth = 0
        self._pending: dict[str, StatusRow | None] = {}  # file name -> row (None: delete)
        self._logged: set[tuple[str, str]] = set()  # (file, reason) of set-aside files logged
        self.store_id: str = self._load_store_id()
        self._status = StatusTable(self._status_path, self.store_id)

    # -- store id ---------------------------------------------------------------------------

    def _load_store_id(self) -> str:
        """Read the marker, making the vdir and the marker on first use."""
        marker = self.path / STORE_ID_NAME
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                text = marker.read_text(encoding="ascii").strip()
                if text:
                    return text
            # No-clobber publish: if another process made one meanwhile, theirs wins.
            with contextlib.suppress(FileExistsError):
                self._write(marker, (secrets.token_hex(16) + "\n").encode(), exclusive=True)
            return marker.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreIOError(f"{marker}: cannot read or make the store id: {exc}") from exc

    def _refresh_store_id(self) -> None:
        store_id = self._load_store_id()
        if store_id != self.store_id:  # the vdir was wiped and re-created under us
            self.store_id = store_id
            self._status = StatusTable(self._status_path, store_id)
            self._rows = self._index = None
            self._pending.clear()

    # -- reading ----------------------------------------------------------------------------

    def _read(self, filename: str, now_ns: int, old: StatusRow | None) -> _Read | None:
        """Read and (when its content changed) parse one file; None when it vanished."""
        got = load(self.path, filename, old.uid if old is not None else None)
        if got is None:
            return None
        data, st = got.data, got.st
        etag = hashlib.sha256(data).hexdigest()
        if old is not None and old.etag == etag:
            name, number, uid = old.name, old.number, old.uid
        else:
            self.parse_count += 1
            try:
                card = parse_card(decode_card(data))
            except CardError as exc:
                old_uid = old.uid if old is not None else None
                raise unusable(self.path, filename, data, str(exc), old_uid) from exc
            name, number = card.projection.name, card.projection.number
            # A hand-written card without UID: the file name stands in (the file is not rewritten).
            uid = card.uid or name_uid(filename)
        row = StatusRow(
            filename, uid, st.st_size, st.st_mtime_ns, st.st_ino, etag, name, number, now_ns
        )
        return _Read(row, data)

    def scan(self) -> dict[str, ContactInfo]:
        """Every readable contact by uid; parses only files whose stat key changed.

        Unreadable files are skipped and listed in `bad_files` (never rewritten),
        each logged once while it stays as it is; of two files with one UID, the one
        named after it (else the first by name) wins and the other is listed as bad.
        A bad file keeps the status row it had when it was last good, so the uid it
        held is known (and not taken for deleted) also by a later process.

        The status table is read from SQLite once per store object and then kept in
        memory: a scan costs one `stat` per file, and reads only the files whose stat
        key changed (the store's own writes are recorded as they happen). A watching
        store (``watch=True``) stats only the names inotify reported since the last
        scan, plus those the watch cannot vouch for (see `_stat_some`), and runs the
        stat loop again once the last one is `full_scan_every` seconds old.
        """
        self._refresh_store_id()
        now_ns = time.time_ns()  # taken before any stat: rows are racy relative to it
        loaded = self._rows is None
        if self._rows is None:
            self._rows, self._trusted, self._racy = {}, {}, set()
            for row in self._status.load().values():
                self._put_row(row)
            self._index = None
        try:
            # By a descriptor: each stat resolves one name, not the whole path again.
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreIOError(f"{self.path}: cannot list the vdir: {exc}") from exc
        try:
            names = self._watched_names(fd)
            try:
                if names is None or loaded:
                    changed, gone, bad = self._stat_all(fd, names or set())
                elif self._full_scan_due():
                    changed, gone, bad = self._stat_all_again(fd, names)
                else:
                    changed, gone, bad = self._stat_some(fd, names)
                return self._take(changed, gone, bad, now_ns, names or set())
            except BaseException:
                if self._watch is not None:  # the names it gave were not all taken in
                    self._watch.lost()
                raise
        finally:
            os.close(fd)

    def _stat_all(
        self, fd: int, reported: set[str]
    ) -> tuple[list[tuple[str, _Key]], list[str], list[BadContact]]:
        """The stat loop: one stat per file, compared with the row's key.

        Returns the names whose key differs (with the new key), the rows whose file is
        gone, and the names that are no usable file. A `reported` name (inotify saw it
        change) counts as changed whatever its key, as in `_stat_some`.
        """
        self._full_at = self._clock()
        # A row left in `unseen` at the end is a file that is gone.
        unseen = dict(self._trusted)
        for name in reported & unseen.keys():
            unseen[name] = None
        pop = unseen.pop
        changed: list[tuple[str, _Key]] = []
        bad: list[BadContact] = []
        stat_name = self._stat_name
        self._unwatched, self._bad_listed = set(), set()
        unwatched = self._unwatched
        statted = 0
        try:
            with os.scandir(fd) as listing:
                for e in listing:
                    name = e.name
                    if not is_contact_name(name):
                        continue
                    statted += 1
                    # `_stat_name`'s rule, with the stat the listing's entry makes: a
                    # regular file (known from the listing, no syscall) is statted once
                    # and noted unwatched when it has other links; a symlink is followed
                    # once and noted. Anything else, or a failure: `_stat_name` decides.
                    try:
                        if e.is_file(follow_symlinks=False):
                            st = e.stat()
                            if st.st_nlink > 1:
                                unwatched.add(name)
                        elif e.is_symlink():
                            st = e.stat()
                            unwatched.add(name)
                            if not stat.S_ISREG(st.st_mode):
                                st = None
                        else:
                            st = None
                    except OSError:  # gone since the listing, or odd: the rule says which
                        st = None
                    if st is None:
                        got = stat_name(fd, name)
                        if not isinstance(got, os.stat_result):
                            if got is not None:
                                bad.append(got)
                            continue  # None: gone (its row stays in `unseen`)
                        st = got
                    key = (st.st_size, st.st_mtime_ns, st.st_ino)
                    if pop(name, None) != key:
                        changed.append((name, key))
        except OSError as exc:
            raise StoreIOError(f"{self.path}: cannot list the vdir: {exc}") from exc
        self.stat_count += statted
        return changed, list(unseen), bad

    def _stat_some(
        self, fd: int, names: set[str]
    ) -> tuple[list[tuple[str, _Key]], list[str], list[BadContact]]:
        """`_stat_all` for the names inotify reported, and those it cannot vouch for.

        Those are: rows still racy (checked by content until a scan trusts them, as in
        the stat loop), symlinks and files with more than one link (written through
        another name, the event goes to another directory), and files set aside (so
        `bad_files` stays whole). A reported name is read even if its stat key looks
        the same: the event says something happened to it.
        """
        changed: list[tuple[str, _Key]] = []
        gone: list[str] = []
        bad: list[BadContact] = []
        trusted = self._trusted
        look = self._to_look_at(names)
        self.stat_count += len(look)
        for name in look:
            self._unwatched.discard(name)
            self._bad_listed.discard(name)
            got = self._stat_name(fd, name)
            if isinstance(got, os.stat_result):
                key = (got.st_size, got.st_mtime_ns, got.st_ino)
                if name in names or trusted.get(name) != key:
                    changed.append((name, key))
                continue
            if got is not None:
                bad.append(got)
            if name in trusted:  # as in the stat loop: no usable file, the row goes
                gone.append(name)
        return changed, gone, bad

    def _to_look_at(self, names: set[str]) -> set[str]:
        """The names a watching scan stats: `names` (reported) and what inotify cannot vouch for."""
        return names | self._racy | self._unwatched | self._bad_listed | self._bad_seen.keys()

    def _full_scan_due(self) -> bool:
        """Whether the last full stat loop is `full_scan_every` seconds old (never when 0)."""
        every, last = self._full_scan_every, self._full_at
        return every > 0 and last is not None and self._clock() - last >= every

    def _stat_all_again(
        self, fd: int, names: set[str]
    ) -> tuple[list[tuple[str, _Key]], list[str], list[BadContact]]:
        """The periodic full loop of a watching store; logs what inotify had not named.

        A change found here that no event reported (and that a watched scan would not
        have statted) is one of the watch's blind spots: docs/pda.md.
        """
        vouched = self._to_look_at(names)
        changed, gone, bad = self._stat_all(fd, names)
        unreported = sorted({name for name, _ in changed}.union(gone) - vouched)
        log.info(
            "full stat loop of the watched vdir",
            vdir=shown(self.path),
            unreported=len(unreported),
            files=[shown(name) for name in unreported[:10]],
        )
        return changed, gone, bad

    def _stat_name(
        self, fd: int, name: str, *, again: bool = True
    ) -> os.stat_result | BadContact | None:
        """One name as every scan sees it: its stat, why it is no usable file, or None (gone).

        The one rule for a name's kind, for the stat loop and the watch alike: a symlink
        is followed, and noted in `_unwatched` (its target may live anywhere), as is a
        file with more than one link (written through another name, the event goes to
        another directory); a name that is no usable file is noted in `_bad_listed`
        (statted again at every scan, so `bad_files` stays whole). A name that keeps
        changing kind under us is set aside for this scan, never taken as gone (a gone
        contact would be deleted on the card); the next scan looks again.
        """
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                self._unwatched.add(name)
                with contextlib.suppress(OSError):  # a link to nothing: judged below
                    st = os.stat(name, dir_fd=fd)
            if stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1:
                    self._unwatched.add(name)
                return st
            odd = bad_entry(self.path, name, self._row_uid(name))
            if odd is None:  # it became a file meanwhile: as it is now
                if again:
                    return self._stat_name(fd, name, again=False)
                reason = "changed kind while being scanned"
                odd = set_aside(self.path, name, reason, self._row_uid(name))
        except FileNotFoundError:
            return None
        except OSError as exc:
            reason = f"cannot stat: {exc.strerror}"
            odd = set_aside(self.path, name, reason, self._row_uid(name))
        self._bad_listed.add(name)
        return odd

    def _row_uid(self, name: str) -> str | None:
        """The uid `name`'s status row holds (the contact it stood for), if it has one."""
        row = self._rows.get(name) if self._rows is not None else None
        return row.uid if row is not None else None

    def _take(
        self,
        changed: list[tuple[str, _Key]],
        gone: list[str],
        bad: list[BadContact],
        now_ns: int,
        reported: set[str],
    ) -> dict[str, ContactInfo]:
        """Read what the stat said changed, update rows, index and status table."""
        rows = self._rows
        assert rows is not None
        changed.sort()
        upserts: list[StatusRow] = []
        bad_seen: dict[str, tuple[_Key, BadContact]] = {}
        for name, key in changed:
            old = rows.get(name)
            seen = self._bad_seen.get(name)
            if (
                seen is not None
                and seen[0] == key
                and key[1] < now_ns - RACY_WINDOW_NS
                and name not in reported
            ):
                bad.append(seen[1])
                bad_seen[name] = seen
                continue
            try:
                got = self._read(name, now_ns, old)
            except BadContact as exc:  # a bad file keeps its row: the uid it last held
                bad.append(exc)
                bad_seen[name] = (key, exc)
                continue
            if got is not None:
                upserts.append(got.row)
            elif old is not None:  # vanished since the listing
                gone.append(name)
        changes: list[tuple[StatusRow | None, StatusRow | None]] = [
            (rows.get(row.filename), row) for row in upserts
        ]
        changes += [(rows[name], None) for name in gone]
        for name in gone:
            self._drop_row(name)
        for row in upserts:
            self._put_row(row)
        self._save(upserts, gone)
        if bad_seen.keys() != self._bad_seen.keys() or not self._update_index(changes):
            self._build_index(bad_seen)
        bad.extend(self._duplicates)
        self._log_new(bad)
        self.bad_files = bad
        self._bad_seen = bad_seen
        return dict(self._contacts)

    # -- watching (a long-running server) ---------------------------------------------------

    @property
    def full_scan_every(self) -> float:
        """Seconds after which a watching scan runs the full stat loop again (0: never)."""
        return self._full_scan_every

    @property
    def watching(self) -> bool:
        """True while inotify tells this store which files changed (else: the stat loop)."""
        return self._watch is not None

    def close(self) -> None:
        """Stop watching the vdir (a later scan runs the stat loop); the store stays usable."""
        self._watch_wanted = False
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _watched_names(self, fd: int) -> set[str] | None:
        """The names inotify saw change since the last scan; None: stat everything.

        A vdir that cannot be watched (inotify limits reached, a network filesystem)
        is logged once and scanned with the stat loop; each scan tries again.
        """
        if not self._watch_wanted:
            return None
        try:
            st = os.fstat(fd)
            if self._watch is None:
                self._watch = DirWatch()
            names = self._watch.changes(fd, (st.st_dev, st.st_ino))
        except OSError as exc:  # WatchUnavailableError, and whatever else the kernel says
            self._unwatch()
            why = str(exc) if isinstance(exc, WatchUnavailableError) else f"inotify: {exc}"
            if why != self._watch_trouble:
                log.warning(
                    "vdir not watched: every sync stats every contact file",
                    vdir=shown(self.path),
                    reason=why,
                )
            self._watch_trouble = why
            return None
        if (names is None and self._watch.rearms == 1) or self._watch_trouble is not None:
            log.info("watching the vdir with inotify", vdir=shown(self.path))
            self._watch_trouble = None
        return names

    def _put_row(self, row: StatusRow) -> None:
        assert self._rows is not None
        self._rows[row.filename] = row
        # A file changed within RACY_WINDOW_NS of being recorded may change again in the
        # same timestamp tick unseen: its row is not trusted until a later scan records it.
        if row.mtime_ns < row.checked_ns - RACY_WINDOW_NS:
            self._trusted[row.filename] = (row.size, row.mtime_ns, row.inode)
            self._racy.discard(row.filename)
        else:
            self._trusted[row.filename] = None
            self._racy.add(row.filename)

    def _drop_row(self, name: str) -> None:
        assert self._rows is not None
        del self._rows[name]
        del self._trusted[name]
        self._racy.discard(name)

    def _update_index(self, changes: list[tuple[StatusRow | None, StatusRow | None]]) -> bool:
        """Apply a scan's (old row, new row) changes to the index and contacts in place.

        Only the plain cases: a file edited keeping its uid, a new file with a new uid,
        a file gone. False (nothing changed) when only a rebuild is sure to be right.
        """
        index = self._index
        if index is None or self._stale or self._duplicates:
            return False
        new_uids: set[str] = set()
        for old, new in changes:
            if old is not None and index.get(old.uid) is not old:
                return False
            if new is not None and old is None and (new.uid in index or new.uid in new_uids):
                return False
            if old is not None and new is not None and old.uid != new.uid:
                return False
            if new is not None:
                new_uids.add(new.uid)
        for old, new in changes:
            if new is not None:
                index[new.uid] = new
                self._contacts[new.uid] = _info(new)
            elif old is not None:
                del index[old.uid], self._contacts[old.uid]
        return True

    def _build_index(self, bad: Mapping[str, object]) -> None:
        """uid -> row and uid -> contact from the rows of readable files (dups set aside)."""
        assert self._rows is not None
        index: dict[str, StatusRow] = {}
        clashes: list[StatusRow] = []
        for name, row in self._rows.items():
            if bad and name in bad:  # set aside now: its row only remembers its uid
                continue
            if index.setdefault(row.uid, row) is not row:
                clashes.append(row)
        duplicates: list[BadContact] = []
        groups: dict[str, list[StatusRow]] = {}
        for row in clashes:
            groups.setdefault(row.uid, [index[row.uid]]).append(row)
        for uid, group in groups.items():
            # The file named after the uid wins, else the first by name (in any scan order).
            named = uid_filename(uid)
            keep = index[uid] = min(group, key=lambda r: (r.filename != named, r.filename))
            duplicates.extend(
                BadContact(
                    shown(self.path / row.filename),
                    f"duplicate UID {uid!r}, also in {shown(keep.filename)}",
                    uids=(uid,),
                )
                for row in sorted(group, key=_by_name)
                if row is not keep
            )
        # A contact whose content hash is the same is the same contact: keep its object.
        old = self._contacts
        contacts: dict[str, ContactInfo] = {}
        for uid, row in index.items():
            info = old.get(uid)
            contacts[uid] = info if info is not None and info.etag == row.etag else _info(row)
        self._index, self._contacts = index, contacts
        self._duplicates = duplicates
        self._stale = False

    def _log_new(self, bad: list[BadContact]) -> None:
        """Log each set-aside file once while it stays as it is (not at every scan)."""
        now = {(b.path, b.reason) for b in bad}
        for b in bad:
            if (b.path, b.reason) not in self._logged:
                log.warning("contact file set aside", file=b.path, reason=b.reason)
        self._logged = now

    def unreadable(self, uid: str) -> bool:
        """True when a file the last scan set aside may hold the contact (by name or UID)."""
        return any(uid in b.uids for b in self.bad_files) or uid_filename(uid) in {
            os.path.basename(b.path) for b in self.bad_files
        }

    def get(self, uid: str) -> ContactInfo | None:
        """One contact, read from its file now (BadContact when the file cannot be read)."""
        located = self._locate(uid)
        return None if located is None else _info(located.row)

    def _locate(self, uid: str) -> _Read | None:
        """Find and read the file holding `uid`, rescanning once when the index is stale."""
        scanned = self._index is None
        if self._index is None:
            self.scan()
        while True:
            assert self._index is not None
            row = self._index.get(uid)
            if row is not None:
                got = self._read(row.filename, time.time_ns(), row)
                if got is not None and got.row.uid == uid:
                    if got.row != row:
                        self._remember(got.row)
                    return got
            if scanned:
                return None
            self.scan()
            scanned = True

    # -- writing ----------------------------------------------------------------------------

    def create(self, projection: Projection, uid: str | None = None) -> str:
        """Write a new card (vCard `version`, FN, N, TEL;TYPE=CELL) named by its UID."""
        projection = validate_projection(projection)
        uid = new_uid() if uid is None else uid
        validate_uid(uid)
        if self._index is None:
            self.scan()
        assert self._index is not None
        if uid in self._index:
            raise ContactExistsError(
                f"contact {uid!r} already exists ({self._index[uid].filename})"
            )
        filename = uid_filename(uid)
        try:
            self._write(
                self.path / filename,
                new_card(uid, projection, self.version).encode(),
                exclusive=True,
            )
        except FileExistsError:
            raise ContactExistsError(f"{self.path / filename} already exists") from None
        self._after_write(filename)
        return uid

    def update_projection(self, uid: str, projection: Projection) -> None:
        """Change FN (N when absent or derived from FN) and the preferred TEL; keep the rest.

        An unchanged projection writes nothing. A number of None removes the
        preferred TEL (another TEL, if any, then becomes the preferred one).
        """
        projection = validate_projection(projection)
        located = self._locate(uid)
        if located is None:
            raise ContactNotFoundError(f"no contact {uid!r}")
        row, full = located.row, self.path / located.row.filename
        try:
            text = located.text
            new_text = apply_projection(text, projection)
        except CardError as exc:
            raise BadContact(shown(full), str(exc), uids=(uid,)) from exc
        if new_text is text:
            return
        self._write(full, new_text.encode(), expect=row)
        self._after_write(row.filename)

    def delete(self, uid: str) -> None:
        """Remove the contact's file."""
        located = self._locate(uid)
        if located is None:
            raise ContactNotFoundError(f"no contact {uid!r}")
        try:
            # A symlink goes, its target stays: the contact leaves this vdir, nothing is lost.
            (self.path / located.row.filename).unlink()
        except FileNotFoundError:
            raise ContactNotFoundError(f"no contact {uid!r}") from None
        except OSError as exc:
            raise StoreIOError(f"cannot delete {shown(located.row.filename)}: {exc}") from exc
        self._forget(located.row)

    def _after_write(self, filename: str) -> None:
        """Record our own write in the status table, so the next scan does not re-parse it."""
        got = self._read(filename, time.time_ns(), None)
        if got is not None:
            self._remember(got.row)

    def _remember(self, row: StatusRow) -> None:
        """A row this store read or wrote outside a scan: into memory and the status table."""
        self._save([row], [])
        if self._rows is None or self._index is None:
            return
        old = self._rows.get(row.filename)
        self._put_row(row)
        if (old is not None and old.uid != row.uid) or self._duplicates:
            self._stale = True  # the uid a file holds moved: let the next scan sort it out
        self._index[row.uid] = row
        self._contacts[row.uid] = _info(row)

    def _forget(self, row: StatusRow) -> None:
        """The file of `row` was deleted by this store."""
        self._save([], [row.filename])
        if self._rows is None or self._index is None:
            return
        if row.filename in self._rows:
            self._drop_row(row.filename)
        self._index.pop(row.uid, None)
        self._contacts.pop(row.uid, None)
        if self._duplicates:
            self._stale = True  # another file holding the uid may take its place

    # -- the status table on disk -----------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Write the status rows of every change made inside in one SQLite transaction.

        The files are written at once as always; only their status rows wait. Should
        the process die before the end, those files are read again by the next scan
        (the table is a cache: it costs a read, never a wrong answer).
        """
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._pending:
                pending, self._pending = self._pending, {}
                self._status.apply(
                    [r for r in pending.values() if r is not None],
                    [name for name, r in pending.items() if r is None],
                    everything=self._all_rows,
                )

    def _save(self, upserts: list[StatusRow], deletes: list[str]) -> None:
        if self._batch_depth:
            self._pending.update((name, None) for name in deletes)
            self._pending.update((r.filename, r) for r in upserts)
        else:
            self._status.apply(upserts, deletes, everything=self._all_rows)

    def _all_rows(self) -> list[StatusRow]:
        """Every row held in memory (what a rebuilt status table is refilled with)."""
        return [] if self._rows is None else list(self._rows.values())

    @property
    def status_loads(self) -> int:
        """How often the status table was read from SQLite (once, unless rebuilt or wiped)."""
        return self._status.loads

    @property
    def status_writes(self) -> int:
        """Transactions that changed the status table on disk so far."""
        return self._status.writes

    def _write(
        self, target: Path, data: bytes, *, exclusive: bool = False, expect: StatusRow | None = None
    ) -> None:
        """Atomically put `data` at `target` (vfile.write_atomic: a symlink's target).

        `exclusive`: fail with FileExistsError rather than replace. `expect`: the
        file must still be what was read, else ContactChangedError.
        """

        def unchanged(real: Path) -> None:
            if expect is None:
                return
            try:
                st = os.stat(real)
            except FileNotFoundError:
                gone = f"{shown(target)} vanished while being updated"
                raise ContactNotFoundError(gone) from None
            if (st.st_size, st.st_mtime_ns, st.st_ino) != (
                expect.size,
                expect.mtime_ns,
                expect.inode,
            ):
                raise ContactChangedError(f"{shown(target)} changed while being updated")

        write_atomic(target, data, exclusive=exclusive, check=unchanged)


def _by_name(row: StatusRow) -> str:
    return row.filename


def _info(row: StatusRow) -> ContactInfo:
    return ContactInfo(row.uid, Projection(row.name, row.number), row.etag)
