"""The daemon's state and its MQTT face: requests in; status, results, events out.

``Control`` holds what ``ROOT/status`` tells (card, busy, last sync), the request
queue, the MQTT session and the triggers. ``daemon.service`` owns the life cycle
and the worker that runs the syncs; everything here is quick and never blocks,
so a burst of requests is answered as fast as it arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Protocol

import structlog

from daemon.cardwatch import card_presence
from daemon.config import Config, read_password_file
from daemon.discovery import DiscoveryContext, discovery_configs, stale_config, subscriptions
from daemon.queue import Admit, Job, RequestQueue
from daemon.requests import BadRequest, new_request_id, parse_cancel, parse_sync_request
from daemon.result import SyncResult
from daemon.wire import (
    CardState,
    EventType,
    Topics,
    dump,
    event_payload,
    failed,
    progress_payload,
    status_payload,
)
from syncproto.codes import ErrorCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from daemon.mqtt import MqttLink

__all__ = ["Control", "Notify", "package_version"]

log = structlog.get_logger(__name__)

_BLOCKING = frozenset({ErrorCode.CARD_BLOCKED, ErrorCode.PIN_REJECTED})
MINUTE = 60.0  # seconds in one of ``every_minutes``' minutes (tests shorten it)


class Notify(Protocol):
    """The sd_notify sender the service talks to (``daemon.notify.Notifier``)."""

    def ready(self, status: str | None = None) -> bool: ...
    def status(self, text: str) -> bool: ...
    def reloading(self, status: str | None = None) -> bool: ...
    def stopping(self, status: str | None = None) -> bool: ...
    async def watchdog(self) -> None: ...


def package_version() -> str:
    """simsync's version, as the status and the discovery device show it."""
    try:
        return version("simsync")
    except PackageNotFoundError:  # a source tree without install
        return "0+unknown"


