"""The PDA engine with a MemoryStore and a real SQLite CardStateDB, driven by a phone simulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import cbor2
import pytest

from pda.cardstate import CardStateDB
from pda.engine import SyncEngine, prefix_fits
from pda.store import ContactStore, MemoryStore, Projection, StoreIOError
from pda.vdir import VdirStore
from syncproto import (
    Abort,
    Alert,
    CardData,
    CardRecord,
    Mode,
    PhoneSession,
    Policy,
    RequestedMode,
    decode,
)

from .phone import ICCID, Crash, FakeCard, pda_view, sync


@pytest.fixture
def state(tmp_path: Path):
    db = CardStateDB(tmp_path / "cards.sqlite")
    yield db
    db.close()


def engine(store: MemoryStore, state: CardStateDB, **kw) -> SyncEngine:
    return SyncEngine(store, state, **kw)


def seeded(store: ContactStore | None = None) -> tuple[FakeCard, MemoryStore]:
    card = FakeCard(records=30, alpha_len=8)
    card.add("Ann", "+491111")
    card.add("Bob", "2222")
    card.add("Alexande", "3333")  # the card's shortened form of the PDA's contact below
    if store is None:
        store = MemoryStore()
        store.create(Projection("Alexander Macdonald", "3333"), extra=(("EMAIL", "a@x.org"),))
    else:
        store.create(Projection("Alexander Macdonald", "3333"))
    store.create(Projection("Carol", "4444"))
    store.create(Projection("No Number", None))
    return card, store  # type: ignore[return-value]  # a VdirStore quacks the same


def assert_equal(card: FakeCard, store: MemoryStore) -> None:
    assert card.view() == pda_view(store, card.alpha_len)


def test_first_sync_is_slow_and_matches_by_content_then_fast(state: CardStateDB) -> None:
    card, store = seeded()
    e = engine(store, state)
    done = sync(card, e)
    assert done is not None
    assert e.outcome is not None
    assert e.outcome.mode is Mode.SLOW
    assert_equal(card, store)
    # Alexander matched the shortened "Alexande" record: neither side got a copy.
    assert len(card.records) == 4  # Ann, Bob, Alexande, Carol
    assert len(store.scan()) == 5  # + Ann, Bob; "No Number" stays on the PDA only
    assert (done.added, done.modified, done.deleted, done.conflicts, done.skipped) == (
        2,
        0,
        0,
        0,
        1,
    )
    # The full name and the extra field were not touched by the shortened record.
    alex = next(c for c in store.scan().values() if c.projection.number == "3333")
    assert alex.projection.name == "Alexander Macdonald"
    assert store.extra(alex.uid) == (("EMAIL", "a@x.org"),)

    e2 = engine(store, state)
    done2 = sync(card, e2)
    assert e2.outcome is not None
    assert e2.outcome.mode is Mode.FAST
    assert done2 is not None
    assert (done2.added, done2.modified, done2.deleted) == (0, 0, 0)
    assert_equal(card, store)


def edit_both_sides(card: FakeCard, store: MemoryStore) -> None:
    """A person at work on both sides, including a conflict and a deletion each."""
    uids = {c.projection.name: u for u, c in store.scan().items()}
    recs = {v[0]: r for r, v in card.records.items()}
    card.records[recs["Ann"]] = ("Ann B", "+491111")  # conflict: the PDA edits Ann too
    store.update_projection(uids["Ann"], Projection("Ann", "+499999"))
    card.add("Dan", "5555")  # before Bob goes, or it would reuse his slot (a modify)
    del card.records[recs["Bob"]]  # deletion on the card
    store.delete(uids["Carol"])  # deletion on the PDA
    store.create(Projection("Eve Everywhere", "6666"))
    store.update_projection(uids["Alexander Macdonald"], Projection("Alexander Macdonald", "3334"))


@pytest.fixture
def synced_pair(state: CardStateDB) -> tuple[FakeCard, MemoryStore]:
    card, store = seeded()
    assert sync(card, engine(store, state)) is not None
    return card, store


def test_fast_sync_applies_both_sides_edits_and_keeps_both_conflict_versions(
    state: CardStateDB, synced_pair: tuple[FakeCard, MemoryStore]
) -> None:
    card, store = synced_pair
    edit_both_sides(card, store)
    e = engine(store, state)
    done = sync(card, e)
    assert done is not None
    assert e.outcome is not None
    assert e.outcome.mode is Mode.FAST
    assert_equal(card, store)
    names = sorted(c.projection.name for c in store.scan().values())
    assert names == ["Alexander Macdonald", "Ann", "Ann B", "Dan", "Eve Everywhere", "No Number"]
    assert sorted(card.records.values()) == [
        ("Alexande", "3334"),
        ("Ann", "+499999"),
        ("Ann B", "+491111"),
        ("Dan", "5555"),
        ("Eve Ever", "6666"),
    ]
    assert done.conflicts == 1
    assert done.deleted == 1  # Bob


@pytest.mark.parametrize("kind", ["memory", "vdir"])
@pytest.mark.parametrize("crash", list(Crash))
def test_crash_anywhere_then_resync_is_fast_equal_and_loses_or_copies_nothing(
    tmp_path: Path, crash: Crash, kind: str
) -> None:
    # The same history twice: once without a crash (the reference), once cut at `crash`.
    results = []
    for name, cut in (("ref", None), ("cut", crash)):
        db = CardStateDB(tmp_path / f"{name}.sqlite")
        card, store = seeded(VdirStore(tmp_path / name) if kind == "vdir" else None)
        assert sync(card, engine(store, db)) is not None
        edit_both_sides(card, store)
        if cut is not None:
            assert sync(card, engine(store, db), crash=cut) is None
        e = engine(store, db)
        assert sync(card, e) is not None
        assert e.outcome is not None
        assert e.outcome.mode is Mode.FAST  # an interrupted sync never costs a slow one
        assert_equal(card, store)
        # And the state is stable: one more sync has nothing to do.
        e2 = engine(store, db)
        again = sync(card, e2)
        assert again is not None
        assert (again.added, again.modified, again.deleted, again.conflicts) == (0, 0, 0, 0)
        assert card.changes() == []
        results.append((card.view(), Counter(c.projection for c in store.scan().values())))
        db.close()
    assert results[0] == results[1]


def test_crash_after_storesync_promotes_the_pending_anchor(
    state: CardStateDB, synced_pair: tuple[FakeCard, MemoryStore]
) -> None:
    card, store = synced_pair
    edit_both_sides(card, store)
    assert sync(card, engine(store, state), crash=Crash.STORESYNC) is None
    before = state.load(ICCID, 0x6F3A)
    assert before.pending == card.last
    assert before.last != card.last
    e = engine(store, state)
    done = sync(card, e)
    assert done is not None
    assert e.outcome is not None
    assert e.outcome.mode is Mode.FAST
    assert (done.added, done.modified, done.deleted, done.conflicts) == (0, 0, 0, 0)
    after = state.load(ICCID, 0x6F3A)
    assert after.last == card.last
    assert after.pending is None


def test_wiped_store_forces_slow_and_deletes_nothing(
    state: CardStateDB, synced_pair: tuple[FakeCard, MemoryStore]
) -> None:
    card, _old = synced_pair
    fresh = MemoryStore()  # the vdir was wiped: a new store id, only one contact back
    fresh.create(Projection("Ann", "+491111"))
    records_before = dict(card.records)
    e = engine(fresh, state)
    done = sync(card, e)
    assert done is not None
    assert e.outcome is not None
    assert e.outcome.mode is Mode.SLOW
    assert done.deleted == 0
    assert card.records == records_before  # nothing deleted, nothing copied to the card
    assert_equal(card, fresh)
    assert state.load(ICCID, 0x6F3A).store_id == fresh.store_id


@pytest.mark.parametrize(
    ("requested", "card_wins"),
    [(RequestedMode.REFRESH_FROM_CARD, True), (RequestedMode.REFRESH_FROM_PDA, False)],
)
def test_refresh_modes_let_one_side_win_and_delete_nothing(
    state: CardStateDB,
    synced_pair: tuple[FakeCard, MemoryStore],
    requested: RequestedMode,
    card_wins: bool,
) -> None:
    card, store = synced_pair
    edit_both_sides(card, store)
    e = engine(store, state)
    done = sync(card, e, requested=requested)
    assert done is not None
    assert e.outcome is not None
    assert e.outcome.mode.value == requested.value
    assert_equal(card, store)
    ann = "Ann B" if card_wins else "Ann"
    assert any(c.projection.name == ann for c in store.scan().values())
    assert ("Bob", "2222") in card.records.values() or any(
        c.projection.name == "Bob" for c in store.scan().values()
    )
    assert done.deleted == 0


def test_card_full_and_no_number_are_skipped_and_stay_on_the_pda(state: CardStateDB) -> None:
    card = FakeCard(records=2, alpha_len=8)
    card.add("Ann", "1")
    store = MemoryStore()
    for name in ("Bea", "Cid", "Dee"):
        store.create(Projection(name, "2"))
    store.create(Projection("Nobody", None))
    done = sync(card, engine(store, state))
    assert done is not None
    assert done.skipped == 3  # two did not fit, one has no number
    assert len(card.records) == 2
    assert len(store.scan()) == 5  # nothing dropped on the PDA


@pytest.mark.parametrize("by_phone", [False, True])
def test_policies_decide_a_conflict(tmp_path: Path, by_phone: bool) -> None:
    for policy, want in ((Policy.CARD_WINS, "Ann B"), (Policy.PDA_WINS, "Ann")):
        db = CardStateDB(tmp_path / f"{policy}.sqlite")
        card, store = seeded()
        assert sync(card, engine(store, db)) is not None
        edit_both_sides(card, store)
        if by_phone:  # the phone's configured policy overrides the PDA's default
            done = sync(card, engine(store, db, policy=Policy.DUPLICATE), policy=policy)
        else:
            done = sync(card, engine(store, db, policy=policy))
        assert done is not None
        assert done.conflicts == 1
        assert_equal(card, store)
        anns = [c.projection.name for c in store.scan().values() if c.projection.name[:3] == "Ann"]
        assert anns == [want]
        db.close()


def test_garbage_from_the_phone_gets_an_abort_and_changes_nothing(
    state: CardStateDB, synced_pair: tuple[FakeCard, MemoryStore]
) -> None:
    _card, store = synced_pair
    before_state, before_store = state.load(ICCID, 0x6F3A), store.scan()
    e = engine(store, state)
    frames = e.handle(cbor2.dumps([6]))  # Committed before anything
    assert len(frames) == 1
    abort = decode(frames[0])
    assert abort.code == "protocol_error"  # type: ignore[union-attr]
    assert "may not send Committed" in abort.message  # type: ignore[union-attr]
    assert e.finished
    assert e.error is not None
    assert state.load(ICCID, 0x6F3A) == before_state
    assert store.scan() == before_store


def test_prefix_fits_follows_the_alpha_field() -> None:
    assert prefix_fits("Alexander Macdonald", 8) == "Alexande"
    assert prefix_fits("a{b", 2) == "a"  # '{' is escaped: two septets
    assert prefix_fits("Δx", 2) == "Δx"
    assert prefix_fits("Jürgen Ωmega", 5) == "Jürge"
    assert prefix_fits("Пётр", 7) == "Пёт"  # UCS2 80: tag + 2 bytes each


class FullDiskStore(MemoryStore):
    """A store whose every write fails, as on a full disk."""

    def create(self, projection: Projection, uid: str | None = None, **kw: Any) -> str:
        raise StoreIOError("no space left on device")


def test_store_refusal_aborts_the_session_and_commits_nothing(state: CardStateDB) -> None:
    card = FakeCard(records=5, alpha_len=8)
    card.add("Ann", "12345")
    store = FullDiskStore()
    e = engine(store, state)
    phone = PhoneSession()
    last, proposed = card.newsync()
    phone.receive(
        e.handle(
            phone.send(Alert(ICCID, 0x6F3A, last, proposed, RequestedMode.AUTO, 5, 8, True, 4))
        )[0]
    )
    frames = e.handle(phone.send(CardData((CardRecord(1, "Ann", "12345"),), complete=True)))
    abort = phone.receive(frames[0])
    assert isinstance(abort, Abort)
    assert abort.code == "internal"
    assert "no space left" in abort.message
    assert e.finished
    assert store.scan() == {}
    assert state.load(ICCID, 0x6F3A).pending is None


def test_frames_after_the_end_get_no_answer_and_change_nothing(
    state: CardStateDB, synced_pair: tuple[FakeCard, MemoryStore]
) -> None:
    card, store = synced_pair
    e = engine(store, state)
    assert sync(card, e) is not None
    before = state.load(ICCID, 0x6F3A)
    assert e.handle(cbor2.dumps([6])) == []  # a stray Committed after Done
    assert e.handle(b"\xff") == []
    assert state.load(ICCID, 0x6F3A) == before
    # After a protocol error the engine answers one Abort, then nothing.
    e2 = engine(store, state)
    assert len(e2.handle(b"\xff")) == 1
    assert e2.handle(b"\xff") == []


def test_phone_abort_ends_the_session_without_commit(
    state: CardStateDB, synced_pair: tuple[FakeCard, MemoryStore]
) -> None:
    card, store = synced_pair
    before = state.load(ICCID, 0x6F3A)
    e = engine(store, state)
    phone = PhoneSession()
    last, proposed = card.newsync()
    phone.receive(
        e.handle(
            phone.send(Alert(ICCID, 0x6F3A, last, proposed, RequestedMode.AUTO, 30, 8, True, 26))
        )[0]
    )
    assert e.handle(phone.send(Abort("cancelled", "user pressed stop"))) == []
    assert e.finished
    assert "cancelled" in str(e.error)
    assert e.outcome is None
    assert state.load(ICCID, 0x6F3A) == before


def test_done_counts_set_aside_files_for_a_11_phone_and_not_for_a_10_one(
    state: CardStateDB, tmp_path: Path
) -> None:
    """A 1.0 phone reads exactly five counts: set_aside goes only to 1.1 and later."""
    from pda.vdir import VdirStore

    vdir = tmp_path / "vdir"
    vdir.mkdir()
    (vdir / "bad.vcf").write_bytes(b"no vCard here\r\n")
    card = FakeCard(records=5, alpha_len=8)
    store = VdirStore(vdir)
    done = sync(card, SyncEngine(store, state))
    assert done is not None
    assert done.set_aside == 1
    e = SyncEngine(store, state)
    old = sync(card, e, version=(1, 0))
    assert old is not None
    assert old.set_aside is None
    assert e.outcome is not None
    assert e.outcome.set_aside == 1  # the PDA's own log still counts it


def test_a_blank_card_name_from_the_phone_is_no_name(state: CardStateDB) -> None:
    """A phone that sends a name of blanks (another terminal's) does not stop the sync.

    The PDA reads it as the phone's codec does: no name, so the contact is named by
    its number (a contact named "  " is one the store refuses).
    """
    card = FakeCard(records=5, alpha_len=8)
    card.add("  ", "5551")
    store = MemoryStore()
    done = sync(card, engine(store, state))
    assert done is not None
    assert done.added == 1
    assert [c.projection for c in store.scan().values()] == [Projection("5551", "5551")]
    again = sync(card, engine(store, state))
    assert again is not None
    assert (again.added, again.modified, again.deleted) == (0, 0, 0)
