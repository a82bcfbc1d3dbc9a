"""The daemon's MQTT session (spec/mqtt.md); the only module that imports aiomqtt.

``MqttLink.run()`` keeps one session up for the life of the daemon: it connects
(``mqtt://`` or ``mqtts://`` with the CA file, username and password file,
MQTT 3.1.1 or 5) with the retained ``offline`` status as its Last Will,
subscribes, calls ``on_connected`` (the service queues its status and discovery
configs there), hands every incoming message to ``on_message`` and sends the
outbox. When the connection drops it reconnects with exponential backoff.

``publish()`` never blocks and never fails: messages wait in a bounded outbox
while the broker is away and go out, in order, once it is back (QoS 0 progress
is dropped instead; of several queued retained messages on one topic only the
newest is sent). ``flush()`` waits for the outbox to empty, before a clean stop.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt
import structlog

from daemon.config import MqttConfig

__all__ = ["MqttLink", "Outgoing"]

log = structlog.get_logger(__name__)

BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
# Messages held while the broker is away (results and events: a few hundred bytes each).
OUTBOX_LIMIT = 5000
# QoS 1 publishes in flight at once: paho keeps them in order on the wire.
_BATCH = 20
_PUBLISH_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for the broker."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class MqttLink:
    """One broker session kept up for the daemon; see the module docstring."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str,
        password: Callable[[], str | None],
        will: Callable[[], Outgoing],
        subscriptions: Callable[[], list[str]],
        on_message: Callable[[str, bytes], None],
        on_connected: Callable[[], None],
    ) -> None:
        self.config = config
        self.client_id = client_id
        self._password = password
        self._will = will
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._on_connected = on_connected
        self._outbox: deque[Outgoing] = deque()
        self._latest: dict[str, Outgoing] = {}  # newest queued retained message per topic
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.connected = False
        self.connections = 0  # sessions made so far (1 after the first connect)
        self.dropped = 0  # messages lost to a full outbox while the broker was away

    # --- the service's side --------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue a message; see the module docstring."""
        if qos == 0 and not self.connected:
            return  # progress nobody can see now: not worth keeping
        msg = Outgoing(topic, payload, qos, retain)
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._outbox.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("mqtt outbox full: oldest messages dropped", dropped=self.dropped)
        if retain:
            self._latest[topic] = msg
        self._outbox.append(msg)
        self._empty.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every queued message went out (callers bound it with a time-out)."""
        await self._empty.wait()

    async def run(self) -> None:
        """Keep the session up until cancelled (a clean DISCONNECT on the way out)."""
        backoff = BACKOFF_MIN
        while True:
            try:
                await self._session()
            except* aiomqtt.MqttError as group:
                exc = group.exceptions[0]
                log.warning(
                    "mqtt connection failed" if not self.connected else "mqtt connection lost",
                    broker=self.config.url,
                    error=str(exc) or type(exc).__name__,
                    retry_in=round(backoff, 1),
                )
            except* OSError as group:
                log.warning("mqtt connection failed", error=str(group.exceptions[0]))
            if self.connected:
                backoff = BACKOFF_MIN  # it worked for a while: start the backoff over
            self.connected = False
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only
            backoff = min(backoff * 2, BACKOFF_MAX)

    # --- the session ---------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        will = self._will()
        tls = None
        if cfg.tls:
            tls = ssl.create_default_context(
                cafile=str(cfg.ca_file) if cfg.ca_file is not None else None
            )
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=self._password(),
            identifier=self.client_id,
            protocol=(
                aiomqtt.ProtocolVersion.V5 if cfg.protocol == "5" else aiomqtt.ProtocolVersion.V311
            ),
            will=aiomqtt.Will(will.topic, will.payload, will.qos, will.retain),
            keepalive=cfg.keepalive,
            tls_context=tls,
            timeout=_PUBLISH_TIMEOUT,
        )
        # aiomqtt warns past 10 pending calls; our batches are meant to overlap.
        client.pending_calls_threshold = 2 * _BATCH
        return client

    async def _session(self) -> None:
        async with self._client() as client:
            self.connected = True
            self.connections += 1
            log.info("mqtt connected", broker=self.config.url, session=self.connections)
            for topic in self._subscriptions():
                await client.subscribe(topic, qos=1)
            self._on_connected()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._send(client))
                tg.create_task(self._receive(client))

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload: object = message.payload
            if isinstance(payload, str):
                data = payload.encode()
            elif isinstance(payload, bytes | bytearray):
                data = bytes(payload)
            else:
                data = b"" if payload is None else str(payload).encode()
            try:
                self._on_message(str(message.topic), data)
            except Exception:  # one bad message must not end the session
                log.exception("mqtt message handler failed", topic=str(message.topic))

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            if not self._outbox:
                self._empty.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._outbox[i] for i in range(min(_BATCH, len(self._outbox)))]
            live = [m for m in batch if not m.retain or self._latest.get(m.topic) is m]
            async with asyncio.TaskGroup() as tg:
                for m in live:
                    tg.create_task(client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain))
            # Only now are they the broker's: a drop mid-batch sends them again (QoS 1).
            for m in batch:
                if self._outbox and self._outbox[0] is m:
                    self._outbox.popleft()
                if m.retain and self._latest.get(m.topic) is m:
                    del self._latest[m.topic]
