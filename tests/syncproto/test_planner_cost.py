"""What one plan costs: name fittings follow the changes, new records the card's room.

Fitting a name runs the card codec (about a millisecond), so a plan that fitted
every contact of a 10,000-contact book took a second. These count calls, never time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest

from syncproto import CardPut, Entry, Mode, Plan, Policy, Synced, plan

BOOK = 5_000
CARD = 30  # records, all in use


class CountingFits:
    """A `fits` that shortens to 8 characters, remembers its answers (as the PDA's
    `NameFits` does across sessions) and counts the names it really fitted."""

    def __init__(self) -> None:
        self.calls = 0
        self.memo: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name not in self.memo:
            self.calls += 1
            self.memo[name] = name[:8]
        return self.memo[name]


def book() -> tuple[dict[str, Entry], dict[int, Synced]]:
    """BOOK contacts, the first CARD of them on a full card (some names shortened)."""
    pda = {f"u{i:05d}": Entry(f"Person number {i}", f"+4917{i:07d}") for i in range(BOOK)}
    synced = {
        r: Synced(f"u{r:05d}", Entry(f"Person number {r}"[:8], f"+4917{r:07d}"), pda[f"u{r:05d}"])
        for r in range(1, CARD + 1)
    }
    return pda, synced


def run(
    pda: Mapping[str, Entry],
    synced: dict[int, Synced],
    card: dict[int, Entry | None],
    fits: Callable[[str], str],
    *,
    mode: Mode = Mode.FAST,
    capacity: int | None = 0,
) -> Plan:
    return plan(
        mode=mode,
        card=card,
        pda=pda,
        synced=synced,
        fits=fits,
        new_uid=lambda r, e: f"new-{r}",
        policy=Policy.DUPLICATE,
        capacity=capacity,
    )


@pytest.mark.parametrize("k", [0, 1, 5, 20])
def test_a_fast_sync_fits_only_the_changed_contacts(k: int) -> None:
    pda, synced = book()
    fits = CountingFits()
    run(pda, synced, {}, fits)  # the previous sync: the card's names were fitted once
    assert fits.calls <= CARD  # cold: the mapped contacts' names at most, never the book
    fits.calls = 0
    for r in range(1, k + 1):  # k mapped contacts renamed on the PDA
        uid = synced[r].uid
        pda[uid] = Entry(f"Renamed person {r}", pda[uid].number)
    p = run(pda, synced, {}, fits)
    assert fits.calls == k  # not O(book): 4,970 contacts wait for room and are never fitted
    assert sum(isinstance(a, CardPut) for a in p.to_card) == k
    assert len(p.skipped) == BOOK - CARD  # the card is full: every other contact waits


def test_unpaired_records_fit_only_contacts_sharing_their_number() -> None:
    pda, synced = book()
    # Three records another phone added: two are shortened forms of unmapped contacts.
    card: dict[int, Entry | None] = {
        CARD + 1: Entry("Person n", "+49170000100"),
        CARD + 2: Entry("Person n", "+49170000200"),
        CARD + 3: Entry("Stranger", "+1555"),
    }
    fits = CountingFits()
    run(pda, synced, {}, fits)
    fits.calls = 0
    p = run(pda, synced, card, fits, capacity=None)
    assert fits.calls <= 2  # one per contact sharing a number with an unpaired record
    assert p.synced[CARD + 1].uid == "u00100"
    assert p.synced[CARD + 2].uid == "u00200"
    assert [a.uid for a in p.to_pda] == ["new-33"]  # the stranger becomes a contact


def test_slow_sync_of_a_matched_full_card_fits_nothing() -> None:
    pda, synced = book()
    card: dict[int, Entry | None] = {r: s.card for r, s in synced.items()}
    fits = CountingFits()
    p = run(pda, {}, card, fits, mode=Mode.SLOW)
    # Every record pairs with its contact by content; the 4,970 others are not fitted.
    assert {r: s.uid for r, s in p.synced.items()} == {r: s.uid for r, s in synced.items()}
    assert fits.calls <= 2 * CARD


@pytest.mark.parametrize(
    ("capacity", "deleted", "offered"),
    [(0, 0, 0), (2, 0, 2), (0, 1, 1), (3, 2, 5)],
)
def test_new_records_are_offered_up_to_the_room_and_the_rest_counted(
    capacity: int, deleted: int, offered: int
) -> None:
    pda, synced = book()
    for r in range(1, deleted + 1):  # deleted on the PDA: their records free up this sync
        del pda[synced[r].uid]
    p = run(pda, synced, {}, CountingFits(), capacity=capacity)
    new = [a for a in p.to_card if isinstance(a, CardPut) and a.record is None]
    assert len(new) == offered
    # Every contact not on the card and not offered is counted, none twice.
    assert len(p.skipped) == len(set(p.skipped)) == len(pda) - (CARD - deleted) - offered


def test_a_put_into_a_record_emptied_on_the_card_uses_up_a_free_record() -> None:
    pda, synced = book()
    uid = synced[1].uid
    pda[uid] = Entry("Changed on the PDA", pda[uid].number)  # and record 1 emptied on the card
    p = run(pda, synced, {1: None}, CountingFits(), capacity=1)
    puts = [a for a in p.to_card if isinstance(a, CardPut)]
    assert [(a.uid, a.record) for a in puts] == [(uid, 1)]  # modified wins, back into record 1
    assert len(p.skipped) == BOOK - CARD


class Looked(Mapping[str, Entry]):
    """The PDA's contacts, counting the ones the planner looks at (the engine makes an
    Entry only for those: its contacts are a lazy mapping over the store's)."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self.looked: set[str] = set()

    def __getitem__(self, uid: str) -> Entry:
        self.looked.add(uid)
        return self.entries[uid]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@pytest.mark.parametrize(("capacity", "k"), [(0, 0), (0, 5), (3, 5)])
def test_a_fast_sync_looks_at_the_mapped_contacts_and_the_room_not_the_book(
    capacity: int, k: int
) -> None:
    pda, synced = book()
    for r in range(1, k + 1):
        uid = synced[r].uid
        pda[uid] = Entry(f"Renamed person {r}", pda[uid].number)
    looked = Looked(pda)
    p = run(looked, synced, {}, CountingFits(), capacity=capacity)
    # The card's contacts and as many waiting ones as there is room for: not 4,970 more.
    assert len(looked.looked) == CARD + capacity
    assert len(p.skipped) == BOOK - CARD - capacity  # the others still counted, exactly
