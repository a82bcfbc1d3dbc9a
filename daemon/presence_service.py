"""Presence in the daemon: the watcher for the configured PDAs, and what its changes do.

``PresenceService.run()`` (one task of ``daemon.service``) starts the presence
watcher (``daemon.presence``) for the PDAs with a ``ble_identity`` when
``[presence] enabled``, and turns each change into

- a ``pda-near``/``pda-away`` event on ``ROOT/event`` (spec/mqtt.md),
- the retained ``ROOT/pda/<name>/presence`` (``near``/``away``; docs/daemon.md),
- with ``auto_sync``, a sync of the arriving PDA (request id ``near-…``) unless
  that PDA synced less than ``auto_sync_min_interval`` seconds ago,
- and the watcher's adapter state in systemd's STATUS= line.

The watcher never raises for Bluetooth trouble (it retries with backoff and
says why), so neither does this. bleak is imported only when some PDA is
watched: a daemon without presence never loads it. A reload (SIGHUP) that changes
what is watched or how restarts the watcher: PDAs near until then go away, and
come near again once heard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from functools import partial
from operator import is_not
from typing import TYPE_CHECKING

import structlog

from daemon.config import Config
from daemon.control import Control
from daemon.presence_state import AutoSyncGate

if TYPE_CHECKING:
    from daemon.presence import PresenceEvent, PresenceStatus, PresenceWatcher

__all__ = ["PresenceService", "status_note"]

log = structlog.get_logger("simsync.presence")

# What, when changed by a reload, restarts the watcher (auto-sync keys apply live).
_WatchKey = tuple[tuple[tuple[str, str], ...], str, str, int, int, int]


def _watch_key(config: Config) -> _WatchKey:
    p = config.presence
    watched = tuple(config.watched_pdas().items())
    return (watched, p.adapter, p.scan, p.near_rssi, p.away_rssi, p.away_after)


def status_note(status: PresenceStatus) -> str:
    """The watcher in a few words for ``systemctl status``."""
    head = f"bluetooth {status.adapter} {status.state}"
    if status.scan is not None:
        head += f" ({status.scan})"
    if status.error:
        head += f": {status.error}"
    if status.retry_in is not None:
        head += f", retry in {status.retry_in:g} s"
    near = [name for name, p in status.pdas.items() if p == "near"]
    return head + (f"; near: {', '.join(near)}" if near else "; no PDA near")


class PresenceService:
    """See the module docstring; ``clock`` (monotonic seconds) is injectable for tests."""

    def __init__(self, control: Control, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.control = control
        self.clock = clock
        self.gate = AutoSyncGate(control.config.presence.auto_sync_min_interval)
        self.watcher: PresenceWatcher | None = None
        self._reconfigured = asyncio.Event()

    def config_changed(self) -> None:
        """The control's config was replaced (SIGHUP): restart the watcher if it matters."""
        self._reconfigured.set()

    def synced(self, pda: str) -> None:
        """A sync of ``pda`` succeeded now (any trigger): arrivals wait the interval from here."""
        self.gate.synced(pda, self.clock())

    async def run(self) -> None:
        """Watch while the config says so, until cancelled."""
        while True:
            self._reconfigured.clear()
            key = _watch_key(self.control.config)
            watched = self.control.config.watched_pdas()
            if not watched:
                self._set_watched({})
                await self._reconfigured.wait()
                continue
            watcher = self._watcher(watched)
            self.watcher = watcher
            self._set_watched(watched)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(watcher.run()), tg.create_task(self._follow(watcher))]
                while key == _watch_key(self.control.config):
                    await self._reconfigured.wait()
                    self._reconfigured.clear()
                for task in tasks:
                    task.cancel()
            log.info("presence settings changed: the watcher restarts")
            self.watcher = None
            # What is no longer watched (or watched afresh) is not claimed near.
            for pda, state in list(self.control.presence.items()):
                if state == "near":
                    self._change(pda, "away", None)

    # --- internals --------------------------------------------------------------

    def _watcher(self, watched: Mapping[str, str]) -> PresenceWatcher:
        from daemon.presence import PresenceSettings, PresenceWatcher  # bleak: only now

        p = self.control.config.presence
        settings = PresenceSettings(adapter=p.adapter, scan=p.scan, thresholds=p.thresholds)
        return PresenceWatcher(watched, settings, on_event=self._on_event)

    def _set_watched(self, watched: Mapping[str, str]) -> None:
        """Every watched PDA starts away; the note is empty while nothing is watched."""
        ctl = self.control
        ctl.presence = dict.fromkeys(watched, "away")
        ctl.presence_note = ""
        for pda in watched:
            ctl.publish_presence(pda)
        ctl.notify.status(ctl.status_line())

    def _on_event(self, ev: PresenceEvent) -> None:
        if ev.pda not in self.control.presence:
            return  # a watcher being replaced: its PDAs are handled by run()
        if ev.type == "pda-near" and self.control.config.presence.auto_sync:
            self._arrival(ev.pda)
        self._change(ev.pda, str(ev.state), ev.to_json()["at"])

    def _change(self, pda: str, state: str, at: str | None) -> None:
        ctl = self.control
        ctl.presence[pda] = state
        ctl.event("pda-near" if state == "near" else "pda-away", pda, at=at)
        ctl.publish_presence(pda)

    def _arrival(self, pda: str) -> None:
        ctl, now = self.control, self.clock()
        self.gate.min_interval = ctl.config.presence.auto_sync_min_interval
        if ctl.present is False:
            log.info("auto-sync skipped: no card", pda=pda)
            return
        wait = self.gate.wait_left(pda, now)
        if not self.gate.arrival(pda, now):
            log.info(
                "auto-sync skipped: synced recently", pda=pda, wait_left=round(wait, 1),
                min_interval=self.gate.min_interval,
            )  # fmt: skip
            return
        ctl.trigger("near", [pda])

    async def _follow(self, watcher: PresenceWatcher) -> None:
        """Put the watcher's state in STATUS= whenever its description changes."""
        ctl = self.control
        seen: PresenceStatus | None = None
        while True:
            seen = await watcher.wait_for(partial(is_not, seen))
            note = status_note(seen)
            if note != ctl.presence_note:
                ctl.presence_note = note
                ctl.notify.status(ctl.status_line())
