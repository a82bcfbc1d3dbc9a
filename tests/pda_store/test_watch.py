"""A watching VdirStore (inotify, as `simsync pda serve` runs it) stats only what changed.

Real files in a real directory, real inotify: every test changes files with the
calls a person's tools make and then scans. The kernel queues an event before the
call that caused it returns, so nothing here waits for anything. Counts, not
times: `stat_count` (files statted by scans) and `parse_count` (cards parsed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pda.store import Projection
from pda.vcard import new_card
from pda.vdir import STORE_ID_NAME, VdirStore
from pda.vfile import Loaded, load

from .conftest import age


def card(uid: str, name: str, number: str = "+15550000") -> str:
    return new_card(uid, Projection(name, number))


def book(vdir: Path, count: int) -> None:
    """`count` cards c0000.vcf... written directly (as a vdir tool would), backdated."""
    paths = []
    for i in range(count):
        path = vdir / f"c{i:04}.vcf"
        path.write_text(card(f"c{i:04}", f"Person {i}", f"+1555{i:04}"))
        paths.append(path)
    age(*paths)


def edit(path: Path, name: str) -> None:
    """Rewrite a card in place (same inode), with a new name, then backdate it.

    Backdated, the scan that reads it trusts its row at once (no racy re-check by
    content at the next scans), so the counts do not depend on how fast the test runs.
    """
    uid = path.stem
    with open(path, "r+", newline="") as f:
        f.truncate()
        f.write(card(uid, name))
    age(path)


def put(path: Path, name: str) -> None:
    """A new card file, as another tool writes it, backdated."""
    path.write_text(card(path.stem, name))
    age(path)


@pytest.fixture
def watched(vdir: Path) -> Iterator[VdirStore]:
    """A watching store over a vdir of 50 cards, after its first (full) scan."""
    book(vdir, 50)
    store = VdirStore(vdir, watch=True)
    assert len(store.scan()) == 50
    assert store.watching
    assert store.stat_count == 50
    yield store
    store.close()


class Work:
    """What one scan cost: files statted and cards parsed."""

    def __init__(self, store: VdirStore) -> None:
        self.store = store
        self.stats, self.parses = store.stat_count, store.parse_count

    def scan(self) -> tuple[dict[str, str], int, int]:
        """Scan; (uid -> name, stats, parses) of this scan."""
        s, p = self.store.stat_count, self.store.parse_count
        contacts = self.store.scan()
        self.stats, self.parses = self.store.stat_count, self.store.parse_count
        names = {uid: c.projection.name for uid, c in contacts.items()}
        return names, self.stats - s, self.parses - p


@pytest.mark.parametrize("size", [60, 600])
def test_a_scan_stats_the_changed_files_whatever_the_book_size(vdir: Path, size: int) -> None:
    book(vdir, size)
    store = VdirStore(vdir, watch=True)
    try:
        w = Work(store)
        assert len(w.scan()[0]) == size  # the first scan: everything
        assert store.stat_count == size
        assert w.scan()[1:] == (0, 0)  # nothing changed: nothing statted
        # A person edits three cards, deletes one, adds one.
        for i in (3, 7, 11):
            edit(vdir / f"c{i:04}.vcf", f"Edited {i}")
        (vdir / "c0020.vcf").unlink()
        put(vdir / "new.vcf", "Newcomer")
        names, stats, parses = w.scan()
        assert (stats, parses) == (5, 4)  # the same at 100 and at 2,000 files
        assert names["c0003"] == "Edited 3"
        assert names["new"] == "Newcomer"
        assert "c0020" not in names
        assert len(names) == size
        assert w.scan()[1:] == (0, 0)
    finally:
        store.close()


def test_the_stat_loop_without_watching_stats_every_file(vdir: Path) -> None:
    book(vdir, 30)
    store = VdirStore(vdir)
    w = Work(store)
    w.scan()
    edit(vdir / "c0001.vcf", "Edited")
    names, stats, parses = w.scan()
    assert (stats, parses, names["c0001"]) == (30, 1, "Edited")
    assert not store.watching


def test_an_editors_atomic_write_is_seen(watched: VdirStore, vdir: Path) -> None:
    w = Work(watched)
    # Written beside the card under a name vdir tools ignore, then renamed into place.
    tmp = vdir / ".c0004.vcf.swp"
    tmp.write_text(card("c0004", "Saved By Editor"))
    os.replace(tmp, vdir / "c0004.vcf")
    # vim's way: the old file renamed to a backup, a new one written under the name.
    os.rename(vdir / "c0005.vcf", vdir / "c0005.vcf~")
    (vdir / "c0005.vcf").write_text(card("c0005", "Written By Vim"))
    (vdir / "c0005.vcf~").unlink()
    names, stats, parses = w.scan()
    assert names["c0004"] == "Saved By Editor"
    assert names["c0005"] == "Written By Vim"
    assert (stats, parses) == (2, 2)


def test_renames_out_of_the_vdir_and_deletes_are_seen(
    watched: VdirStore, vdir: Path, tmp_path: Path
) -> None:
    w = Work(watched)
    os.rename(vdir / "c0001.vcf", tmp_path / "c0001.vcf")
    (vdir / "c0002.vcf").unlink()
    os.rename(vdir / "c0003.vcf", vdir / "renamed.vcf")  # within: the same contact
    names, stats, _ = w.scan()
    assert "c0001" not in names
    assert "c0002" not in names
    assert names["c0003"] == "Person 3"
    assert len(names) == 48
    assert stats == 4


def test_hard_linked_files_rewritten_through_their_other_names_are_seen(
    vdir: Path, tmp_path: Path
) -> None:
    book(vdir, 20)
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.link(vdir / "c0006.vcf", other / "c0006.vcf")  # a second name outside, before the scan
    store = VdirStore(vdir, watch=True)
    try:
        w = Work(store)
        w.scan()
        outside = other / "x.vcf"
        put(outside, "Linked In")
        os.link(outside, vdir / "x.vcf")  # a file linked into the vdir
        names, _, _ = w.scan()
        assert names["x"] == "Linked In"
        inode = (vdir / "c0006.vcf").stat().st_ino
        # Same inode, written through the names outside: no event reaches the vdir's watch.
        edit(other / "c0006.vcf", "Edited Elsewhere")
        edit(outside, "Edited Outside")
        assert (vdir / "c0006.vcf").stat().st_ino == inode
        names, stats, parses = w.scan()
        assert names["c0006"] == "Edited Elsewhere"
        assert names["x"] == "Edited Outside"
        assert parses == 2
        assert stats == 2  # files with more than one link are statted at every scan: only those
        (other / "c0006.vcf").unlink()  # one name again: watched like the rest from now on
        edit(vdir / "c0007.vcf", "Edited")
        _, stats, _ = w.scan()
        assert stats == 3  # c0007, c0006 (statted as linked: one link now), x.vcf
        _, stats, _ = w.scan()
        assert stats == 1  # x.vcf
    finally:
        store.close()


def test_a_symlinks_target_edited_outside_is_seen(
    watched: VdirStore, vdir: Path, tmp_path: Path
) -> None:
    w = Work(watched)
    target = tmp_path / "shared.vcf"
    put(target, "Shared")
    (vdir / "shared.vcf").symlink_to(target)
    assert w.scan()[0]["shared"] == "Shared"
    edit(target, "Shared And Edited")
    assert w.scan()[0]["shared"] == "Shared And Edited"
    target.unlink()  # now a link to nothing: set aside, as the stat loop does
    names, _, _ = w.scan()
    assert "shared" not in names
    assert [b.reason for b in watched.bad_files] == [
        "a link to nothing (its target is missing, or links loop)"
    ]


def test_touch_without_a_content_change_reads_but_parses_nothing(
    watched: VdirStore, vdir: Path
) -> None:
    w = Work(watched)
    before = watched.scan()["c0008"].etag
    os.utime(vdir / "c0008.vcf")
    names, stats, parses = w.scan()
    assert (stats, parses) == (1, 0)
    assert watched.scan()["c0008"].etag == before
    assert len(names) == 50


def test_a_same_size_rewrite_in_the_same_tick_is_seen(watched: VdirStore, vdir: Path) -> None:
    w = Work(watched)
    path = vdir / "c0009.vcf"
    stat = path.stat()
    edit(path, "Person X")  # "Person 9" -> "Person X": same size, same inode
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime back
    assert path.stat().st_size == stat.st_size
    names, _, parses = w.scan()
    assert (names["c0009"], parses) == ("Person X", 1)


def test_a_file_made_while_a_scan_runs_is_seen_by_the_next(
    watched: VdirStore, vdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done: list[str] = []

    def load_and_meanwhile(
        directory: Path, filename: str, old_uid: str | None = None
    ) -> Loaded | None:
        if not done:  # another program writes while this scan reads the changed files
            put(vdir / "during.vcf", "Made During")
            edit(vdir / "c0011.vcf", "Edited During")
            done.append(filename)
        return load(directory, filename, old_uid)

    edit(vdir / "c0010.vcf", "Edited Before")
    monkeypatch.setattr("pda.vdir.load", load_and_meanwhile)  # the name the store calls
    w = Work(watched)
    names, _, _ = w.scan()
    assert names["c0010"] == "Edited Before"
    assert done == ["c0010.vcf"]
    names, _, _ = w.scan()
    assert names["during"] == "Made During"
    assert names["c0011"] == "Edited During"


def test_a_queue_overflow_falls_back_to_one_full_scan(watched: VdirStore, vdir: Path) -> None:
    w = Work(watched)
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    a, b = vdir / "c0001.vcf", vdir / "c0002.vcf"
    st = a.stat()
    for _ in range(limit // 2 + 1):  # two names in turn: the kernel merges no event
        os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
    edit(vdir / "c0012.vcf", "Lost In The Overflow")  # its event is dropped
    names, stats, _ = w.scan()
    assert names["c0012"] == "Lost In The Overflow"
    assert stats == 50  # one full stat loop
    assert watched.watching
    edit(vdir / "c0013.vcf", "After")  # watched again: one stat
    names, stats, _ = w.scan()
    assert names["c0013"] == "After"
    assert stats == 1


def test_a_vdir_replaced_by_another_directory_is_scanned_in_full(
    watched: VdirStore, vdir: Path, tmp_path: Path
) -> None:
    w = Work(watched)
    # A restore from backup: the directory moved away, a copy (marker too) put in its place.
    shutil.copytree(vdir, tmp_path / "copy", copy_function=shutil.copy2)
    edit(tmp_path / "copy" / "c0014.vcf", "Restored")
    os.rename(vdir, tmp_path / "old")
    os.rename(tmp_path / "copy", vdir)
    edit(tmp_path / "old" / "c0015.vcf", "In The Old One")  # events of the old directory
    names, stats, _ = w.scan()
    assert names["c0014"] == "Restored"
    assert names["c0015"] == "Person 15"
    assert stats == 50
    edit(vdir / "c0016.vcf", "Watched Again")  # the new directory is watched now
    names, stats, _ = w.scan()
    assert names["c0016"] == "Watched Again"
    assert stats == 1


def test_a_vdir_moved_with_its_parent_is_noticed(tmp_path: Path) -> None:
    # The watched directory itself is not moved (no event), its parent is renamed.
    vdir = tmp_path / "a" / "contacts"
    vdir.mkdir(parents=True)
    book(vdir, 10)
    store = VdirStore(vdir, watch=True)
    try:
        w = Work(store)
        w.scan()
        os.rename(tmp_path / "a", tmp_path / "b")
        shutil.copytree(tmp_path / "b" / "contacts", vdir, copy_function=shutil.copy2)
        edit(vdir / "c0001.vcf", "In The New One")
        names, stats, _ = w.scan()
        assert names["c0001"] == "In The New One"
        assert stats == 10
    finally:
        store.close()


def test_a_vdir_removed_and_made_again_is_watched_again(watched: VdirStore, vdir: Path) -> None:
    w = Work(watched)
    old_id = watched.store_id
    shutil.rmtree(vdir)
    names, _, _ = w.scan()
    assert names == {}
    assert watched.store_id != old_id  # a new store: the engine treats it as wiped
    assert (vdir / STORE_ID_NAME).exists()
    put(vdir / "back.vcf", "Came Back")
    names, stats, _ = w.scan()
    assert names == {"back": "Came Back"}
    assert stats == 1


def test_bad_files_stay_listed_and_are_read_again_once_repaired(
    watched: VdirStore, vdir: Path
) -> None:
    w = Work(watched)
    (vdir / "dir.vcf").mkdir()
    broken = vdir / "broken.vcf"
    broken.write_bytes(b"not a vcard at all\n")
    age(broken)
    names, _, _ = w.scan()
    assert len(names) == 50
    assert sorted(os.path.basename(b.path) for b in watched.bad_files) == [
        "broken.vcf",
        "dir.vcf",
    ]
    _, stats, parses = w.scan()  # still listed, without a parse
    assert (stats, parses) == (2, 0)
    assert len(watched.bad_files) == 2
    put(broken, "Repaired")
    names, _, _ = w.scan()
    assert names["broken"] == "Repaired"
    assert [os.path.basename(b.path) for b in watched.bad_files] == ["dir.vcf"]


# -- when inotify cannot be had: real kernel limits, in a user namespace of our own ---------

_LIMITED = """
import json, os, sys
from pathlib import Path
from structlog.testing import capture_logs
from pda.vdir import VdirStore
from pda.store import Projection
from pda.vcard import new_card

