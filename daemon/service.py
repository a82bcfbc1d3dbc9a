"""`simsync daemon`: the long-running phone service, one asyncio task group.

Tasks: the card watch (``daemon.cardwatch``), the MQTT session (``daemon.mqtt``,
when ``[mqtt]`` is configured), the worker that runs one sync at a time from the
request queue (``daemon.queue``), the interval trigger, the presence watcher
(``daemon.presence_service``, when some PDA is watched) and the systemd watchdog.
Requests come from MQTT (parsed by ``daemon.requests``) and from the triggers;
every request id gets exactly one result on ``ROOT/sync/result``.

A running sync is stopped (``cancelled``, ``no_card`` or ``timeout``) only before
its commit: once the card's STORESYNC is under way it finishes, so nothing
half-done is ever committed and nothing committed is reported as cancelled.

Signals: SIGTERM/SIGINT stop (STOPPING=1, queued requests answered ``cancelled``,
``offline`` published, exit 0); SIGHUP re-reads the config (a bad one is kept
out, and the reason logged and shown in STATUS=).
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from daemon.config import Config, ConfigError, load_config
from daemon.control import Control, Notify
from daemon.presence_service import PresenceService
from daemon.result import SyncResult
from daemon.wire import failed, now_iso
from syncproto.codes import ErrorCode

__all__ = ["Notify", "Runner", "Service"]

log = structlog.get_logger(__name__)

Runner = Callable[..., Coroutine[Any, Any, SyncResult]]
# How long a clean stop waits for the last messages to reach the broker.
STOP_FLUSH_SECONDS = 5.0
# How long start-up waits for the first broker session before READY=1 anyway.
READY_MQTT_WAIT = 5.0


class Service:
    """One daemon: ``await Service(config, ...).run()`` until SIGTERM; returns the exit status."""

    def __init__(self, config: Config, *, notify: Notify, runner: Runner | None = None) -> None:
        if runner is None:
            from daemon.sync import run_sync

            runner = run_sync
        self.control = Control(config, notify=notify)
        self.presence = PresenceService(self.control)
        self.notify = notify
        self.runner = runner
        self._stopping = asyncio.Event()
        self._reload = asyncio.Event()
        self._current: asyncio.Task[SyncResult] | None = None
        self._phase = ""
        self._stop_reason: tuple[ErrorCode, str] | None = None

    @property
    def config(self) -> Config:
        return self.control.config

    # --- life cycle ------------------------------------------------------------

    async def run(self) -> int:
        """Run until stopped; 0 on a clean stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        self.control.stop_current = self._stop_current
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self.control.watch_card()),
                    tg.create_task(self._worker()),
                    tg.create_task(self.control.timer()),
                    tg.create_task(self.notify.watchdog()),
                    tg.create_task(self._reloader()),
                    tg.create_task(self.presence.run()),
                ]
                link = self.control.start_mqtt(tg)
                await self.control.card_known.wait()
                if link is not None:
                    try:
                        async with asyncio.timeout(READY_MQTT_WAIT):
                            await self.control.mqtt_up.wait()
                            # READY means the retained status is on the broker: whoever
                            # looks once systemd says "started" sees it.
                            await link.flush()
                    except TimeoutError:
                        log.warning("broker not reachable yet; running on, retrying")
                self.notify.ready(self.control.status_line())
                log.info("daemon ready", node=self.config.node.id)
                await self._stopping.wait()
                await self._shutdown()
                for task in tasks:
                    task.cancel()
                self.control.stop_mqtt()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("daemon stopped")
        return 0

    async def _shutdown(self) -> None:
        self.notify.stopping("stopping")
        log.info("stopping")
        self.control.stopping = True
        for job in self.control.queue.drain():
            for rid in job.waiters:
                self.control.answer(failed(rid, job.pda, ErrorCode.CANCELLED, "the daemon stopped"))
        self._stop_current(ErrorCode.CANCELLED, "the daemon stopped before the sync's commit")
        if self._current is not None:
            # The commit of a sync already past STORESYNC finishes first (bounded by its
            # message time-out): stopping must not leave the PDA's anchor pending.
            await asyncio.wait([self._current])
        await self.control.go_offline(STOP_FLUSH_SECONDS)

    async def _reloader(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            self.notify.reloading("re-reading the config")
            try:
                config = await asyncio.to_thread(load_config, self.config.path)
            except ConfigError as exc:
                log.error("config reload failed; the old config stays", error=str(exc))  # noqa: TRY400 - the message says it all
                self.notify.ready(f"config reload failed, old config kept: {exc}")
                continue
            await self.control.apply_config(config)
            self.presence.config_changed()
            log.info("config reloaded", path=str(config.path))
            self.notify.ready(self.control.status_line())

    # --- the worker: one sync at a time ------------------------------------------

    async def _worker(self) -> None:
        ctl = self.control
        while True:
            job = ctl.queue.next()
            if job is None:
                ctl.work.clear()
                await ctl.work.wait()
                continue
            ctl.set_busy(job)
            started = time.monotonic()
            started_at = now_iso()
            self._phase, self._stop_reason = "", None

            def progress(phase: str, done: int, total: int) -> None:
                self._phase = phase
                ctl.progress(phase, done, total)

            timer = asyncio.get_running_loop().call_later(
                self.config.daemon.sync_timeout,
                self._stop_current,
                ErrorCode.TIMEOUT,
                f"the sync took longer than {self.config.daemon.sync_timeout} s "
                "(daemon.sync_timeout); nothing was committed",
            )
            self._current = asyncio.create_task(
                self.runner(self.config, job.pda, job.mode, request_id=job.id, progress=progress)
            )
            try:
                result = await asyncio.shield(self._current)
            except Exception as exc:  # run_sync turns failures into results; a bug must not
                log.exception("the sync runner failed")  # stop the daemon's queue
                result = failed(job.id, job.pda, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            except asyncio.CancelledError:
                reason = self._why_stopped()
                if not self._current.cancelled() or reason is None:
                    raise  # the worker itself is being cancelled
                code, message = reason
                result = dataclasses.replace(
                    failed(job.id, job.pda, code, message, started_at=started_at),
                    duration_ms=round((time.monotonic() - started) * 1000),
                )
            finally:
                timer.cancel()
                self._current = None
            ctl.finish(job, result)
            if result.ok:
                self.presence.synced(job.pda)

    def _why_stopped(self) -> tuple[ErrorCode, str] | None:
        return self._stop_reason

    def _stop_current(self, code: ErrorCode, message: str) -> None:
        """Stop the running sync with ``code`` unless its commit is under way."""
        task = self._current
        if task is None or task.done():
            return
        if self._phase == "commit":
            log.info("stop asked during the commit: the commit finishes", code=str(code))
            return
        if self._stop_reason is None:
            self._stop_reason = (code, message)
        log.info("stopping the running sync", code=str(code))
        task.cancel()
