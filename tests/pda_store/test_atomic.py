"""Atomic writes: no temp files left, a failed write leaves the old file, races are refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pda.store import ContactExistsError, ContactNotFoundError, Projection, StoreIOError
from pda.vcard import apply_projection
from pda.vdir import ContactChangedError, VdirStore, uid_filename


def leftovers(vdir: Path) -> list[str]:
    return [p.name for p in vdir.iterdir() if p.name.endswith(".tmp")]


def test_no_temp_files_after_create_update_delete(tmp_path: Path) -> None:
    vdir = tmp_path / "contacts"
    store = VdirStore(vdir)
    uids = [store.create(Projection(f"P{i}", f"{i}")) for i in range(5)]
    for uid in uids[:3]:
        store.update_projection(uid, Projection("Changed", "99"))
    store.delete(uids[4])
    assert leftovers(vdir) == []
    assert sorted(p.name for p in vdir.iterdir() if p.suffix == ".vcf") == sorted(
        uid_filename(u) for u in uids[:4]
    )


def test_failed_replace_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vdir = tmp_path / "contacts"
    store = VdirStore(vdir)
    uid = store.create(Projection("Original", "1"))
    path = vdir / uid_filename(uid)
    before = path.read_bytes()

    def crash(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pda.vdir.os.replace", crash)
    with pytest.raises(StoreIOError, match="No space left"):
        store.update_projection(uid, Projection("Lost", "2"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(vdir) == []
    info = store.get(uid)
    assert info is not None
    assert info.projection == Projection("Original", "1")
    store.update_projection(uid, Projection("Later", "3"))  # the store still works
    assert VdirStore(vdir).scan()[uid].projection == Projection("Later", "3")


def test_failed_create_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vdir = tmp_path / "contacts"
    store = VdirStore(vdir)

    def crash(src: Any, dst: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("pda.vdir.os.link", crash)
    with pytest.raises(StoreIOError):
        store.create(Projection("Never", "1"), uid="never")
    monkeypatch.undo()
    assert leftovers(vdir) == []
    assert not (vdir / "never.vcf").exists()
    assert store.scan() == {}


def test_create_does_not_clobber_a_file_of_the_same_name(tmp_path: Path) -> None:
    vdir = tmp_path / "contacts"
    store = VdirStore(vdir)
    store.scan()
    (vdir / "taken.vcf").write_bytes(b"not even a vcard")  # appears after the scan
    with pytest.raises(ContactExistsError):
        store.create(Projection("X", "1"), uid="taken")
    assert (vdir / "taken.vcf").read_bytes() == b"not even a vcard"
    assert leftovers(vdir) == []


def test_file_changed_during_update_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vdir = tmp_path / "contacts"
    store = VdirStore(vdir)
    uid = store.create(Projection("Original", "1"))
    path = vdir / uid_filename(uid)
    real_apply = apply_projection
    theirs = path.read_bytes().replace(b"FN:Original", b"FN:Their Edit")

    def edit_meanwhile(text: str, projection: Projection) -> str:
        tmp = path.with_suffix(".theirs")
        tmp.write_bytes(theirs)
        os.replace(tmp, path)  # another program saves its version
        return real_apply(text, projection)

    monkeypatch.setattr("pda.vdir.apply_projection", edit_meanwhile)
    with pytest.raises(ContactChangedError):
        store.update_projection(uid, Projection("Ours", "2"))
    assert path.read_bytes() == theirs
    assert leftovers(vdir) == []


def test_file_deleted_during_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vdir = tmp_path / "contacts"
    store = VdirStore(vdir)
    uid = store.create(Projection("Original", "1"))
    path = vdir / uid_filename(uid)
    real_apply = apply_projection

    def delete_meanwhile(text: str, projection: Projection) -> str:
        path.unlink()
        return real_apply(text, projection)

    monkeypatch.setattr("pda.vdir.apply_projection", delete_meanwhile)
    with pytest.raises(ContactNotFoundError):
        store.update_projection(uid, Projection("Ours", "2"))
    assert not path.exists()
    assert leftovers(vdir) == []


def test_file_mode_is_kept(tmp_path: Path) -> None:
    vdir = tmp_path / "contacts"
    store = VdirStore(vdir)
    uid = store.create(Projection("Private", "1"))
    path = vdir / uid_filename(uid)
    path.chmod(0o600)
    store.update_projection(uid, Projection("Still Private", "1"))
    assert path.stat().st_mode & 0o777 == 0o600