limit_file, vdir = Path(sys.argv[1]), Path(sys.argv[2])
limit_file.write_text("0")  # this namespace's limit: the kernel refuses from now on
out = {}
store = VdirStore(vdir, watch=True)
with capture_logs() as logs:
    out["first"] = len(store.scan())
    out["watching"] = store.watching
    (vdir / "c0001.vcf").write_text(new_card("c0001", Projection("Edited", "+1")))
    before = store.stat_count
    out["edited"] = store.scan()["c0001"].projection.name
    out["stats"] = store.stat_count - before
    store.scan()
    limit_file.write_text("100")  # room again: the next scan watches
    store.scan()
    out["watching_again"] = store.watching
out["logs"] = [(e["log_level"], e["event"], e.get("reason", "")) for e in logs]
store.close()
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    ("limit", "why"),
    [
        ("max_inotify_instances", "inotify_init1: Too many open files"),
        ("max_inotify_watches", "inotify_add_watch: No space left on device"),
    ],
)
def test_inotify_limits_reached_fall_back_to_the_stat_loop(
    vdir: Path, limit: str, why: str
) -> None:
    book(vdir, 20)
    # A user namespace has its own inotify limits: set to 0 there, the kernel itself refuses.
    argv = ["unshare", "--user", "--map-root-user", sys.executable, "-c", _LIMITED]
    argv += [f"/proc/sys/user/{limit}", str(vdir)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["first"] == 20
    assert out["watching"] is False
    assert out["edited"] == "Edited"
    assert out["stats"] == 20  # the stat loop
    warnings = [log for log in out["logs"] if log[0] == "warning"]
    assert len(warnings) == 1  # once, not at every scan
    _, event, reason = warnings[0]
    assert event == "vdir not watched: every sync stats every contact file"
    assert reason.startswith(why)
    assert out["watching_again"] is True
    assert out["logs"][-1][:2] == ["info", "watching the vdir with inotify"]


# -- the periodic full stat loop: the net under what inotify cannot see ---------------------


class Clock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def link_and_edit_outside(vdir: Path, elsewhere: Path, name: str, new_name: str) -> None:
    """The blind spot: a second name made outside the vdir, the card edited in place through it.

    The new link changes the file's link count, which only the file's own watchers hear
    of; the write goes through a name in another directory: the vdir's watch sees neither.
    """
    elsewhere.mkdir(exist_ok=True)
    os.link(vdir / name, elsewhere / name)
    edit(elsewhere / name, new_name)


@contextlib.contextmanager
def clocked(vdir: Path, every: float) -> Iterator[tuple[Work, Clock]]:
    """A watching store over 50 cards, full loop every `every` s of a hand-moved clock.

    Yielded after its first scan (the full loop, at 1000 on the clock).
    """
    book(vdir, 50)
    clock = Clock()
    store = VdirStore(vdir, watch=True, full_scan_every=every, clock=clock)
    try:
        w = Work(store)
        assert w.scan()[1] == 50
        yield w, clock
    finally:
        store.close()


def test_an_edit_through_a_link_made_outside_is_seen_by_the_periodic_full_loop(
    vdir: Path, tmp_path: Path
) -> None:
    with clocked(vdir, 3600) as (w, clock):
        link_and_edit_outside(vdir, tmp_path / "elsewhere", "c0006.vcf", "Edited Elsewhere")
        clock.now += 3599
        names, stats, parses = w.scan()
        assert names["c0006"] == "Person 6"  # not seen: nothing statted, nothing read
        assert (stats, parses) == (0, 0)
        clock.now += 1  # the last full loop is an hour old: the next scan is one
        with capture_logs() as logs:
            names, stats, parses = w.scan()
        assert names["c0006"] == "Edited Elsewhere"
        assert (stats, parses) == (50, 1)
        assert [(e["event"], e["unreported"], e["files"]) for e in logs] == [
            ("full stat loop of the watched vdir", 1, ["c0006.vcf"])
        ]
        # The clock starts again from that loop: watched scans until another hour is up.
        edit(vdir / "c0007.vcf", "Edited")
        clock.now += 3599
        names, stats, parses = w.scan()
        assert names["c0007"] == "Edited"
        assert (stats, parses) == (2, 1)  # c0007, and c0006: it has two links now
        clock.now += 1
        with capture_logs() as logs:
            _, stats, parses = w.scan()
        assert (stats, parses) == (50, 0)
        assert [(e["unreported"], e["files"]) for e in logs] == [(0, [])]
        assert w.store.watching


def test_full_scan_every_0_never_runs_the_full_loop_again(vdir: Path, tmp_path: Path) -> None:
    with clocked(vdir, 0) as (w, clock):
        link_and_edit_outside(vdir, tmp_path / "elsewhere", "c0006.vcf", "Edited Elsewhere")
        edit(vdir / "c0007.vcf", "Edited")
        for expected_stats in (1, 0, 0):  # c0007, then nothing
            clock.now += 1e9  # some 30 years each time
            names, stats, _ = w.scan()
            # The blind spot stays open, as asked; a watched change is seen as ever.
            assert (names["c0006"], names["c0007"]) == ("Person 6", "Edited")
            assert stats == expected_stats


def test_the_periodic_full_loop_still_reads_the_names_inotify_reported(vdir: Path) -> None:
    # A same-size rewrite with the old mtime put back: its stat key is the row's, only the
    # event tells. The full loop must not lose it because the key looks unchanged.
    with clocked(vdir, 60) as (w, clock):
        path = vdir / "c0009.vcf"
        st = path.stat()
        edit(path, "Person X")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        clock.now += 60
        names, stats, parses = w.scan()
        assert (names["c0009"], stats, parses) == ("Person X", 50, 1)


def test_a_store_that_is_not_watching_runs_the_full_loop_at_every_scan(vdir: Path) -> None:
    book(vdir, 20)
    clock = Clock()
    store = VdirStore(vdir, full_scan_every=3600, clock=clock)  # not watching: always full
    w = Work(store)
    w.scan()
    edit(vdir / "c0001.vcf", "Edited")
    names, stats, _ = w.scan()
    assert (names["c0001"], stats) == ("Edited", 20)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_an_interval_that_is_negative_or_not_finite_is_refused(vdir: Path, bad: float) -> None:
    with pytest.raises(ValueError, match="0 \\(never\\) or a finite number of seconds"):
        VdirStore(vdir, watch=True, full_scan_every=bad)


@pytest.mark.parametrize("watch", [False, True])
@pytest.mark.parametrize("twice", [False, True], ids=["fifo", "kind-changes-twice"])
def test_a_name_that_is_no_file_or_keeps_changing_kind_is_set_aside_never_gone(
    vdir: Path, monkeypatch: pytest.MonkeyPatch, watch: bool, twice: bool
) -> None:
    # "Alice Smith.vcf" (UID alice-1, a name khard users have) becomes a FIFO; `twice`:
    # each second look finds "a file" again (a tool swapping it back and forth during the
    # scan). Taken as gone, Alice would be deleted on the card; set aside under the uid
    # her row held, the engine keeps her (`unreadable`) until a scan settles it.
    book(vdir, 5)
    alice = vdir / "Alice Smith.vcf"
    alice.write_text(card("alice-1", "Alice Smith"))
    age(alice)
    store = VdirStore(vdir, watch=watch)
    try:
        w = Work(store)
        assert w.scan()[0]["alice-1"] == "Alice Smith"
        alice.unlink()
        os.mkfifo(alice)
        if twice:
            monkeypatch.setattr("pda.vdir.bad_entry", lambda *_: None)
        names, _, _ = w.scan()
        assert "alice-1" not in names
        reason = "changed kind while being scanned" if twice else "not a regular file"
        assert [(Path(b.path).name, b.reason) for b in store.bad_files] == [
            ("Alice Smith.vcf", reason)
        ]
        assert store.unreadable("alice-1")
    finally:
        store.close()


def test_the_stat_loop_stats_linked_and_symlinked_files_once(
    vdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The listing's entry gives each file's stat; asking `os.stat` again for a file with
    # other links, or for a symlink's target, would double the loop's cost in a vdir of
    # hard-linked or symlinked cards (`--no-watch`, NFS, the periodic loop).
    book(vdir, 10)
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(3):
        os.link(vdir / f"c{i:04}.vcf", outside / f"c{i:04}.vcf")
    for i in range(3, 5):
        target = outside / f"c{i:04}.vcf"
        os.replace(vdir / f"c{i:04}.vcf", target)
        (vdir / f"c{i:04}.vcf").symlink_to(target)
    store = VdirStore(vdir)
    try:
        assert len(store.scan()) == 10
        calls: list[str] = []
        real = os.stat

        def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            calls.append(str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", counting)
        assert len(store.scan()) == 10  # nothing changed
        assert [c for c in calls if c.endswith(".vcf")] == []
    finally:
        store.close()