class Control:
    """See the module docstring."""

    def __init__(self, config: Config, *, notify: Notify) -> None:
        self.config = config
        self.notify = notify
        self.version = package_version()
        self.queue = RequestQueue(config.daemon.max_waiting)
        self.present: bool | None = None
        self.blocked = False
        self.busy: Job | None = None
        self.last_sync: SyncResult | None = None
        self.stopping = False
        self.work = asyncio.Event()  # set: the queue may hold a job
        self.card_known = asyncio.Event()
        self.mqtt_up = asyncio.Event()
        self.link: MqttLink | None = None
        self._link_task: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._config_changed = asyncio.Event()
        self._progress_mark: tuple[str, int] | None = None
        # Set by daemon.presence_service: each watched PDA's "near"/"away", and what
        # the presence watcher is doing, for STATUS= (empty: nothing watched).
        self.presence: dict[str, str] = {}
        self.presence_note = ""
        self.stop_current: Callable[[ErrorCode, str], None] = lambda _c, _m: None

    # --- derived views -----------------------------------------------------------

    @property
    def topics(self) -> Topics:
        assert self.config.mqtt is not None
        return Topics(self.config.mqtt.topic_root)

    @property
    def card(self) -> CardState:
        if self.present is None:
            return "unknown"
        if not self.present:
            return "absent"
        return "blocked" if self.blocked else "present"

    def discovery(self, config: Config | None = None) -> DiscoveryContext | None:
        """The Home Assistant discovery context, or None when discovery is off."""
        cfg = config or self.config
        if cfg.mqtt is None or not cfg.mqtt.ha_discovery:
            return None
        return DiscoveryContext(
            node_id=cfg.node.id,
            root=cfg.mqtt.topic_root,
            prefix=cfg.mqtt.discovery_prefix,
            version=self.version,
            pdas=tuple(p.name for p in cfg.pdas),
            presence=frozenset(cfg.watched_pdas()),
        )

    def status_line(self) -> str:
        """One line for ``systemctl status``: card, busy, last sync."""
        busy = f"syncing {self.busy.pda}" if self.busy else "idle"
        last = "no sync yet"
        if self.last_sync is not None:
            r = self.last_sync
            how = "ok" if r.error is None else str(r.error.code)
            last = f"last sync {r.pda} {how} at {r.finished_at}"
        broker = ""
        if self.link is not None:
            broker = "; broker connected" if self.link.connected else "; broker unreachable"
        presence = f"; {self.presence_note}" if self.presence_note else ""
        return f"card {self.card}; {busy}; {last}{broker}{presence}"

    # --- MQTT session ----------------------------------------------------------

    def start_mqtt(self, tg: asyncio.TaskGroup) -> MqttLink | None:
        """Start the broker session in ``tg`` when ``[mqtt]`` is configured."""
        self._tg = tg
        cfg = self.config.mqtt
        if cfg is None:
            return None
        from daemon.mqtt import MqttLink, Outgoing

        topics = Topics(cfg.topic_root)
        self.link = MqttLink(
            cfg,
            client_id=f"simsync-{self.config.node.id}",
            password=lambda: read_password_file(self.config),
            will=lambda: Outgoing(topics.status, self._status(online=False), 1, retain=True),
            subscriptions=self._subscriptions,
            on_message=self.on_message,
            on_connected=self._on_connected,
        )
        self._link_task = tg.create_task(self.link.run())
        return self.link

    def stop_mqtt(self) -> None:
        """End the broker session (a clean DISCONNECT: the Last Will stays unsent)."""
        if self._link_task is not None:
            self._link_task.cancel()
        self._link_task = None
        self.link = None
        self.mqtt_up.clear()

    def _subscriptions(self) -> list[str]:
        t = self.topics
        subs = [t.request, t.cancel, t.presence("+")]
        ctx = self.discovery()
        if ctx is not None:
            subs += [f"{ctx.prefix}/status", *subscriptions(ctx)]
        return subs

    def _on_connected(self) -> None:
        self.mqtt_up.set()
        self.publish_status()
        for pda in self.config.watched_pdas():
            self.publish_presence(pda)
        self._publish_discovery()

    def _publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, qos=qos, retain=retain)

    def _status(self, *, online: bool) -> bytes:
        return status_payload(
            online=online,
            version=self.version,
            card=self.card if online else "unknown",
            busy=self.busy is not None and online,
            last_sync=self.last_sync,
        )

    def publish_status(self) -> None:
        """Retained ``ROOT/status`` and STATUS= for systemd, after any change."""
        self.notify.status(self.status_line())
        if self.config.mqtt is not None:
            self._publish(self.topics.status, self._status(online=True), retain=True)

    async def go_offline(self, seconds: float) -> None:
        """Publish ``offline`` and wait (at most ``seconds``) for the outbox to empty."""
        link = self.link
        if link is None:
            return
        self._publish(self.topics.status, self._status(online=False), retain=True)
        if not link.connected:
            return  # nobody to tell; the broker already holds the Last Will
        try:
            async with asyncio.timeout(seconds):
                await link.flush()
        except TimeoutError:
            log.warning("broker did not take the last messages in time")

    def publish_presence(self, pda: str) -> None:
        """Retained ``ROOT/pda/<pda>/presence``: ``near`` or ``away`` (every PDA starts away);
        cleared (empty) for a PDA that is not watched (any more)."""
        if self.config.mqtt is not None:
            watched = pda in self.config.watched_pdas()
            state = self.presence.get(pda, "away").encode() if watched else b""
            self._publish(self.topics.presence(pda), state, retain=True)

    def _publish_discovery(self, ctx: DiscoveryContext | None = None) -> None:
        ctx = ctx or self.discovery()
        if ctx is None:
            return
        for topic, payload in discovery_configs(ctx):
            self._publish(topic, payload, retain=True)

    # --- incoming messages -------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        """One message from the broker (requests, cancels, Home Assistant)."""
        t = self.topics
        if topic == t.request:
            self._on_request(payload)
        elif topic == t.cancel:
            self._on_cancel(payload)
        elif (pda := t.presence_pda(topic)) is not None:
            if payload and pda not in self.config.watched_pdas():
                log.info("clearing the presence of a PDA no longer watched", pda=pda)
                self._publish(topic, b"", retain=True)
        elif (ctx := self.discovery()) is not None:
            if topic == f"{ctx.prefix}/status":
                if payload.strip() == b"online":
                    log.info("Home Assistant is online: discovery configs re-published")
                    self._publish_discovery(ctx)
            elif stale_config(ctx, topic, payload):
                log.info("clearing a stale discovery config", topic=topic)
                self._publish(topic, b"", retain=True)

    def _on_request(self, payload: bytes) -> None:
        req = parse_sync_request(payload)
        if isinstance(req, BadRequest):
            self.answer(failed(req.id, None, ErrorCode.BAD_REQUEST, req.message))
            return
        names = [p.name for p in self.config.pdas]
        pda = req.pda
        if pda is None:
            if len(names) != 1:
                code = ErrorCode.BAD_REQUEST if names else ErrorCode.UNKNOWN_PDA
                why = f'several PDAs are configured ({", ".join(names)}): name one in "pda"'
                self.answer(failed(req.id, None, code, why if names else "no PDA is configured"))
                return
            pda = names[0]
        elif pda not in names:
            known = ", ".join(names) or "none"
            why = f"no PDA named {pda!r} in the config (configured: {known})"
            self.answer(failed(req.id, pda, ErrorCode.UNKNOWN_PDA, why))
            return
        self.submit(req.id, pda, req.mode)

    def submit(self, rid: str, pda: str, mode: str) -> None:
        """Queue (or join) a sync for request ``rid``; refusals are answered at once."""
        if self.stopping:
            self.answer(failed(rid, pda, ErrorCode.CANCELLED, "the daemon is stopping"))
            return
        adm = self.queue.submit(rid, pda, mode)
        if adm.admit is Admit.REFUSED:
            limit = self.queue.max_waiting
            why = f"{limit} requests are waiting already (daemon.max_waiting); try again later"
            self.answer(failed(rid, pda, ErrorCode.BUSY, why))
        elif adm.admit is Admit.DUPLICATE:
            log.info("request id already pending: it gets one result", request_id=rid)
        else:
            log.info("sync requested", request_id=rid, pda=pda, mode=mode, how=adm.admit.value)
            self.work.set()

    def _on_cancel(self, payload: bytes) -> None:
        req = parse_cancel(payload)
        if isinstance(req, BadRequest):
            self.answer(failed(None, None, ErrorCode.BAD_REQUEST, f"cancel: {req.message}"))
            return
        out = self.queue.cancel(req.id)
        if out is None:
            log.info("cancel for a request that is not pending", request_id=req.id)
        elif out.detached:
            why = (
                "cancelled by request before it ran"
                if not out.job.running
                else (
                    "cancelled by request; the sync goes on for the other requests that joined it"
                )
            )
            self.answer(failed(req.id, out.job.pda, ErrorCode.CANCELLED, why))
        else:
            self.stop_current(ErrorCode.CANCELLED, "cancelled by request; nothing was committed")

    # --- results, progress and events ----------------------------------------------

    def answer(self, result: SyncResult) -> None:
        """Publish one result (one per request id, also on failure)."""
        code = None if result.error is None else str(result.error.code)
        log.info("sync result", request_id=result.id, pda=result.pda, ok=result.ok, code=code)
        if self.config.mqtt is not None:
            self._publish(self.topics.result, dump(result.to_json()))

    def set_busy(self, job: Job) -> None:
        """A job starts running."""
        self.busy = job
        self._progress_mark = None
        self.publish_status()

    def progress(self, phase: str, done: int, total: int) -> None:
        """Progress of the running job, for each of its waiters (QoS 0; every tenth)."""
        job = self.busy
        if job is None or self.config.mqtt is None:
            return
        mark = (phase, 10 * done // total if total else 10)
        if mark == self._progress_mark:
            return
        self._progress_mark = mark
        for rid in job.waiters:
            self._publish(self.topics.progress, progress_payload(rid, phase, done, total), qos=0)

    def finish(self, job: Job, result: SyncResult) -> None:
        """The running job ended: one result per waiter, then the new status."""
        for rid in self.queue.finish(job):
            self.answer(result if rid == result.id else dataclasses.replace(result, id=rid))
        self.busy = None
        self.last_sync = result
        if result.error is not None and result.error.code in _BLOCKING:
            self.blocked = True
        elif result.ok:
            self.blocked = False
            self.present = True  # a sync that reached the card proves it is there
        self.publish_status()

    def event(self, kind: EventType, pda: str | None = None, *, at: str | None = None) -> None:
        """Publish an event on ``ROOT/event`` (``at``: when it happened; default now)."""
        log.info("event", type=kind, pda=pda)
        if self.config.mqtt is not None:
            self._publish(self.topics.event, event_payload(kind, pda=pda, at=at))

    # --- card and triggers ----------------------------------------------------------

    async def watch_card(self) -> None:
        """Follow the card; events, status and the insertion trigger."""
        first = True
        async for present in card_presence(self.config):
            was, self.present = self.present, present
            self.card_known.set()
            if present and not was:
                self.blocked = False  # maybe another card, or the same after the PUK
                if not first:
                    self.event("card-inserted")
                if self.config.triggers.on_card_inserted:
                    self.trigger("insert")
            elif was and present is False:
                self.event("card-removed")
                self.stop_current(
                    ErrorCode.NO_CARD, "the card was removed during the sync; nothing was committed"
                )
            first = False
            self.publish_status()

    async def timer(self) -> None:
        """The ``every_minutes`` trigger; restarts its count when the config changes."""
        while True:
            minutes = self.config.triggers.every_minutes
            self._config_changed.clear()
            if not minutes:
                await self._config_changed.wait()
                continue
            try:
                async with asyncio.timeout(minutes * MINUTE):
                    await self._config_changed.wait()
            except TimeoutError:
                self.trigger("timer")

    def trigger(self, why: str, pdas: list[str] | None = None) -> None:
        """Queue a sync of each of ``pdas`` (default: each trigger PDA, all by default)."""
        if self.present is False:
            log.info("trigger skipped: no card", trigger=why)
            return
        for pda in pdas or self.config.triggers.pdas or [p.name for p in self.config.pdas]:
            self.submit(f"{why}-{new_request_id()}", pda, "auto")

    # --- reload --------------------------------------------------------------------

    async def apply_config(self, config: Config) -> None:
        """Switch to a re-read config (SIGHUP)."""
        old, old_ctx = self.config, self.discovery()
        if config.mqtt != old.mqtt or config.node.id != old.node.id:
            if self.link is not None:
                await self.go_offline(2.0)
                self.stop_mqtt()
            self.config = config
            if self._tg is not None:
                self.start_mqtt(self._tg)
        else:
            self.config = config
            new_ctx = self.discovery()
            if old_ctx is not None and new_ctx is not None:
                # A PDA that left, or whose presence is no longer watched: clear its configs.
                for topic, _ in discovery_configs(old_ctx):
                    if stale_config(new_ctx, topic, b"x"):
                        self._publish(topic, b"", retain=True)
            for pda in set(old.watched_pdas()) - set(config.watched_pdas()):
                self.publish_presence(pda)  # clears it
            self._publish_discovery()
        self.queue.max_waiting = config.daemon.max_waiting
        self._config_changed.set()
        self.publish_status()
