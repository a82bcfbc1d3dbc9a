"""The planner under random edits on both sides (vdirsyncer's test_sync model).

A person edits, adds and deletes on the card and on the PDA; syncs run in
random modes and policies; a simulated phone executes the card ops the way a
real one does (shortens names, picks the lowest free slot). After each sync
both sides must hold the same contacts, nothing a person did not delete may be
gone, and a second sync right after must have nothing to do.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from syncproto import (
    Applied,
    CardDelete,
    CreateContact,
    DeleteContact,
    Entry,
    Mode,
    Plan,
    Policy,
    Put,
    Removed,
    Stored,
    Synced,
    UpdateContact,
    plan,
    settle,
)

ALPHA = 4
RECORDS = 40
names = st.from_regex(r"[ab][ab ]{0,7}", fullmatch=True).map(str.strip)
card_names = names.map(lambda n: n[:ALPHA].strip()).filter(bool)
numbers = st.text("12", min_size=1, max_size=3)


def fits(name: str) -> str:
    return name[:ALPHA]


def new_uid(record: int, entry: Entry) -> str:
    return f"card-{record}-{entry.name}-{entry.number}"


def run_phone(card: dict[int, Entry], done: Plan) -> Applied:
    """What a phone does with PdaOps: writes in order, new records in the lowest free slot."""
    results: list[Stored | Removed] = []
    for op in done.ops().ops:
        if isinstance(op, Put):
            record = op.record or min(r for r in range(1, RECORDS + 1) if r not in card)
            card[record] = Entry(fits(op.name), op.number or None)
            results.append(Stored(op.ref, record, fits(op.name), op.number))
        else:
            del card[op.record]
            results.append(Removed(op.ref))
    return Applied(tuple(results))


class SyncModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.card: dict[int, Entry] = {}
        self.pda: dict[str, Entry] = {}
        self.synced: dict[int, Synced] = {}
        self.baseline: dict[int, Entry] = {}  # the card as of the last sync (its change list)
        self.anchor_ok = False  # False: no common anchor, only slow/refresh are possible
        self.next_uid = 0
        self.card_deleted: set[int] = set()
        self.pda_deleted: set[str] = set()
        self.fresh: dict[tuple[str, Any], Entry] = {}  # what a person wrote where, since the sync
        self.edits_since_sync = True

    # A person at work.

    def _touch(self) -> None:
        self.edits_since_sync = True

    @precondition(lambda self: len(self.card) + len(self.pda) < 16)
    @rule(name=card_names, number=numbers)
    def add_on_card(self, name: str, number: str) -> None:
        r = min(r for r in range(1, RECORDS + 1) if r not in self.card)
        self.card[r] = Entry(name, number)
        self.fresh[("card", r)] = self.card[r]
        self._touch()

    @precondition(lambda self: len(self.card) + len(self.pda) < 16)
    @rule(name=names, number=numbers)
    def add_on_pda(self, name: str, number: str) -> None:
        self.next_uid += 1
        uid = f"pda-{self.next_uid}"
        self.pda[uid] = Entry(name, number)
        self.fresh[("pda", uid)] = self.pda[uid]
        self._touch()

    @precondition(lambda self: self.card)
    @rule(data=st.data(), name=card_names, number=numbers)
    def edit_on_card(self, data: st.DataObject, name: str, number: str) -> None:
        r = data.draw(st.sampled_from(sorted(self.card)))
        self.card[r] = Entry(name, number)
        self.fresh[("card", r)] = self.card[r]
        self._touch()

    @precondition(lambda self: self.pda)
    @rule(data=st.data(), name=names, number=numbers)
    def edit_on_pda(self, data: st.DataObject, name: str, number: str) -> None:
        uid = data.draw(st.sampled_from(sorted(self.pda)))
        self.pda[uid] = Entry(name, number)
        self.fresh[("pda", uid)] = self.pda[uid]
        self._touch()

    @precondition(lambda self: self.card)
    @rule(data=st.data())
    def delete_on_card(self, data: st.DataObject) -> None:
        r = data.draw(st.sampled_from(sorted(self.card)))
        del self.card[r]
        self.fresh.pop(("card", r), None)
        self.card_deleted.add(r)
        self._touch()

    @precondition(lambda self: self.pda)
    @rule(data=st.data())
    def delete_on_pda(self, data: st.DataObject) -> None:
        uid = data.draw(st.sampled_from(sorted(self.pda)))
        del self.pda[uid]
        self.fresh.pop(("pda", uid), None)
        self.pda_deleted.add(uid)
        self._touch()

    @rule()
    def lose_pda_state(self) -> None:
        """The per-card state is gone (store replaced, anchor evicted): only a slow sync now."""
        self.synced = {}
        self.anchor_ok = False

    # Syncs.

    @rule(
        mode=st.sampled_from(Mode),
        policy=st.sampled_from(Policy),
        propagate=st.booleans(),
    )
    def sync(self, mode: Mode, policy: Policy, propagate: bool) -> None:
        if mode is Mode.FAST and not self.anchor_ok:
            mode = Mode.SLOW
        idle = not self.edits_since_sync
        # An edit that ends where the last sync left it is no change at all (the card
        # cannot tell "deleted and re-added the same" from "untouched"): drop it.
        last_pda = {s.uid: s.pda for s in self.synced.values()}
        for (side, where), e in list(self.fresh.items()):
            before = self.baseline.get(where) if side == "card" else last_pda.get(where)
            if before == e:
                del self.fresh[side, where]
        before_pda, before_card = dict(self.pda), dict(self.card)
        if mode is Mode.FAST:
            changed = {
                r
                for r in self.card.keys() | self.baseline.keys()
                if self.card.get(r) != self.baseline.get(r)
            }
            card_in: dict[int, Entry | None] = {r: self.card.get(r) for r in changed}
        else:
            card_in = dict(self.card)
        done = plan(
            mode=mode,
            card=card_in,
            pda=self.pda,
            synced=self.synced,
            fits=fits,
            new_uid=new_uid,
            policy=policy,
            propagate_deletes=propagate,
        )
        if idle:  # a repeated sync, in any mode, must find nothing to do
            assert done.to_pda == ()
            assert done.to_card == ()
        for a in done.to_pda:
            if isinstance(a, CreateContact):
                assert a.uid not in self.pda
                self.pda[a.uid] = a.entry
            elif isinstance(a, UpdateContact):
                self.pda[a.uid] = a.entry
            else:
                assert isinstance(a, DeleteContact)
                # Only a person's deletion on the card, unchanged contact, fast mode.
                assert mode is Mode.FAST
                assert propagate
                assert a.record in self.card_deleted
                del self.pda[a.uid]
        for c in done.to_card:
            if isinstance(c, CardDelete):
                assert mode is Mode.FAST
                assert self.synced[c.record].uid in self.pda_deleted
        applied = run_phone(self.card, done)
        self.synced = dict(settle(done, applied).synced)
        self.baseline = dict(self.card)
        self.anchor_ok = True
        self._check_synced(mode, policy, before_pda, before_card)

    def _check_synced(
        self,
        mode: Mode,
        policy: Policy,
        before_pda: dict[str, Entry],
        before_card: dict[int, Entry],
    ) -> None:
        card_view = Counter(self.card.values())
        pda_view = Counter(Entry(fits(p.name), p.number) for p in self.pda.values())
        assert card_view == pda_view
        # Nothing lost: slow and refresh syncs delete nothing on either side (what fast
        # syncs delete was checked against the person's deletions in sync()).
        if mode is not Mode.FAST:
            assert before_pda.keys() <= self.pda.keys()
            assert before_card.keys() <= self.card.keys()
        if policy is Policy.DUPLICATE and mode in (Mode.FAST, Mode.SLOW):
            for (side, _where), e in self.fresh.items():
                on_card = e if side == "card" else Entry(fits(e.name), e.number)
                assert on_card in card_view, (side, e)
                if side == "pda":
                    assert e in self.pda.values(), e
        self.fresh.clear()
        self.card_deleted.clear()
        self.pda_deleted.clear()
        self.edits_since_sync = False

    @invariant()
    def map_is_consistent(self) -> None:
        uids = [s.uid for s in self.synced.values()]
        assert len(uids) == len(set(uids))


SyncModel.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestSyncModel = SyncModel.TestCase
