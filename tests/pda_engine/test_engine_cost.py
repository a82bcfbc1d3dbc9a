"""The engine's per-sync work follows the changes: names fitted once, no Put a full card refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from pda.cardstate import CardStateDB
from pda.engine import NameFits, SyncEngine, prefix_fits
from pda.store import MemoryStore, Projection

from .phone import FakeCard, sync


class CountingCard(FakeCard):
    """A FakeCard that counts the free records the phone looked for (one per new-record Put)."""

    def __init__(self, records: int) -> None:
        super().__init__(records=records, alpha_len=8)
        self.searches = 0

    def free(self) -> int | None:
        self.searches += 1
        return super().free()


@pytest.fixture
def state(tmp_path: Path):
    db = CardStateDB(tmp_path / "cards.sqlite")
    yield db
    db.close()


def full_card_and_book(extra: int) -> tuple[CountingCard, MemoryStore]:
    """A full 20-record card, its 20 contacts on the PDA plus `extra` that do not fit."""
    card = CountingCard(records=20)
    store = MemoryStore()
    for i in range(20):
        card.add(prefix_fits(f"Person {i:02d}", 8), f"+4917{i:07d}")  # shortened, as a card does
        store.create(Projection(f"Person {i:02d}", f"+4917{i:07d}"))
    for i in range(extra):
        store.create(Projection(f"Waiting {i:03d}", f"+4918{i:07d}"))
    store.create(Projection("No Number", None))
    card.searches = 0
    return card, store


def test_a_full_card_gets_no_put_for_a_new_record_and_the_skipped_count_is_exact(
    state: CardStateDB,
) -> None:
    card, store = full_card_and_book(extra=200)
    fits = NameFits(prefix_fits)
    for _ in range(3):  # slow (matches by content), then fast, fast
        done = sync(card, SyncEngine(store, state, fits=fits))
        assert done is not None
        assert done.skipped == 200 + 1  # the waiting contacts and the one without a number
        assert card.searches == 0  # no Put the card must refuse, so no search for room
    # A record emptied on the card (its contact goes too) makes room for one of them in
    # the same sync. (This fake counts free records on the card itself, so the emptied
    # record is counted twice: one more Put, answered Skipped, and the count still exact.)
    del card.records[5]
    done = sync(card, SyncEngine(store, state, fits=fits))
    assert done is not None
    assert card.searches == 2
    assert len(card.records) == 20
    assert (done.deleted, done.skipped) == (1, 200 + 1 - 1)
    assert len(store.scan()) == 20 - 1 + 200 + 1


def test_a_contact_deleted_on_the_pda_frees_its_record_for_a_waiting_one(
    state: CardStateDB,
) -> None:
    card, store = full_card_and_book(extra=3)
    fits = NameFits(prefix_fits)
    assert sync(card, SyncEngine(store, state, fits=fits)) is not None
    gone = next(u for u, c in store.scan().items() if c.projection.name == "Person 07")
    store.delete(gone)
    done = sync(card, SyncEngine(store, state, fits=fits))
    assert done is not None
    assert (done.deleted, done.skipped) == (0, 3 - 1 + 1)
    assert sum(1 for name, _ in card.records.values() if name == "Waiting ") == 1
    assert card.searches == 1


@pytest.mark.parametrize("k", [0, 1, 5])
def test_names_are_fitted_once_across_syncs(state: CardStateDB, k: int) -> None:
    card, store = full_card_and_book(extra=500)
    fits = NameFits(prefix_fits)
    assert sync(card, SyncEngine(store, state, fits=fits)) is not None
    assert sync(card, SyncEngine(store, state, fits=fits)) is not None
    first = fits.computed
    assert first <= 20 + 1  # the card's names (and the no-number contact's), not the book's 521
    mapped = [u for u, c in store.scan().items() if c.projection.name.startswith("Person")]
    for i, uid in enumerate(sorted(mapped)[:k]):
        store.update_projection(uid, Projection(f"Renamed {i}", f"+4919{i:07d}"))
    done = sync(card, SyncEngine(store, state, fits=fits))
    assert done is not None
    assert fits.computed - first == k
    assert sum(1 for r in card.records.values() if r[0].startswith("Renamed")) == k


def test_name_fits_starts_over_past_its_limit_and_stays_right() -> None:
    fits = NameFits(prefix_fits, limit=2)
    assert [fits(n, 4) for n in ("Alexander", "Bo", "Carolina", "Alexander")] == [
        "Alex",
        "Bo",
        "Caro",
        "Alex",
    ]
    assert fits.computed == 4  # the memory was full at "Carolina": Alexander fitted again
