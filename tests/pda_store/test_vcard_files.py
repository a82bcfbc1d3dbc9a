"""Real-world vCard 3.0/4.0 files: projections read right, updates touch only FN/N/preferred TEL."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import vobject

from pda.store import Projection
from pda.vcard import new_card, parse_card
from pda.vdir import VdirStore

from .conftest import DATA

FILES = {
    "v3_greek.vcf": (
        "greek-nikos-0001",
        Projection("Νίκος Παπαδόπουλος", "+306941234567"),  # TYPE=pref wins over the first TEL
    ),
    "v4_cyrillic.vcf": (
        "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1",
        Projection("Иван Петров", "+79165550011"),  # lowest PREF wins
    ),
    "v3_cjk.vcf": ("cjk-yamada", Projection("山田太郎", "0312345678")),  # no preference: first
    "v3_no_uid.vcf": ("v3_no_uid", Projection("Hand Written", "+442079460000")),
}


def properties(text: str) -> list[tuple[Any, ...]]:
    """Every property as vobject reads it: (group, name, params, value), in file order per name."""
    card = vobject.readOne(text)
    return sorted(
        (
            c.group or "",
            c.name,
            tuple(sorted((k, tuple(v)) for k, v in c.params.items())),
            repr(c.value),
        )
        for c in card.getChildren()
    )


def logical_lines(text: str) -> list[str]:
    return re.split(r"\r?\n(?![ \t])", text)


@pytest.mark.parametrize(("name", "expected"), FILES.items())
def test_reads_projection_and_uid(
    copy_data: Callable[[str], Path], name: str, expected: tuple[str, Projection]
) -> None:
    copy_data(name)
    store = VdirStore(copy_data(name).parent)
    uid, projection = expected
    contacts = store.scan()
    assert list(contacts) == [uid]
    assert contacts[uid].projection == projection
    assert store.bad_files == []


@pytest.mark.parametrize("name", list(FILES))
def test_update_preserves_every_other_property(copy_data: Callable[[str], Path], name: str) -> None:
    path = copy_data(name)
    before = path.read_bytes().decode()
    store = VdirStore(path.parent)
    uid, _old = FILES[name]
    store.update_projection(uid, Projection("Renamed Person", "+15550000"))
    after = path.read_bytes().decode()
    info = store.get(uid)
    assert info is not None
    assert info.projection == Projection("Renamed Person", "+15550000")
    # Raw lines: only FN, N (when derived from FN) and the preferred TEL differ.
    removed = set(logical_lines(before)) - set(logical_lines(after))
    added = set(logical_lines(after)) - set(logical_lines(before))
    assert {line.split(":")[0].split(";")[0] for line in removed} <= {"FN", "N", "TEL"}
    assert len(removed) <= 3
    assert {line.split(":")[0].split(";")[0] for line in added} <= {"FN", "N", "TEL"}
    # Parsed: everything but FN, N and exactly one TEL is equal.
    kept_before = [p for p in properties(before) if p[1] not in ("FN", "N", "TEL")]
    kept_after = [p for p in properties(after) if p[1] not in ("FN", "N", "TEL")]
    assert kept_before == kept_after
    tels_before = [p for p in properties(before) if p[1] == "TEL"]
    tels_after = [p for p in properties(after) if p[1] == "TEL"]
    assert len(tels_before) == len(tels_after)
    assert len(set(tels_before) ^ set(tels_after)) == 2  # one value replaced, params kept
    assert parse_card(after).version == parse_card(before).version


def test_real_n_kept_and_derived_n_follows(copy_data: Callable[[str], Path]) -> None:
    greek = copy_data("v3_greek.vcf")
    cyrillic = copy_data("v4_cyrillic.vcf")
    store = VdirStore(greek.parent)
    store.update_projection("greek-nikos-0001", Projection("Nick Papadopoulos", "1"))
    assert (
        "N:Παπαδόπουλος;Νίκος;;Dr.;" in greek.read_bytes().decode()
    )  # a real N (with a prefix) stays
    store.update_projection(
        "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1", Projection("Ivan Petrov", "1")
    )
    assert (
        "\r\nN:Petrov;Ivan;;;\r\n" in cyrillic.read_bytes().decode()
    )  # it equalled "FN split": follows


def test_missing_n_is_added_missing_tel_added_as_cell(vdir: Path) -> None:
    path = vdir / "bare.vcf"
    path.write_bytes(b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bare\r\nFN:Bare\r\nEND:VCARD\r\n")
    store = VdirStore(vdir)
    store.update_projection("bare", Projection("Bare Bones", "+4930"))
    text = path.read_bytes().decode()
    assert "\r\nN:Bones;Bare;;;\r\n" in text
    assert "\r\nTEL;TYPE=CELL:+4930\r\n" in text
    assert parse_card(text).projection == Projection("Bare Bones", "+4930")


@pytest.mark.parametrize("name", list(FILES))
def test_same_projection_does_not_touch_the_file(
    copy_data: Callable[[str], Path], name: str
) -> None:
    path = copy_data(name)
    before, stat = path.read_bytes(), path.stat()
    store = VdirStore(path.parent)
    uid, projection = FILES[name]
    store.update_projection(uid, projection)
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert path.stat().st_ino == stat.st_ino


def test_update_without_uid_does_not_add_one(copy_data: Callable[[str], Path]) -> None:
    path = copy_data("v3_no_uid.vcf")
    store = VdirStore(path.parent)
    store.update_projection("v3_no_uid", Projection("Hand Edited", "+44"))
    text = path.read_bytes().decode()
    assert "UID" not in text
    assert "\nFN:Hand Edited\n" in text  # the file's own LF line ends are kept
    assert store.scan()["v3_no_uid"].projection == Projection("Hand Edited", "+44")


def test_remove_number_keeps_the_other_tels(copy_data: Callable[[str], Path]) -> None:
    path = copy_data("v4_cyrillic.vcf")
    store = VdirStore(path.parent)
    uid = FILES["v4_cyrillic.vcf"][0]
    store.update_projection(uid, Projection("Иван Петров", None))
    text = path.read_bytes().decode()
    assert "+7-916-555-00-11" not in text
    assert "tel:+7-495-123-45-67" in text
    assert "tel:+7-812-000-11-22" in text
    info = store.get(uid)
    assert info is not None
    assert info.projection.number == "+74951234567"  # PREF=2 is now the lowest


@pytest.mark.parametrize(
    ("tels", "expected"),
    [
        (["TEL:111", "TEL;TYPE=pref:222"], "222"),
        (["TEL;PREF:111", "TEL:222"], "111"),  # 2.1-style bare PREF parameter
        (["TEL;PREF=3:111", "TEL;PREF=2:222", "TEL;PREF=2:333"], "222"),
        (["TEL;TYPE=pref:sip:a@example.org", "TEL:444"], "444"),  # not a number: skipped
        (["TEL;VALUE=uri:tel:*31%23"], "*31#"),
        (["TEL:ext"], None),
    ],
)
def test_preferred_tel_rules(tels: list[str], expected: str | None) -> None:
    text = "\r\n".join(["BEGIN:VCARD", "VERSION:3.0", "FN:X", *tels, "END:VCARD", ""])
    assert parse_card(text).projection.number == expected


def test_created_cards_suit_vdir_tools(vdir: Path) -> None:
    name = "Ελένη 山田 Иванова " * 4 + "the Long"
    for version in ("3.0", "4.0"):
        store = VdirStore(vdir, version=version)
        uid = store.create(Projection(name, "+30 69 1234#"))
        data = next(vdir.glob(f"{uid}.vcf")).read_bytes()
        assert data.endswith(b"\r\n")
        assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
        assert all(len(line) <= 75 for line in data.split(b"\r\n"))  # folded by octets
        card = vobject.readOne(data.decode())
        assert card.uid.value == uid
        assert card.version.value == version
        assert card.fn.value == name
        assert parse_card(data.decode()).projection == Projection(name, "+30691234#")


def test_new_card_refuses_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        new_card("u", Projection("A", "1"), version="2.1")


@pytest.mark.parametrize("name", list(FILES))
def test_test_data_is_what_the_tests_claim(name: str) -> None:
    text = (DATA / name).read_bytes().decode()
    assert parse_card(text).projection == FILES[name][1]
