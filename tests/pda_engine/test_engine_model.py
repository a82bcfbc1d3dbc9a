"""The engine under random edits, random modes and crashes at random points.

Sides: a FakeCard driven by the phone simulator, a MemoryStore and a real
SQLite CardStateDB. After every sync that completes, both sides hold the same
contacts, nothing a person wrote since the last completed sync is gone
(policy `duplicate`), and one more sync has nothing to do.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from pda.cardstate import CardStateDB
from pda.engine import SyncEngine, prefix_fits
from pda.store import MemoryStore, Projection
from syncproto import Mode, RequestedMode

from .phone import Crash, FakeCard, pda_view, sync

ALPHA = 5
names = st.from_regex(r"[AB][ab ]{0,8}", fullmatch=True).map(str.strip)
card_names = names.map(lambda n: n[:ALPHA].strip())
numbers = st.text("12", min_size=1, max_size=3)


class EngineModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.db = CardStateDB(Path(self.tmp.name) / "cards.sqlite")
        self.card = FakeCard(records=40, alpha_len=ALPHA)
        self.store = MemoryStore()
        self.made = 0
        self.fresh: dict[tuple[str, Any], tuple[str, str]] = {}
        self.snap_card: dict[int, tuple[str, str]] = {}
        self.snap_pda: dict[str, tuple[str, str | None]] = {}

    def teardown(self) -> None:
        self.db.close()
        self.tmp.cleanup()

    def _size(self) -> int:
        return len(self.card.records) + len(self.store.scan())

    @precondition(lambda self: self._size() < 14)
    @rule(name=card_names, number=numbers)
    def add_on_card(self, name: str, number: str) -> None:
        r = self.card.add(name, number)
        self.fresh["card", r] = (name, number)

    @precondition(lambda self: self._size() < 14)
    @rule(name=names, number=numbers)
    def add_on_pda(self, name: str, number: str) -> None:
        self.made += 1  # our own uids: random ones would make runs differ (hypothesis replays)
        uid = self.store.create(Projection(name, number), uid=f"person-{self.made:03d}")
        self.fresh["pda", uid] = (name, number)

    @precondition(lambda self: self.card.records)
    @rule(data=st.data(), name=card_names, number=numbers)
    def edit_on_card(self, data: st.DataObject, name: str, number: str) -> None:
        r = data.draw(st.sampled_from(sorted(self.card.records)))
        self.card.records[r] = (name, number)
        self.fresh["card", r] = (name, number)

    @precondition(lambda self: self.store.scan())
    @rule(data=st.data(), name=names, number=numbers)
    def edit_on_pda(self, data: st.DataObject, name: str, number: str) -> None:
        uid = data.draw(st.sampled_from(list(self.store.scan())))  # creation order: reproducible
        self.store.update_projection(uid, Projection(name, number))
        self.fresh["pda", uid] = (name, number)

    @precondition(lambda self: self.card.records)
    @rule(data=st.data())
    def delete_on_card(self, data: st.DataObject) -> None:
        r = data.draw(st.sampled_from(sorted(self.card.records)))
        del self.card.records[r]
        self.fresh.pop(("card", r), None)

    @precondition(lambda self: self.store.scan())
    @rule(data=st.data())
    def delete_on_pda(self, data: st.DataObject) -> None:
        uid = data.draw(st.sampled_from(list(self.store.scan())))  # creation order: reproducible
        self.store.delete(uid)
        self.fresh.pop(("pda", uid), None)

    @rule(crash=st.sampled_from(Crash))
    def interrupted_sync(self, crash: Crash) -> None:
        assert sync(self.card, SyncEngine(self.store, self.db), crash=crash) is None
        if crash in (Crash.STORESYNC, Crash.COMMITTED):
            # Both sides hold the data and the card moved its anchor: the sync is
            # complete in all but the last message; what a person does next is new.
            self._completed()

    def _completed(self) -> None:
        self.fresh.clear()
        self.snap_card = dict(self.card.records)
        self.snap_pda = {
            u: (c.projection.name, c.projection.number) for u, c in self.store.scan().items()
        }

    @rule(requested=st.sampled_from(RequestedMode))
    def full_sync(self, requested: RequestedMode) -> None:
        # Edits that end where the last completed sync left them are no edits.
        for (side, where), e in list(self.fresh.items()):
            snap = self.snap_card if side == "card" else self.snap_pda
            if snap.get(where) == e:
                del self.fresh[side, where]
        engine = SyncEngine(self.store, self.db)
        assert sync(self.card, engine, requested=requested) is not None
        assert engine.outcome is not None
        view = pda_view(self.store, ALPHA)
        assert self.card.view() == view
        if engine.outcome.mode in (Mode.FAST, Mode.SLOW):
            for (side, _where), (name, number) in self.fresh.items():
                assert (prefix_fits(name, ALPHA), number) in view, (side, name, number)
                if side == "pda":
                    assert Projection(name, number) in {
                        c.projection for c in self.store.scan().values()
                    }
        # Stable: one more sync finds nothing to do, and it is fast.
        again = SyncEngine(self.store, self.db)
        done = sync(self.card, again)
        assert done is not None
        assert again.outcome is not None
        assert again.outcome.mode is Mode.FAST
        assert (done.added, done.modified, done.deleted, done.conflicts) == (0, 0, 0, 0)
        assert self.card.changes() == []
        self._completed()


EngineModel.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestEngineModel = EngineModel.TestCase
