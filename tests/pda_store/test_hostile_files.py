"""What people and programs leave in a vdir: each file is read or set aside, named, bounded."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import structlog

from pda.store import Projection
from pda.vcard import parse_card
from pda.vdir import STATUS_DB_NAME, VdirStore
from pda.vfile import MAX_VCARD_BYTES

from .conftest import age

ALICE = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:alice-0001\r\nFN:Alice Smith\r\n"
    "N:Smith;Alice;;;\r\nTEL;TYPE=CELL:+4911\r\nEMAIL:alice@example.org\r\nEND:VCARD\r\n"
)
HANS_21 = (
    b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:M=FCller;Hans\r\n"
    b"FN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Hans M=FCller\r\n"
    b"TEL;HOME:030 1234\r\nTEL;CELL;PREF:+49 170 123\r\n"
    b"NOTE;ENCODING=QUOTED-PRINTABLE:Zeile eins=0D=0AZeile zwei, mit Komma und langem Te=\r\n"
    b"xt\r\nADR;HOME;CHARSET=ISO-8859-1:;;Stra\xdfe 1;Berlin;;10115;DE\r\n"
    b"PHOTO;ENCODING=BASE64;TYPE=JPEG:\r\n /9j/4AAQSkZJRgABAQ\r\n AAAQABAAA=\r\n\r\n"
    b"X-PALM-CATEGORY:Familie\r\nEND:VCARD\r\n"
)


def test_a_file_not_named_by_its_uid_that_turns_unreadable_stays_known(vdir: Path) -> None:
    path = vdir / "Alice Smith.vcf"
    path.write_text(ALICE, newline="")
    age(path)
    assert "alice-0001" in VdirStore(vdir).scan()
    path.write_bytes(ALICE.replace("Alice Smith", "Alice Sm\xeeth").encode("latin-1"))
    for store in (VdirStore(vdir), VdirStore(vdir)):  # this process and a later one
        assert "alice-0001" not in store.scan()
        assert store.unreadable("alice-0001")
        (bad,) = store.bad_files
        assert "not UTF-8" in bad.reason
        assert bad.path.endswith("Alice Smith.vcf")
    # With the status table lost too, the UID line of the unreadable file still names it.
    (vdir / STATUS_DB_NAME).unlink()
    store = VdirStore(vdir)
    store.scan()
    assert store.unreadable("alice-0001")
    assert not store.unreadable("someone-else")


def test_a_file_name_that_is_not_utf8_is_read_and_named(vdir: Path) -> None:
    raw = os.fsencode(vdir) + b"/M\xfcller.vcf"
    with open(raw, "wb") as f:
        f.write(ALICE.replace("alice-0001", "mueller").replace("Alice Smith", "Jo M").encode())
    os.utime(raw, ns=(1, 1))
    store = VdirStore(vdir)
    assert store.scan()["mueller"].projection == Projection("Jo M", "+4911")
    again = VdirStore(vdir)  # the status table held the name: nothing re-parsed
    assert "mueller" in again.scan()
    assert again.parse_count == 0
    again.update_projection("mueller", Projection("Jo Müller", "+4911"))
    with open(raw, "rb") as f:
        assert b"FN:Jo M\xc3\xbcller" in f.read()
    with open(raw, "wb") as f:  # turned bad: the message shows the name, escaped
        f.write(b"junk\r\n")
    os.utime(raw, ns=(2, 2))
    store.scan()
    (bad,) = store.bad_files
    assert bad.path.endswith("M\\xfcller.vcf")
    assert store.unreadable("mueller")


def test_an_oversized_file_is_set_aside_unread_in_bounded_memory(vdir: Path) -> None:
    big = vdir / "junk.vcf"
    with open(big, "wb") as f:
        f.write(b"BEGIN:VCARD\r\nUID:big-one\r\n")
        f.truncate(64 << 20)  # 64 MiB (sparse: costs no disk)
    (vdir / "ok.vcf").write_text(ALICE, newline="")
    tracemalloc.start()
    try:
        contacts = VdirStore(vdir).scan()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert set(contacts) == {"alice-0001"}
    assert peak < 4 * MAX_VCARD_BYTES  # the file's head at most, never its 64 MiB
    store = VdirStore(vdir)
    store.scan()
    (bad,) = store.bad_files
    assert bad.reason.startswith(f"oversized: {64 << 20} bytes")
    assert store.unreadable("big-one")


def test_links_into_and_out_of_the_vdir_are_written_through_and_kept(
    vdir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "alice.vcf").write_text(ALICE, newline="")
    (vdir / "alice.vcf").symlink_to(outside / "alice.vcf")
    (vdir / ".real").mkdir()
    (vdir / ".real" / "bob").write_text(ALICE.replace("alice-0001", "bob").replace("Alice", "Bob"))
    (vdir / "bob.vcf").symlink_to(Path(".real/bob"))
    store = VdirStore(vdir)
    assert set(store.scan()) == {"alice-0001", "bob"}
    store.update_projection("alice-0001", Projection("Alice Jones", "+4911"))
    store.update_projection("bob", Projection("Bob Smith", "+4912"))
    assert (vdir / "alice.vcf").is_symlink()
    assert (vdir / "bob.vcf").is_symlink()
    text = (outside / "alice.vcf").read_text()
    assert parse_card(text).projection == Projection("Alice Jones", "+4911")
    assert "EMAIL:alice@example.org" in text
    assert parse_card((vdir / ".real" / "bob").read_text()).projection.name == "Bob Smith"
    assert sorted(p.name for p in outside.iterdir()) == ["alice.vcf"]  # no temp file left
    store.delete("alice-0001")
    assert not (vdir / "alice.vcf").exists()
    assert (outside / "alice.vcf").exists()  # the link went, the person's file stays


def test_names_that_are_no_file_are_set_aside_without_hanging(vdir: Path) -> None:
    (vdir / "gone.vcf").symlink_to(vdir / "nowhere")
    (vdir / "loop.vcf").symlink_to(vdir / "loop.vcf")
    (vdir / "dir.vcf").mkdir()
    os.mkfifo(vdir / "fifo.vcf")
    (vdir / "ok.vcf").write_text(ALICE, newline="")
    store = VdirStore(vdir)
    assert set(store.scan()) == {"alice-0001"}
    reasons = {Path(b.path).name: b.reason for b in store.bad_files}
    assert reasons == {
        "gone.vcf": "a link to nothing (its target is missing, or links loop)",
        "loop.vcf": "a link to nothing (its target is missing, or links loop)",
        "dir.vcf": "a directory",
        "fifo.vcf": "not a regular file",
    }


def test_vcard_21_is_read_and_rewritten_as_30_only_when_written(vdir: Path) -> None:
    path = vdir / "hans.vcf"
    path.write_bytes(HANS_21)
    age(path)
    store = VdirStore(vdir)
    assert store.scan()["hans"].projection == Projection("Hans Müller", "+49170123")
    store.update_projection("hans", Projection("Hans Müller", "+49170123"))  # nothing to write
    assert path.read_bytes() == HANS_21
    store.update_projection("hans", Projection("Hans Müller", "+49170999"))
    text = path.read_bytes().decode("utf-8")
    assert "VERSION:3.0" in text
    assert "TEL;TYPE=CELL,PREF:+49170999" in text
    assert "TEL;TYPE=HOME:030 1234" in text
    assert "NOTE:Zeile eins\\nZeile zwei\\, mit Komma und langem Text" in text.replace("\r\n ", "")
    assert "ADR;TYPE=HOME:;;Straße 1;Berlin;;10115;DE" in text
    assert "PHOTO;TYPE=JPEG;ENCODING=b:/9j/4AAQSkZJRgABAQAAAQABAAA=" in text
    assert "X-PALM-CATEGORY:Familie" in text
    assert "N:Müller;Hans" in text
    assert VdirStore(vdir).scan()["hans"].projection == Projection("Hans Müller", "+49170999")


def test_a_set_aside_file_is_logged_once_while_it_stays_as_it_is(vdir: Path) -> None:
    path = vdir / "bad.vcf"
    path.write_bytes(b"not a card\r\n")
    age(path)
    store = VdirStore(vdir)
    with structlog.testing.capture_logs() as logs:
        store.scan()
        store.scan()
        path.write_bytes(b"BEGIN:VCARD\r\nVERSION:1.0\r\nFN:x\r\nEND:VCARD\r\n")
        age(path, seconds=30)
        store.scan()
        store.scan()
    aside = [e for e in logs if e["event"] == "contact file set aside"]
    assert [e["reason"][:20] for e in aside] == [
        "not a readable vCard",
        "VERSION 1.0 is not 2",
    ]
