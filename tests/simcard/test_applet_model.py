"""The sync applet against an independent model of spec/card.md section 4 (hypothesis).

The model (``_model.py``) logs every UPDATE RECORD with the sessions open at that
moment and derives each partner's baseline at STORESYNC from the spec's words, not
from the card's own bookkeeping. Every NEWSYNC's frozen list is checked for
completeness, precision (with the spec's slack), types and order.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from simcard import new_memory_card

from ._apdu import (
    ADN,
    EXT1,
    TELECOM,
    getchanges,
    newsync,
    open_channel,
    read,
    select,
    storesync,
    sw,
    tx,
    update,
    verify,
)
from ._model import Baseline, OpenSession, Write, baseline_at_commit, check_changes

RECORDS = {ADN: 6, EXT1: 10}
LENGTH = {ADN: 16, EXT1: 13}  # alpha_len 2
TABLE = 8
PARTNERS = [f"partner-{i}".encode() for i in range(11)]  # more than the table holds


def content(fid: int, kind: int) -> bytes:
    """Record content: 0 = empty, otherwise a distinct filled pattern."""
    return b"\xff" * LENGTH[fid] if kind == 0 else bytes((kind,)) * LENGTH[fid]


class AppletMachine(RuleBasedStateMachine):
    """Random writes on 4 channels, syncs of 11 partners over 2 EFs, resets, evictions."""

    @initialize()
    def start(self) -> None:
        self.card = new_memory_card(records=RECORDS[ADN], alpha_len=2, partners=TABLE)
        self.content = {fid: [content(fid, 0)] * (n + 1) for fid, n in RECORDS.items()}
        # (partner, fid) -> (last sync object, STORESYNC order, baseline)
        self.table: dict[tuple[bytes, int], tuple[bytes, int, Baseline]] = {}
        self.sessions: dict[int, OpenSession] = {}
        self.log: list[Write] = []
        self.seq = 0
        self.idents = 0
        self._power_up()

    def _power_up(self) -> None:
        verify(self.card)
        assert [open_channel(self.card) for _ in range(3)] == [1, 2, 3]

    @rule(
        channel=st.integers(0, 3),
        fid=st.sampled_from(sorted(RECORDS)),
        data=st.data(),
        kind=st.integers(0, 3),
    )
    def write(self, channel: int, fid: int, data: st.DataObject, kind: int) -> None:
        # Mostly the first two records, so writes of sessions and others collide often.
        rec = data.draw(st.integers(1, 2) | st.integers(1, RECORDS[fid]), label="rec")
        self._write(channel, fid, rec, kind)

    def _write(self, channel: int, fid: int, rec: int, kind: int) -> None:
        select(self.card, channel, TELECOM, fid)
        new = content(fid, kind)
        update(self.card, channel, rec, new)
        opened = tuple(sorted((ch, s.ident) for ch, s in self.sessions.items()))
        self.log.append(Write(fid, rec, channel, self.content[fid][rec], new, opened))
        self.content[fid][rec] = new

    @rule(
        channel=st.integers(0, 3),
        partner=st.sampled_from(PARTNERS),
        fid=st.sampled_from(sorted(RECORDS)),
        page=st.integers(1, 5),
    )
    def sync_start(self, channel: int, partner: bytes, fid: int, page: int) -> None:
        ns = newsync(self.card, channel, partner, fid)
        changes = getchanges(self.card, channel, page)
        assert ns.count == len(changes)
        entry = self.table.get((partner, fid))
        assert ns.last == (None if entry is None else entry[0])
        check_changes(
            fid,
            self._now(fid),
            content(fid, 0),
            None if entry is None else entry[2],
            self.log,
            changes,
        )
        self.idents += 1  # replaces any session open on this channel
        self.sessions[channel] = OpenSession(
            self.idents, partner, fid, channel, ns.proposed, len(self.log), tuple(changes)
        )

    def _now(self, fid: int) -> dict[int, bytes]:
        return {r: self.content[fid][r] for r in range(1, RECORDS[fid] + 1)}

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), page=st.integers(1, 5))
    def changes_stay_frozen(self, data: st.DataObject, page: int) -> None:
        channel = data.draw(st.sampled_from(sorted(self.sessions)), label="channel")
        assert getchanges(self.card, channel, page) == list(self.sessions[channel].changes)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), right=st.booleans())
    def sync_commit(self, data: st.DataObject, right: bool) -> None:
        channel = data.draw(st.sampled_from(sorted(self.sessions)), label="channel")
        if right:
            self.sync_commit_on(channel)
        else:
            wrong = bytes(b ^ 0x55 for b in self.sessions[channel].proposed)
            assert storesync(self.card, channel, wrong) == 0x6A80

    def sync_commit_on(self, channel: int) -> None:
        s = self.sessions[channel]
        assert storesync(self.card, channel, s.proposed) == 0x9000
        del self.sessions[channel]
        key = (s.partner, s.fid)
        if key not in self.table and len(self.table) == TABLE:
            oldest = min(self.table, key=lambda k: self.table[k][1])
            del self.table[oldest]
        self.seq += 1
        baseline = baseline_at_commit(self.log, s, self._now(s.fid))
        self.table[key] = (s.proposed, self.seq, baseline)

    @rule(
        channel=st.integers(0, 3),
        partner=st.sampled_from(PARTNERS),
        fid=st.sampled_from(sorted(RECORDS)),
    )
    def quick_sync(self, channel: int, partner: bytes, fid: int) -> None:
        """A whole sync with no writes in between: fills the table, forces evictions."""
        self.sync_start(channel, partner, fid, 84)
        self.sync_commit_on(channel)

    @rule(
        channel=st.integers(0, 3),
        partner=st.sampled_from(PARTNERS[:3]),
        fid=st.sampled_from(sorted(RECORDS)),
        writes=st.lists(
            st.tuples(st.integers(0, 3), st.integers(1, 3), st.integers(0, 3)), max_size=6
        ),
    )
    def sync_with_writes(
        self, channel: int, partner: bytes, fid: int, writes: list[tuple[int, int, int]]
    ) -> None:
        """A sync during which the session and others write the same few records."""
        self.sync_start(channel, partner, fid, 84)
        for ch, rec, kind in writes:
            self._write(ch, fid, rec, kind)
        self.sync_commit_on(channel)

    @rule(channel=st.integers(0, 3))
    def commit_without_session(self, channel: int) -> None:
        if channel not in self.sessions:
            assert storesync(self.card, channel, bytes(8)) == 0x6985

    @rule(cold=st.booleans())
    def reset(self, cold: bool) -> None:
        if cold:
            self.card.power_off()
            self.card.power_on()
        else:
            self.card.reset()
        assert sw(tx(self.card, "81 3C 00 00 02")) == 0x6881  # channels closed
        self.sessions.clear()
        self._power_up()

    @rule(channel=st.integers(1, 3))
    def reopen_channel(self, channel: int) -> None:
        assert sw(tx(self.card, bytes((0, 0x70, 0x80, channel, 0)))) == 0x9000
        self.sessions.pop(channel, None)
        assert open_channel(self.card) == channel

    @invariant()
    def table_matches(self) -> None:
        if hasattr(self, "card"):
            partners = self.card.info()["partners"]
            expected = sorted(self.table, key=lambda k: self.table[k][1])
            assert partners == [p.hex() for p, _ in expected]

    @rule(fid=st.sampled_from(sorted(RECORDS)))
    def contents_match(self, fid: int) -> None:
        select(self.card, 0, TELECOM, fid)
        for r in range(1, RECORDS[fid] + 1):
            assert read(self.card, 0, r, LENGTH[fid]) == self.content[fid][r]


AppletMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestApplet = AppletMachine.TestCase
