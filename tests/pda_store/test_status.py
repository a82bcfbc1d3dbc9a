"""The status table: only changed files are parsed; hand edits, deletions, bad files, bad DBs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from pda.status import StatusTable
from pda.store import BadContact, Projection
from pda.vcard import new_card
from pda.vdir import STATUS_DB_NAME, VdirStore

from .conftest import age


def fill(vdir: Path, count: int) -> list[Path]:
    """`count` cards written directly (as another vdir tool would), backdated."""
    paths = []
    for i in range(count):
        path = vdir / f"c{i:03}.vcf"
        path.write_text(new_card(f"c{i:03}", Projection(f"Person {i}", f"+1555{i:04}")))
        paths.append(path)
    age(*paths)
    return paths


def rewrite(path: Path, uid: str, projection: Projection) -> None:
    """A hand edit: the file rewritten in place (same inode), as an editor might."""
    with open(path, "w", newline="") as f:
        f.write(new_card(uid, projection))


def test_unchanged_files_are_not_parsed(vdir: Path) -> None:
    fill(vdir, 40)
    store = VdirStore(vdir)
    assert len(store.scan()) == 40
    assert store.parse_count == 40
    assert len(VdirStore(vdir).scan()) == 40  # a fresh process trusts the table
    again = VdirStore(vdir)
    again.scan()
    assert again.parse_count == 0


def test_one_changed_file_is_the_only_one_parsed(vdir: Path) -> None:
    paths = fill(vdir, 40)
    store = VdirStore(vdir)
    store.scan()
    rewrite(paths[7], "c007", Projection("Changed By Hand", "+999"))
    before = store.parse_count
    contacts = store.scan()
    assert store.parse_count - before == 1
    assert contacts["c007"].projection == Projection("Changed By Hand", "+999")
    assert contacts["c008"].projection == Projection("Person 8", "+15550008")


def test_same_size_same_mtime_edit_is_caught(vdir: Path) -> None:
    """A rewrite in the same timestamp tick, same size: only the racy check can see it."""
    path = vdir / "racy.vcf"
    rewrite(path, "racy", Projection("Aaaa", "1111"))
    store = VdirStore(vdir)
    store.scan()
    st = path.stat()
    rewrite(path, "racy", Projection("Bbbb", "2222"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    new = path.stat()
    assert (new.st_size, new.st_mtime_ns, new.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert store.scan()["racy"].projection == Projection("Bbbb", "2222")


def test_new_and_deleted_files(vdir: Path) -> None:
    paths = fill(vdir, 5)
    store = VdirStore(vdir)
    store.scan()
    paths[2].unlink()
    fill_new = vdir / "new.vcf"
    fill_new.write_text(new_card("new", Projection("Newcomer", "5")))
    contacts = store.scan()
    assert set(contacts) == {"c000", "c001", "c003", "c004", "new"}
    rows = StatusTable(vdir / STATUS_DB_NAME, store.store_id).load()
    assert set(rows) == {"c000.vcf", "c001.vcf", "c003.vcf", "c004.vcf", "new.vcf"}


def test_etag_follows_content(vdir: Path) -> None:
    paths = fill(vdir, 2)
    store = VdirStore(vdir)
    first = store.scan()
    rewrite(paths[0], "c000", Projection("Person 0", "+15550000"))  # same content again
    paths[1].write_bytes(paths[1].read_bytes().replace(b"END:VCARD", b"NOTE:x\r\nEND:VCARD"))
    second = store.scan()
    assert second["c000"].etag == first["c000"].etag
    assert second["c001"].etag != first["c001"].etag  # a non-projection change still shows
    assert second["c001"].projection == first["c001"].projection


@pytest.mark.parametrize("damage", [b"this is not sqlite", b"SQLite format 3\x00" + b"\xff" * 200])
def test_corrupt_status_db_is_rebuilt(vdir: Path, damage: bytes) -> None:
    fill(vdir, 10)
    VdirStore(vdir).scan()
    (vdir / STATUS_DB_NAME).write_bytes(damage)
    store = VdirStore(vdir)
    contacts = store.scan()
    assert len(contacts) == 10
    assert store.parse_count == 10
    assert store._status.rebuilds == 1
    again = VdirStore(vdir)
    assert again.scan() == contacts
    assert again.parse_count == 0  # the rebuilt table is used


def test_row_of_wrong_type_is_not_trusted(vdir: Path) -> None:
    fill(vdir, 3)
    VdirStore(vdir).scan()
    with sqlite3.connect(vdir / STATUS_DB_NAME) as conn:
        conn.execute("UPDATE files SET size = 'x' WHERE filename = 'c001.vcf'")
    conn.close()
    store = VdirStore(vdir)
    assert store.scan()["c001"].projection == Projection("Person 1", "+15550001")


def test_status_db_of_another_vdir_is_dropped(tmp_path: Path) -> None:
    shared_db = tmp_path / "status.sqlite"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    fill(a, 3)
    VdirStore(a, status_db=shared_db).scan()
    # Same file names, different content, other store id: rows of `a` must not be used.
    for i in range(3):
        (b / f"c{i:03}.vcf").write_text(new_card(f"c{i:03}", Projection(f"B {i}", "7")))
    store = VdirStore(b, status_db=shared_db)
    contacts = store.scan()
    assert {c.projection.name for c in contacts.values()} == {"B 0", "B 1", "B 2"}
    assert store._status.rebuilds == 1


def test_bad_file_reported_skipped_and_left_alone(vdir: Path) -> None:
    fill(vdir, 3)
    bad = {
        "garbage.vcf": b"this is not a vcard\r\n",
        "latin1.vcf": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:J\xfcrgen\r\nEND:VCARD\r\n".encode(
            "latin-1"
        ),
        "two.vcf": (
            new_card("t1", Projection("T", "1")) + new_card("t2", Projection("T", "2"))
        ).encode(),
        "v10.vcf": b"BEGIN:VCARD\r\nVERSION:1.0\r\nFN:Old\r\nEND:VCARD\r\n",
        "noname.vcf": b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:nn\r\nTEL:1\r\nEND:VCARD\r\n",
        "badphoto.vcf": b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:P\r\nPHOTO;ENCODING=b:abc\r\n"
        b"END:VCARD\r\n",
    }
    for name, data in bad.items():
        (vdir / name).write_bytes(data)
        age(vdir / name)
    store = VdirStore(vdir)
    contacts = store.scan()
    assert set(contacts) == {"c000", "c001", "c002"}
    reported = {Path(b.path).name: b.reason for b in store.bad_files}
    assert set(reported) == set(bad)
    assert "VERSION 1.0" in reported["v10.vcf"]
    assert "UTF-8" in reported["latin1.vcf"]
    assert "2 components" in reported["two.vcf"]
    store.create(Projection("Another", "1"))
    parsed = store.parse_count
    store.scan()
    assert store.parse_count == parsed  # bad files are remembered, not re-parsed
    for name, data in bad.items():
        assert (vdir / name).read_bytes() == data


def test_duplicate_uid_keeps_the_file_named_after_it(vdir: Path) -> None:
    (vdir / "dup.vcf").write_text(new_card("dup", Projection("Right", "1")))
    (vdir / "aaa-copy.vcf").write_text(new_card("dup", Projection("Copy", "2")))
    store = VdirStore(vdir)
    assert store.scan()["dup"].projection == Projection("Right", "1")
    assert [Path(b.path).name for b in store.bad_files] == ["aaa-copy.vcf"]
    assert "duplicate UID" in store.bad_files[0].reason


def test_get_reads_the_file_now(vdir: Path) -> None:
    paths = fill(vdir, 3)
    store = VdirStore(vdir)
    store.scan()
    rewrite(paths[1], "c001", Projection("Edited", "42"))
    info = store.get("c001")
    assert info is not None
    assert info.projection == Projection("Edited", "42")
    paths[2].unlink()
    assert store.get("c002") is None
    # A file renamed by hand is found again through a rescan.
    paths[0].rename(vdir / "renamed.vcf")
    info = store.get("c000")
    assert info is not None
    assert info.projection.name == "Person 0"


def test_contact_whose_file_turns_bad(vdir: Path) -> None:
    paths = fill(vdir, 2)
    store = VdirStore(vdir)
    store.scan()
    paths[0].write_bytes(b"BEGIN:VCARD\r\nVERSION:3.0\r\nbroken line\r\nEND:VCARD\r\n")
    with pytest.raises(BadContact) as err:
        store.get("c000")
    assert err.value.path == str(paths[0])
    with pytest.raises(BadContact):
        store.update_projection("c000", Projection("Overwrite?", "1"))
    with pytest.raises(BadContact):
        store.delete("c000")
    assert paths[0].read_bytes().startswith(b"BEGIN:VCARD\r\nVERSION:3.0\r\nbroken")
    assert set(store.scan()) == {"c001"}
    assert [Path(b.path).name for b in store.bad_files] == ["c000.vcf"]
