"""When is a PDA near? The pure decision rules of the presence watcher, with no I/O.

The watcher (:mod:`daemon.presence`) feeds this module what Bluetooth reports and
the time; this module decides. Time is always passed in (``now``, monotonic
seconds), so the rules are tested without sleeping.

The rules (docs/presence.md)
----------------------------
- away -> near: one advertisement heard at ``rssi >= near_rssi``.
- near stays near while advertisements keep arriving at ``rssi >= away_rssi``:
  RSSI between the two thresholds keeps what it has (hysteresis), so a PDA at the
  edge of range does not flap.
- near -> away: no advertisement at ``rssi >= away_rssi`` for ``away_after``
  seconds (weak or silent, the same), or at once when BlueZ forgets the device or
  the adapter goes away: what cannot be seen is not claimed to be near.
- An auto-sync on arrival runs at most once per ``min_interval`` per PDA, counted
  from the last sync of that PDA whatever started it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "AutoSyncGate",
    "Presence",
    "PresenceChange",
    "PresenceReason",
    "PresenceTracker",
    "ScanMode",
    "Thresholds",
]

#: How the watcher scans: passive where BlueZ offers advertisement monitors (auto).
ScanMode = Literal["auto", "passive", "active"]

# Bluetooth RSSI is a signed byte in dBm; BlueZ uses 127 for "unknown".
_RSSI_MIN, _RSSI_MAX = -127, 20


class Presence(StrEnum):
    """Where a PDA is, as far as the phone can tell."""

    NEAR = "near"
    AWAY = "away"


class PresenceReason(StrEnum):
    """Why a PDA changed state (in logs and in the event)."""

    SIGNAL = "signal"  # heard at or above near_rssi
    TIMEOUT = "timeout"  # not heard at or above away_rssi for away_after seconds
    REMOVED = "removed"  # BlueZ removed the device object (unpaired, forgotten)
    ADAPTER = "adapter"  # the adapter went away or was powered off


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The RSSI band and the time-out; ``near_rssi`` must be above ``away_rssi``."""

    near_rssi: int = -70
    away_rssi: int = -85
    away_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("near_rssi", "away_rssi"):
            v = getattr(self, name)
            if not _RSSI_MIN <= v <= _RSSI_MAX:
                raise ValueError(f"{name} must be between {_RSSI_MIN} and {_RSSI_MAX} dBm")
        if self.near_rssi <= self.away_rssi:
            raise ValueError(
                f"near_rssi ({self.near_rssi}) must be above away_rssi ({self.away_rssi}): "
                "the band between them is the hysteresis"
            )
        if not self.away_after > 0:
            raise ValueError("away_after must be a positive number of seconds")


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """One PDA changed state; ``rssi`` is the last one heard (None if never)."""

    pda: str
    state: Presence
    reason: PresenceReason
    rssi: int | None


@dataclass
class _Pda:
    state: Presence = Presence.AWAY
    rssi: int | None = None
    last_strong: float = 0.0  # when last heard at >= away_rssi (meaningful while near)


class PresenceTracker:
    """The state of every configured PDA; every input returns the changes it caused."""

    def __init__(self, pdas: Iterable[str], thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._pdas = {name: _Pda() for name in pdas}

    def state(self, pda: str) -> Presence:
        """The PDA's current state (every PDA starts away)."""
        return self._pdas[pda].state

    def rssi(self, pda: str) -> int | None:
        """The last RSSI heard from the PDA, or None."""
        return self._pdas[pda].rssi

    def states(self) -> dict[str, Presence]:
        """Every PDA's state, in configuration order."""
        return {name: p.state for name, p in self._pdas.items()}

    def heard(self, pda: str, rssi: int, now: float) -> list[PresenceChange]:
        """An advertisement of ``pda`` at ``rssi`` dBm arrived at ``now``.

        A time-out already due is applied first, so a late report can yield an
        away followed by a near.
        """
        changes = self.tick(now, only=pda)
        p = self._pdas[pda]
        p.rssi = rssi
        t = self.thresholds
        if p.state is Presence.NEAR:
            if rssi >= t.away_rssi:
                p.last_strong = now
        elif rssi >= t.near_rssi:
            p.state, p.last_strong = Presence.NEAR, now
            changes.append(PresenceChange(pda, Presence.NEAR, PresenceReason.SIGNAL, rssi))
        return changes

    def tick(self, now: float, *, only: str | None = None) -> list[PresenceChange]:
        """Apply the away time-out to every PDA (or to ``only``) at ``now``."""
        changes = []
        for name, p in self._pdas.items():
            if only is not None and name != only:
                continue
            if p.state is Presence.NEAR and now - p.last_strong >= self.thresholds.away_after:
                p.state = Presence.AWAY
                changes.append(PresenceChange(name, Presence.AWAY, PresenceReason.TIMEOUT, p.rssi))
        return changes

    def lost(self, reason: PresenceReason, pda: str | None = None) -> list[PresenceChange]:
        """``pda`` (or, without one, every PDA) can no longer be seen: near ones go away now."""
        changes = []
        for name, p in self._pdas.items():
            if pda is not None and name != pda:
                continue
            if p.state is Presence.NEAR:
                p.state = Presence.AWAY
                changes.append(PresenceChange(name, Presence.AWAY, reason, p.rssi))
        return changes

    def next_deadline(self) -> float | None:
        """When the next time-out falls due (monotonic seconds), or None if no PDA is near."""
        due = [
            p.last_strong + self.thresholds.away_after
            for p in self._pdas.values()
            if p.state is Presence.NEAR
        ]
        return min(due, default=None)


class AutoSyncGate:
    """Whether an arrival may start a sync: at most one per ``min_interval`` per PDA."""

    def __init__(self, min_interval: float) -> None:
        if min_interval < 0:
            raise ValueError("min_interval must not be negative")
        self.min_interval = min_interval
        self._last: dict[str, float] = {}

    def synced(self, pda: str, now: float) -> None:
        """A sync of ``pda`` ran at ``now`` (any trigger: it resets the interval)."""
        self._last[pda] = now

    def arrival(self, pda: str, now: float) -> bool:
        """``pda`` came near at ``now``: True (and the sync counted) if a sync may start."""
        last = self._last.get(pda)
        if last is not None and now - last < self.min_interval:
            return False
        self._last[pda] = now
        return True

    def wait_left(self, pda: str, now: float) -> float:
        """Seconds until an arrival of ``pda`` may start a sync again (0 when it may now)."""
        last = self._last.get(pda)
        return 0.0 if last is None else max(0.0, last + self.min_interval - now)
