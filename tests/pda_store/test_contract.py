"""The ContactStore contract, run against MemoryStore and VdirStore alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from pda.store import (
    ContactExistsError,
    ContactNotFoundError,
    ContactStore,
    InvalidProjectionError,
    MemoryStore,
    Projection,
    normalize_number,
)
from pda.vdir import VdirStore


class TestContract:
    def test_is_a_contact_store(self, store: ContactStore) -> None:
        assert isinstance(store, ContactStore)
        assert isinstance(store.store_id, str)
        assert len(store.store_id) >= 16

    def test_empty_store_scans_empty(self, store: ContactStore) -> None:
        assert store.scan() == {}
        assert store.get("nobody") is None

    def test_create_then_get_and_scan(self, store: ContactStore) -> None:
        uid = store.create(Projection("Anna Bell", "+49 (170) 123-45.67"))
        info = store.get(uid)
        assert info is not None
        assert info.uid == uid
        assert info.projection == Projection("Anna Bell", "+491701234567")
        assert store.scan() == {uid: info}

    def test_create_with_uid_and_without_number(self, store: ContactStore) -> None:
        uid = store.create(Projection("No Number", None), uid="fixed-uid-1")
        assert uid == "fixed-uid-1"
        info = store.get(uid)
        assert info is not None
        assert info.projection == Projection("No Number", None)

    def test_generated_uids_differ(self, store: ContactStore) -> None:
        uids = {store.create(Projection(f"P{i}", f"{i}")) for i in range(5)}
        assert len(uids) == 5
        assert set(store.scan()) == uids

    def test_duplicate_uid_refused_and_nothing_changes(self, store: ContactStore) -> None:
        store.create(Projection("First", "1"), uid="dup")
        before = store.scan()
        with pytest.raises(ContactExistsError):
            store.create(Projection("Second", "2"), uid="dup")
        assert store.scan() == before

    @pytest.mark.parametrize(
        "projection",
        [
            Projection("", "1"),
            Projection("   ", "1"),
            Projection("Bad\nName", "1"),
            Projection("Vanity", "1-800-FLOWERS"),
            Projection("Plus inside", "12+34"),
            Projection("Only separators", " - () "),
        ],
    )
    def test_bad_projection_refused_and_nothing_changes(
        self, store: ContactStore, projection: Projection
    ) -> None:
        uid = store.create(Projection("Keep", "1"))
        before = store.scan()
        with pytest.raises(InvalidProjectionError):
            store.create(projection)
        with pytest.raises(InvalidProjectionError):
            store.update_projection(uid, projection)
        assert store.scan() == before

    @pytest.mark.parametrize("uid", ["", " padded ", "line\nbreak"])
    def test_bad_uid_refused(self, store: ContactStore, uid: str) -> None:
        with pytest.raises(InvalidProjectionError):
            store.create(Projection("X", "1"), uid=uid)
        assert store.scan() == {}

    @pytest.mark.parametrize(
        "uid", ["a/b c", "ünïcödé-名前", ".hidden", "x" * 300, "urn:uuid:1234", "50%"]
    )
    def test_odd_uids_round_trip(self, store: ContactStore, uid: str) -> None:
        store.create(Projection("Odd", "12"), uid=uid)
        assert set(store.scan()) == {uid}
        store.update_projection(uid, Projection("Odder", "13"))
        info = store.get(uid)
        assert info is not None
        assert info.projection == Projection("Odder", "13")
        store.delete(uid)
        assert store.scan() == {}

    def test_update_changes_projection_and_etag(self, store: ContactStore) -> None:
        uid = store.create(Projection("Old Name", "111"))
        old = store.get(uid)
        store.update_projection(uid, Projection("New Name", "+222"))
        new = store.get(uid)
        assert old is not None
        assert new is not None
        assert new.projection == Projection("New Name", "+222")
        assert new.etag != old.etag
        assert store.scan()[uid] == new

    def test_same_projection_keeps_etag(self, store: ContactStore) -> None:
        uid = store.create(Projection("Same", "+49 170 1"))
        old = store.get(uid)
        store.update_projection(uid, Projection("Same", "+491701"))
        assert store.get(uid) == old

    def test_number_added_and_removed(self, store: ContactStore) -> None:
        uid = store.create(Projection("Grows", None))
        store.update_projection(uid, Projection("Grows", "555"))
        assert store.get(uid) == store.scan()[uid]
        info = store.get(uid)
        assert info is not None
        assert info.projection.number == "555"
        store.update_projection(uid, Projection("Grows", None))
        info = store.get(uid)
        assert info is not None
        assert info.projection == Projection("Grows", None)

    def test_update_unknown_uid(self, store: ContactStore) -> None:
        with pytest.raises(ContactNotFoundError):
            store.update_projection("nobody", Projection("X", "1"))
        assert store.scan() == {}

    def test_delete(self, store: ContactStore) -> None:
        keep = store.create(Projection("Keep", "1"))
        gone = store.create(Projection("Gone", "2"))
        store.delete(gone)
        assert store.get(gone) is None
        assert set(store.scan()) == {keep}
        with pytest.raises(ContactNotFoundError):
            store.delete(gone)

    def test_store_id_is_stable(self, store: ContactStore) -> None:
        first = store.store_id
        store.create(Projection("A", "1"))
        store.scan()
        assert store.store_id == first


def test_memory_store_ids_differ() -> None:
    assert MemoryStore().store_id != MemoryStore().store_id


def test_memory_store_keeps_other_numbers_and_extra() -> None:
    store = MemoryStore()
    uid = store.create(
        Projection("A", "1"), other_numbers=("2", "3"), extra=(("EMAIL", "a@example.org"),)
    )
    store.update_projection(uid, Projection("B", "9"))
    assert store.numbers(uid) == ("9", "2", "3")
    assert store.extra(uid) == (("EMAIL", "a@example.org"),)
    store.update_projection(uid, Projection("B", None))  # drops the preferred number only
    info = store.get(uid)
    assert info is not None
    assert info.projection == Projection("B", "2")


def test_vdir_store_id_persists_and_changes_when_recreated(tmp_path: Path) -> None:
    path = tmp_path / "contacts"
    first = VdirStore(path)
    uid = first.create(Projection("A", "1"))
    assert VdirStore(path).store_id == first.store_id
    assert VdirStore(tmp_path / "other").store_id != first.store_id
    # Wiped and re-created under a running store: the next scan shows a new id and no contacts.
    for p in path.iterdir():
        p.unlink()
    path.rmdir()
    path.mkdir()
    assert first.scan() == {}
    assert first.store_id != VdirStore(tmp_path / "other").store_id
    assert (path / ".simsync-store-id").read_text().strip() == first.store_id
    assert first.get(uid) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+49 (170) 123-45.67", "+491701234567"),
        ("*31#", "*31#"),
        ("0301234P1W2", "0301234,1,2"),  # the card has one pause (BCD C), no wait
        ("0301234;9,1", "0301234,9,1"),
        ("*#06#?!", "*#06#?!"),
        ("tel:+1-555", "+1555"),
        ("", ""),
    ],
)
def test_normalize_number(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


@pytest.mark.parametrize("raw", ["1-800-FLOWERS", "12+3", "sip:a@b", "+1 555 ext 2"])
def test_normalize_number_refuses(raw: str) -> None:
    with pytest.raises(InvalidProjectionError):
        normalize_number(raw)
