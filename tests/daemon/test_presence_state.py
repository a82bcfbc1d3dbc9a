"""The near/away rules on their own: hysteresis, time-out, loss, auto-sync gate (no clock)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.presence_state import (
    AutoSyncGate,
    Presence,
    PresenceChange,
    PresenceReason,
    PresenceTracker,
    Thresholds,
)

NEAR, AWAY = Presence.NEAR, Presence.AWAY
T = Thresholds(near_rssi=-70, away_rssi=-85, away_after=30.0)


def tracker(*names: str) -> PresenceTracker:
    return PresenceTracker(names or ("pda1",), T)


def test_every_pda_starts_away_with_no_deadline() -> None:
    t = tracker("a", "b")
    assert t.states() == {"a": AWAY, "b": AWAY}
    assert t.rssi("a") is None
    assert t.next_deadline() is None


def test_a_strong_signal_makes_it_near_once() -> None:
    t = tracker()
    assert t.heard("pda1", -60, now=0.0) == [
        PresenceChange("pda1", NEAR, PresenceReason.SIGNAL, -60)
    ]
    assert t.heard("pda1", -55, now=1.0) == []
    assert t.state("pda1") is NEAR
    assert t.rssi("pda1") == -55


def test_a_signal_in_the_band_does_not_make_it_near() -> None:
    t = tracker()
    for now, rssi in enumerate((-71, -80, -85, -90)):
        assert t.heard("pda1", rssi, now=float(now)) == []
    assert t.state("pda1") is AWAY
    # exactly at the threshold counts
    assert [c.state for c in t.heard("pda1", -70, now=10.0)] == [NEAR]


def test_hysteresis_a_signal_in_the_band_keeps_it_near() -> None:
    t = tracker()
    t.heard("pda1", -60, now=0.0)
    # in the band (-85..-71) every 20 s: the 30 s time-out never falls due
    for i in range(1, 10):
        assert t.heard("pda1", -80 if i % 2 else -85, now=i * 20.0) == []
        assert t.tick(now=i * 20.0 + 29.0) == []
    assert t.state("pda1") is NEAR


def test_weak_signals_do_not_keep_it_near() -> None:
    t = tracker()
    t.heard("pda1", -60, now=0.0)
    assert t.heard("pda1", -86, now=10.0) == []
    assert t.heard("pda1", -95, now=20.0) == []
    assert t.tick(now=29.9) == []
    assert t.tick(now=30.0) == [PresenceChange("pda1", AWAY, PresenceReason.TIMEOUT, -95)]
    assert t.tick(now=100.0) == []


def test_the_deadline_moves_with_each_strong_signal() -> None:
    t = tracker("a", "b")
    t.heard("a", -60, now=0.0)
    assert t.next_deadline() == 30.0
    t.heard("b", -60, now=5.0)
    t.heard("a", -84, now=12.0)
    assert t.next_deadline() == 35.0
    assert [c.pda for c in t.tick(now=35.0)] == ["b"]
    assert t.next_deadline() == 42.0
    assert [c.pda for c in t.tick(now=42.0)] == ["a"]
    assert t.next_deadline() is None


def test_a_late_report_applies_the_due_time_out_first() -> None:
    t = tracker()
    t.heard("pda1", -60, now=0.0)
    assert t.heard("pda1", -65, now=31.0) == [
        PresenceChange("pda1", AWAY, PresenceReason.TIMEOUT, -60),
        PresenceChange("pda1", NEAR, PresenceReason.SIGNAL, -65),
    ]


def test_lost_sends_near_pdas_away_at_once() -> None:
    t = tracker("a", "b", "c")
    t.heard("a", -60, now=0.0)
    t.heard("b", -60, now=0.0)
    assert t.lost(PresenceReason.REMOVED, "a") == [
        PresenceChange("a", AWAY, PresenceReason.REMOVED, -60)
    ]
    assert t.lost(PresenceReason.REMOVED, "c") == []  # already away: nothing to say
    assert t.lost(PresenceReason.ADAPTER) == [
        PresenceChange("b", AWAY, PresenceReason.ADAPTER, -60)
    ]
    assert t.states() == {"a": AWAY, "b": AWAY, "c": AWAY}
    assert t.next_deadline() is None


def test_unknown_pda_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        tracker().heard("nope", -50, now=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"near_rssi": -80, "away_rssi": -80}, "must be above away_rssi"),
        ({"near_rssi": -90, "away_rssi": -80}, "must be above away_rssi"),
        ({"near_rssi": 30}, "near_rssi must be between"),
        ({"away_rssi": -200}, "away_rssi must be between"),
        ({"away_after": 0}, "away_after must be a positive"),
    ],
)
def test_bad_thresholds_say_which_and_why(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Thresholds(**kwargs)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(st.sampled_from(["heard", "tick", "lost"]), st.integers(-127, 20)),
        max_size=60,
    )
)
def test_events_alternate_and_match_the_state(steps: list[tuple[str, int]]) -> None:
    """Whatever arrives, the events of a PDA alternate near/away and end in its state."""
    t = tracker()
    now, seen = 0.0, [AWAY]
    for i, (op, rssi) in enumerate(steps):
        now += (i * 7919 % 23) * 1.5  # irregular steps, some longer than away_after
        if op == "heard":
            changes = t.heard("pda1", rssi, now)
        elif op == "tick":
            changes = t.tick(now)
        else:
            changes = t.lost(PresenceReason.REMOVED)
        for c in changes:
            assert c.state is not seen[-1]
            seen.append(c.state)
            if c.state is NEAR:
                assert c.rssi is not None
                assert c.rssi >= T.near_rssi
    assert t.state("pda1") is seen[-1]


def test_auto_sync_gate_counts_from_the_last_sync() -> None:
    g = AutoSyncGate(min_interval=600.0)
    assert g.arrival("a", now=0.0) is True
    assert g.arrival("a", now=599.0) is False
    assert g.wait_left("a", now=599.0) == 1.0
    assert g.arrival("b", now=599.0) is True  # per PDA
    assert g.arrival("a", now=600.0) is True
    g.synced("a", now=1000.0)  # a manual sync also counts
    assert g.arrival("a", now=1200.0) is False
    assert g.wait_left("a", now=1700.0) == 0.0
    assert g.arrival("a", now=1600.0) is True


def test_auto_sync_gate_zero_interval_always_allows() -> None:
    g = AutoSyncGate(min_interval=0.0)
    assert g.arrival("a", now=0.0) is True
    assert g.arrival("a", now=0.0) is True
    with pytest.raises(ValueError, match="negative"):
        AutoSyncGate(-1.0)
