"""The per-card SQLite state: pending/last pairs, transactional updates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pda.cardstate import CardState, CardStateDB, CardStateError
from syncproto import Entry, Synced

A, B, C = b"A" * 8, b"B" * 8, b"C" * 8
M1 = {
    1: Synced("u1", Entry("Ann", "1"), Entry("Ann Marie", "1")),
    2: Synced("u2", Entry("Nameless", None), Entry("Nameless", None)),
}
M2 = {3: Synced("u3", Entry("Cy", "3"), Entry("Cy", "3"))}


@pytest.fixture
def db(tmp_path: Path):
    d = CardStateDB(tmp_path / "s.sqlite")
    yield d
    d.close()


def test_unknown_card_has_empty_state(db: CardStateDB) -> None:
    assert db.load("89", 0x6F3A) == CardState()


def test_prepare_then_promote_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = CardStateDB(path)
    db.prepare("89", 0x6F3A, "store1", A, M1)
    st = db.load("89", 0x6F3A)
    assert (st.store_id, st.last, st.pending) == ("store1", None, A)
    assert st.pending_synced == M1
    assert st.synced == {}
    db.promote("89", 0x6F3A, A)
    db.close()
    db = CardStateDB(path)  # as after a restart
    st = db.load("89", 0x6F3A)
    assert (st.last, st.pending, st.synced, st.pending_synced) == (A, None, M1, {})
    db.prepare("89", 0x6F3A, "store1", B, M2)
    st = db.load("89", 0x6F3A)
    assert (st.last, st.pending, st.synced, st.pending_synced) == (A, B, M1, M2)
    assert db.load("89", 0x6F3B) == CardState()  # another database of the same card
    db.close()


def test_promoting_another_anchor_is_refused_and_changes_nothing(db: CardStateDB) -> None:
    db.prepare("89", 0x6F3A, "store1", A, M1)
    before = db.load("89", 0x6F3A)
    with pytest.raises(CardStateError, match="not the pending one"):
        db.promote("89", 0x6F3A, C)
    with pytest.raises(CardStateError, match="not the pending one"):
        db.promote("90", 0x6F3A, A)
    assert db.load("89", 0x6F3A) == before


def test_a_new_store_drops_the_old_stores_last_pair(db: CardStateDB) -> None:
    db.prepare("89", 0x6F3A, "store1", A, M1)
    db.promote("89", 0x6F3A, A)
    db.prepare("89", 0x6F3A, "store2", B, M2)
    st = db.load("89", 0x6F3A)
    assert (st.store_id, st.last, st.synced, st.pending, st.pending_synced) == (
        "store2",
        None,
        {},
        B,
        M2,
    )


def test_a_failing_prepare_leaves_the_previous_state(db: CardStateDB) -> None:
    db.prepare("89", 0x6F3A, "store1", A, M1)
    db.promote("89", 0x6F3A, A)
    before = db.load("89", 0x6F3A)
    dup = {
        1: Synced("same", Entry("a", "1"), Entry("a", "1")),
        2: Synced("same", Entry("b", "2"), Entry("b", "2")),
    }  # a uid twice: UNIQUE fails
    with pytest.raises(CardStateError, match="update failed"):
        db.prepare("89", 0x6F3A, "store1", B, dup)
    assert db.load("89", 0x6F3A) == before


def test_forget_drops_everything_for_one_card(db: CardStateDB) -> None:
    db.prepare("89", 0x6F3A, "s", A, M1)
    db.prepare("90", 0x6F3A, "s", B, M2)
    db.forget("89", 0x6F3A)
    assert db.load("89", 0x6F3A) == CardState()
    assert db.load("90", 0x6F3A).pending == B


def test_unopenable_file_is_a_card_state_error(tmp_path: Path) -> None:
    with pytest.raises(CardStateError, match="cannot open card state"):
        CardStateDB(tmp_path / "missing-dir" / "s.sqlite")
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CardStateError, match="cannot open card state"):
        CardStateDB(bad)
    assert issubclass(CardStateError, Exception)
    assert not issubclass(CardStateError, sqlite3.Error)
